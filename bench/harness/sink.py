"""Benchmark helper: the tests' aiosmtpd sink (tests/smtp_sink.py) in a process of its own,
so that its CPU does not compete with the sender for the same GIL.

    python scripts/bench_sink.py

Prints `port N` once listening on 127.0.0.1, then answers each line read on stdin:
`stats` → one JSON line {"count", "refused", "first", "last", "cpu_s"} (first/last:
time.monotonic() of the first and last accepted message, comparable across processes on
Linux; cpu_s: the sink process's CPU time so far); `reset`
→ forgets what was counted; `quit` or end of input → stops.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from aiosmtpd.controller import Controller  # noqa: E402
from smtp_sink import SinkHandler, free_port  # noqa: E402


class TimedSink(SinkHandler):
    """Counts envelopes only (keep_raw=False) and notes when the first and last arrived."""

    def __init__(self):
        super().__init__(keep_raw=False)
        self.first: float | None = None
        self.last: float | None = None

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            now = time.monotonic()
            with self.lock:
                if self.first is None:
                    self.first = now
                self.last = now
        return reply

    def stats(self) -> dict:
        with self.lock:
            stats = {"count": len(self.messages), "refused": self.refused, "first": self.first, "last": self.last}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        stats["cpu_s"] = usage.ru_utime + usage.ru_stime  # the whole sink process so far
        return stats

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.refused = 0
            self.first = self.last = None


def main() -> None:
    handler = TimedSink()
    controller = None
    for _ in range(5):  # the free port can be taken between the check and the bind
        port = free_port()
        candidate = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
        try:
            candidate.start()
        except Exception:  # noqa: BLE001 - retried on another port
            continue
        controller = candidate
        handler.port = port
        break
    if controller is None:
        raise SystemExit("bench_sink: cannot start the SMTP sink")
    print(f"port {handler.port}", flush=True)
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
