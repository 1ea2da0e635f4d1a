"""An SMTP sink (aiosmtpd) on loopback, in a process of its own so that its CPU does not
compete with the sender for the same GIL.

    python -m bench.harness.sink

Prints `port N` once listening on 127.0.0.1, then answers each line read on stdin:
`stats` → one JSON line {"count", "refused", "first", "last", "cpu_s"} (first/last:
time.monotonic() of the first and last accepted message, comparable across processes on
Linux; cpu_s: the sink process's CPU time so far); `reset` → forgets what was counted;
`quit` or end of input → stops. It accepts every message and keeps nothing but the count.
"""

from __future__ import annotations

import json
import resource
import socket
import sys
import threading
import time

from aiosmtpd.controller import Controller


class CountingHandler:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        now = time.monotonic()
        with self.lock:
            self.count += 1
            if self.first is None:
                self.first = now
            self.last = now
        return "250 OK: queued"

    def stats(self) -> dict:
        with self.lock:
            stats = {"count": self.count, "refused": 0, "first": self.first, "last": self.last}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        stats["cpu_s"] = usage.ru_utime + usage.ru_stime  # the whole sink process so far
        return stats

    def reset(self) -> None:
        with self.lock:
            self.count = 0
            self.first: float | None = None
            self.last: float | None = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    handler = CountingHandler()
    controller = None
    for _ in range(5):  # the free port can be taken between the check and the bind
        port = free_port()
        candidate = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
        try:
            candidate.start()
        except Exception:  # noqa: BLE001 - retried on another port
            continue
        controller = candidate
        break
    if controller is None:
        raise SystemExit("bench.harness.sink: cannot start the SMTP sink")
    print(f"port {port}", flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                print(json.dumps(handler.stats()), flush=True)
            elif command == "reset":
                handler.reset()
                print("ok", flush=True)
            elif command == "quit":
                break
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
