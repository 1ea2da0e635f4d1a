"""Progress of a send: hooks the campaign calls, and a display for `newsletter send` (a live
line on a terminal, plain log lines otherwise)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    """Hooks for a progress display; the default shows nothing."""

    def start(self, total: int, done: int) -> None: ...

    def advance(self, n: int) -> None: ...

    def finish(self) -> None: ...


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class TerminalProgress(Progress):
    def __init__(self, stream: TextIO | None = None, *, interval: float | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval if interval is not None else (0.2 if self.tty else 5.0)
        self.lock = threading.Lock()
        self.total = 0
        self.done = 0
        self.started_done = 0
        self.started = time.monotonic()
        self.last_shown = 0.0

    def start(self, total: int, done: int) -> None:
        self.total, self.done, self.started_done = total, done, done
        self.started = time.monotonic()
        self._show(force=True)

    def advance(self, n: int) -> None:
        with self.lock:
            self.done += n
        self._show()

    def finish(self) -> None:
        self._show(force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _show(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_shown < self.interval:
            return
        self.last_shown = now
        elapsed = max(now - self.started, 1e-9)
        rate = (self.done - self.started_done) / elapsed
        left = self.total - self.done
        eta = _clock(left / rate) if rate > 0 and left > 0 else "-:--:--"
        if self.tty:
            width = 24
            filled = int(width * self.done / self.total) if self.total else width
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {self.done}/{self.total}  {rate:7.1f}/s  ETA {eta} ")
        else:
            self.stream.write(f"progress: {self.done}/{self.total} done, {rate:.1f}/s, ETA {eta}\n")
        self.stream.flush()
