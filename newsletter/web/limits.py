"""Rate limits for the sign-up form, in memory: a token bucket per client and one for everybody.

A client is known by a keyed hash of its address (the key is random and lives as long as the
process), so not even memory holds a list of who posted; nothing is written anywhere. A bucket
that has filled up again is forgotten.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable


class Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float):
        self.tokens = tokens
        self.updated = updated


class RateLimit:
    """`per_client` posts per client and `overall` posts in all, per `window` seconds, refilled evenly."""

    def __init__(
        self,
        per_client: int,
        overall: int,
        *,
        window: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ):
        self.per_client = per_client
        self.overall = overall
        self.window = window
        self.clock = clock
        self.max_clients = max_clients
        self._key = secrets.token_bytes(16)
        self._clients: dict[bytes, Bucket] = {}
        self._all = Bucket(float(overall), clock())
        self._lock = threading.Lock()

    def _refill(self, bucket: Bucket, size: int, now: float) -> None:
        bucket.tokens = min(float(size), bucket.tokens + (now - bucket.updated) * size / self.window)
        bucket.updated = now

    def allow(self, client: str) -> bool:
        """Whether this post may go ahead; a refused post takes nothing from either bucket."""
        now = self.clock()
        key = hmac.new(self._key, client.encode("utf-8", "replace"), hashlib.sha256).digest()[:16]
        with self._lock:
            self._refill(self._all, self.overall, now)
            bucket = self._clients.get(key)
            if bucket is None:
                if len(self._clients) >= self.max_clients:
                    self._forget_full(now)
                    if len(self._clients) >= self.max_clients:
                        return False  # too many clients at once to tell apart: that is a flood
                bucket = self._clients[key] = Bucket(float(self.per_client), now)
            else:
                self._refill(bucket, self.per_client, now)
            if bucket.tokens < 1 or self._all.tokens < 1:
                return False
            bucket.tokens -= 1
            self._all.tokens -= 1
            return True

    def retry_after(self) -> int:
        """Seconds until a client that was refused gets a post back."""
        return max(1, int(self.window / min(self.per_client, self.overall)) + 1)

    def _forget_full(self, now: float) -> None:
        for key, bucket in list(self._clients.items()):
            self._refill(bucket, self.per_client, now)
            if bucket.tokens >= self.per_client:
                del self._clients[key]
