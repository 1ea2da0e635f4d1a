"""Run an ASGI app on a real uvicorn server on loopback, in a background thread, for tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(app, *, timeout: float = 10) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 at a free port; yields the base URL, e.g. ``http://127.0.0.1:40123``.

    A port picked by `free_port` may be taken by someone else before uvicorn binds it; the
    server then exits at once, and another port is tried.
    """
    for _attempt in range(5):
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if server.started:
            break
        server.should_exit = True
        thread.join(timeout)
    else:
        raise RuntimeError("uvicorn did not start on loopback")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"uvicorn on port {port} did not stop within {timeout} s")
