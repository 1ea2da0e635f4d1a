"""Running an app for production: the port taken before uvicorn starts (one clear line when it
is in use), an access log that never prints a token, the proxy's headers trusted only from
the proxy, and a graceful stop on SIGTERM (uvicorn's: requests in progress finish)."""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import re
import socket
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from newsletter.errors import NewsletterError
from newsletter.keys import TOKEN_SEGMENTS

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

# A token or a confirmation key in a path is a capability: never written to a log (nor what
# follows /c/, which nothing answers today).
_SECRET_PATHS = re.compile(rf"^/({'|'.join((*TOKEN_SEGMENTS, 'c'))})/[^/]+")
LOG_FORMATS = ("text", "json")
SWITCH_INTERVAL = 0.0005  # s


class ServeError(NewsletterError):
    exit_code = 2


def logged_path(path: str) -> str:
    """`/u/<token>/resubscribe` → `/u/…/resubscribe`; other paths as they are."""
    return _SECRET_PATHS.sub(lambda m: f"/{m.group(1)}/…", path)


class AccessLog:
    """One line per request: time, method, path without its token or query, status, duration."""

    def __init__(self, app: ASGIApp, *, json_lines: bool = False, stream: Any = None):
        self.app = app
        self.json_lines = json_lines
        self.stream = stream or sys.stderr

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._write(scope, status["code"], time.perf_counter() - started)

    def _write(self, scope: Scope, status: int, seconds: float) -> None:
        entry = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "method": scope.get("method", ""),
            "path": logged_path(scope.get("path", "")),
            "status": status,
            "ms": round(seconds * 1000, 1),
        }
        if self.json_lines:
            line = json.dumps(entry)
        else:
            line = f"{entry['time']} {entry['method']} {entry['path']} {status} {entry['ms']} ms"
        print(line, file=self.stream, flush=True)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, or one clear line (exit 2) when the address is taken or wrong."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise ServeError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port, or stop what uses it"
        ) from None
    sock.listen(2048)
    return sock


def run(
    app: ASGIApp, *, host: str, port: int, log_format: str = "text", forwarded_allow_ips: str = "127.0.0.1"
) -> None:
    """Serve `app` until SIGINT or SIGTERM; the proxy's X-Forwarded-* headers are believed only
    from `forwarded_allow_ips` (comma-separated, or "*")."""
    import uvicorn

    # The store's thread gives the GIL up at every SQLite call and fsync; it would then wait up to
    # the switch interval (5 ms) for the event loop to give it back, a few times per commit.
    sys.setswitchinterval(SWITCH_INTERVAL)
    sock = listen(host, port)
    logging.getLogger("uvicorn.error").setLevel(logging.INFO)
    config = uvicorn.Config(
        AccessLog(app, json_lines=log_format == "json"),
        access_log=False,  # uvicorn's would print the tokens in the paths
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        log_level="info",
    )
    server = uvicorn.Server(config)
    # What is made at start-up (modules, the app, its templates) lives as long as the process:
    # kept out of the collector's full passes, which otherwise stall every request for tens of ms.
    gc.collect()
    gc.freeze()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
