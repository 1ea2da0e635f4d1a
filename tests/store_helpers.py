"""Store operations only the tests need (the package has no use for them), and the check that
every write on SQLite holds the store's writer lock."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import event, func, select, update

from newsletter.keys import email_key
from newsletter.keys import email_hash
from newsletter.store import Store
from newsletter.store import tables as t
from newsletter.store.database import is_suppressed as suppressed_hash


def set_status(store: Store, subscriber_id: int, status: str) -> bool:
    with store.db.write() as conn:
        query = update(t.subscribers).where(t.subscribers.c.id == subscriber_id)
        return conn.execute(query.values(status=status, updated_at=store.db.now())).rowcount > 0


def is_suppressed(store: Store, address: str, secret: bytes) -> bool:
    with store.db.read() as conn:
        return suppressed_hash(conn, email_hash(secret, email_key(address)))


def claim(store: Store, campaign_id: int, limit: int, worker: str):
    """Up to `limit` pending deliveries marked `sending`, in one transaction."""
    return store.ledger.record_and_claim(campaign_id, worker, limit, sent=[])


def record_results(store: Store, sent, *, failed=(), uncertain=(), released=()) -> None:
    """What the provider said, claiming nothing."""
    store.ledger.record_and_claim(None, "", 0, sent=sent, failed=failed, uncertain=uncertain, released=released)


def count_signups(store: Store) -> int:
    with store.db.read() as conn:
        return conn.execute(select(func.count()).select_from(t.signups)).scalar_one()


WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


@contextlib.contextmanager
def unlocked_writes(store: Store) -> Iterator[list[str]]:
    """The write statements run on SQLite outside `Database.write` (which holds the writer lock),
    while the block runs."""
    found: list[str] = []

    def check(_conn, _cursor, statement: str, _parameters, _context, _executemany) -> None:
        if statement.lstrip().upper().startswith(WRITES) and not store.db.writing():
            found.append(statement.split("\n")[0][:120])

    event.listen(store.db.engine, "before_cursor_execute", check)
    try:
        yield found
    finally:
        event.remove(store.db.engine, "before_cursor_execute", check)
