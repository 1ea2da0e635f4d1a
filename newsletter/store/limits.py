"""The sign-up form's counters, in the store so that every `serve` process shares them: one row
per counted post under each key it was counted by, kept for WINDOW and then deleted.

A key is a keyed hash (a key derived from the store's data key) of what was counted: a client's
network, a mailbox, a domain, an address a message went to. No IP address and no address is
written in clear. What the counts decide is not the store's business: `weigh` hands them to a
pure rule (newsletter.web.limits) and records what that rule says to record, in one
transaction that no other process's weighing interleaves with.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.engine import Connection

import newsletter.store.tables as t
from newsletter.keys import derive
from newsletter.store.database import Repository, as_utc

WINDOW = dt.timedelta(minutes=10)  # how long a counted post counts: every limit is per 10 minutes
_PG_LOCK = 0x6E6C5F6C696D6974  # "nl_limit": PostgreSQL's weighings, one at a time
T = TypeVar("T")


def limit_key(secret: bytes, kind: str, value: str) -> str:
    """The stored name of what is counted: `kind` ("network", "mailbox", …) and its value, hashed."""
    digest = hmac.new(derive(secret, "signup-limits"), f"{kind}\0{value}".encode("utf-8", "replace"), hashlib.sha256)
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Seen:
    """What was counted under one key in the last WINDOW."""

    count: int = 0
    frees_in: float = 0.0  # seconds until the oldest of them stops counting


def serialised(conn: Connection) -> None:
    """Hold the weighing lock until the transaction ends. SQLite's writer lock does this there
    (the first statement of each weighing is a write); PostgreSQL needs one of its own, or two
    processes could both see room for one more."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:n)"), {"n": _PG_LOCK})


def prune(conn: Connection, now: dt.datetime) -> None:
    conn.execute(delete(t.signup_limits).where(t.signup_limits.c.at <= now - WINDOW))


def seen(conn: Connection, keys: Collection[str], now: dt.datetime, window: dt.timedelta = WINDOW) -> dict[str, Seen]:
    """Each key's count in the last `window` (at most WINDOW; a key never counted: `Seen()`)."""
    c = t.signup_limits.c
    window = min(window, WINDOW)
    rows = conn.execute(
        select(c.key, func.count(), func.min(c.at)).where(c.key.in_(keys), c.at > now - window).group_by(c.key)
    )
    found = {key: Seen(number, (as_utc(oldest) + window - now).total_seconds()) for key, number, oldest in rows}
    return {key: found.get(key, Seen()) for key in keys}


def record(conn: Connection, keys: Collection[str], now: dt.datetime) -> None:
    if keys:
        conn.execute(insert(t.signup_limits), [{"key": key, "at": now} for key in keys])


def unrecord(conn: Connection, key: str) -> None:
    conn.execute(delete(t.signup_limits).where(t.signup_limits.c.key == key))


def message_key(email_hash: str) -> str:
    """The counter of messages sent to one address, named after the address's keyed hash (the
    suppressions'), so that it is found again from a pending sign-up's row."""
    return hashlib.sha256(f"message\0{email_hash}".encode("ascii")).hexdigest()[:32]


class Limits(Repository):
    """The counters, weighed and added to in one transaction."""

    def weigh(self, keys: Collection[str], rule: Callable[[Mapping[str, Seen]], tuple[T, Collection[str]]]) -> T:
        """`rule(seen)` gives a verdict and the keys to count this post under; those are counted
        and the verdict returned. Expired rows go first: that delete is also what takes SQLite's
        writer lock before anything is read, so that a second process waits instead of reading
        counts about to change."""
        now = self.db.now()
        with self.db.write() as conn:
            serialised(conn)
            prune(conn, now)
            verdict, counted = rule(seen(conn, keys, now))
            record(conn, counted, now)
        return verdict
