"""Pacing: a token bucket shared by the worker threads, and backoff with jitter.

Time and sleep are passed in so tests can drive them.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable


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
