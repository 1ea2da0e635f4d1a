"""The token bucket and backoff, driven by a fake clock."""

from __future__ import annotations

import random

from newsletter.sending.pacing import Backoff, TokenBucket


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_bucket_holds_the_rate_over_time():
    t = FakeTime()
    bucket = TokenBucket(50, clock=t.clock, sleep=t.sleep)
    stamps = []
    for _ in range(500):
        bucket.acquire()
        stamps.append(t.now)
    # 500 tokens at 50/s, starting with a burst of 5: about 9.9 seconds
    assert 9.8 <= stamps[-1] <= 10.0
    # no one-second window holds more than rate + burst
    for i, start in enumerate(stamps):
        inside = sum(1 for x in stamps[i:] if x < start + 1.0)
        assert inside <= 50 + bucket.burst


def test_bucket_rate_can_be_lowered():
    t = FakeTime()
    bucket = TokenBucket(100, clock=t.clock, sleep=t.sleep)
    for _ in range(10):
        bucket.acquire()
    bucket.set_rate(10)
    start = t.now
    for _ in range(10):
        bucket.acquire()
    assert t.now - start >= 0.9


def test_backoff_grows_is_jittered_and_capped():
    backoff = Backoff(base=1, cap=8, rng=random.Random(1))
    delays = [backoff.delay(n) for n in range(1, 8)]
    for n, d in enumerate(delays, start=1):
        ceiling = min(8, 2 ** (n - 1))
        assert ceiling / 2 <= d <= ceiling
    assert len({round(d, 6) for d in delays}) == len(delays)
    assert backoff.delay(1, retry_after=5) == 5
