"""Pacing and progress: a token bucket shared by the worker threads, backoff with jitter, and
how far a send has got (hooks the engine calls, and a display for `newsletter send`: a live
line on a terminal, plain log lines otherwise).

Time and sleep are passed in so tests can drive them.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO


class TokenBucket:
    """At most `rate` acquisitions per second on average, bursts of at most `burst`."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        # a burst of one second's worth at most, and never more than a handful: a whole
        # second's burst at once would exceed the provider's per-second limit in some window
        self.burst = burst if burst is not None else max(1.0, min(rate / 10, 10.0))
        self.clock = clock
        self.sleep = sleep
        self.tokens = 1.0  # start with one message, not a whole burst: senders start together
        self.updated = clock()
        self.lock = threading.Lock()

    def set_rate(self, rate: float) -> None:
        with self.lock:
            self._refill()
            self.rate = rate

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Wait for a token; False when `stop` was set while waiting."""
        while True:
            with self.lock:
                self._refill()
                if self.tokens >= 1 - 1e-9:  # tolerance: float refills can stop a hair short of 1
                    self.tokens -= 1
                    return True
                wait = max((1 - self.tokens) / self.rate, 0.0005)
            if stop is not None and stop.is_set():
                return False
            self.sleep(min(wait, 0.25))


class Backoff:
    """Exponential backoff with "equal jitter": attempt n waits between c/2 and c, where
    c = min(cap, base·2ⁿ⁻¹); always some pause, and workers spread apart."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None):
        self.base = base
        self.cap = cap
        self.rng = rng or random.Random()

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * (2 ** max(attempt - 1, 0)))
        delay = ceiling / 2 + self.rng.uniform(0, ceiling / 2)
        return max(delay, retry_after or 0.0)


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
