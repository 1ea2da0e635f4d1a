"""The only package that touches the database. `Store.open(url)` gives one small repository
per aggregate over one shared `Database` (engine, clock, writer lock): `store.subscribers`
(lists and people), `store.campaigns`, `store.ledger` (deliveries and senders),
`store.feedback`, `store.signups`, `store.limits` (the sign-up form's counters),
`store.archive`, `store.reports`; and `store.keys`, the store's data key, kept here because it
belongs to the whole store, not to one aggregate."""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

import newsletter.store.tables as t
from newsletter import keys
from newsletter.store.archive import Archive
from newsletter.store.campaigns import Campaigns
from newsletter.store.database import Clock, Database, Repository, ensure_current, make_engine, utcnow
from newsletter.store.feedback import Feedback
from newsletter.store.ledger import Ledger
from newsletter.store.limits import Limits
from newsletter.store.reports import Reports
from newsletter.store.signups import Signups
from newsletter.store.subscribers import Subscribers

__all__ = ["Database", "Store", "utcnow"]


class Store:
    """The repositories over one database."""

    def __init__(self, db: Database):
        self.db = db
        self.keys = Keys(db)
        self.subscribers = Subscribers(db)
        self.campaigns = Campaigns(db)
        self.ledger = Ledger(db)
        self.feedback = Feedback(db)
        self.signups = Signups(db)
        self.limits = Limits(db)
        self.archive = Archive(db)
        self.reports = Reports(db)

    @classmethod
    def open(cls, url: str, *, now: Clock = utcnow, check: bool = True) -> Store:
        """The store at `url`. A new, empty database is created; an older schema is refused
        (OutdatedStore, naming `newsletter db upgrade`); with `check=False`, neither."""
        db = Database(make_engine(url), now=now)
        if check:
            ensure_current(db.engine)
        return cls(db)

    def close(self) -> None:
        self.db.close()


class Keys(Repository):
    """The store's data key, wrapped under NEWSLETTER_SECRET_KEY, and its rotation."""

    def data_key(self, environ: dict[str, str] | None = None) -> bytes:
        """The store's data key, opened with NEWSLETTER_SECRET_KEY (or one of
        NEWSLETTER_OLD_SECRET_KEYS); the first key a new store meets becomes its data key.
        WrongKey when none of them is the store's key."""
        current = keys.secret_key(environ)
        columns = (t.store_key.c.fingerprint, t.store_key.c.wrapped)
        with self.db.read() as conn:
            row = conn.execute(select(*columns)).first()
        if row is None:
            with self.db.write() as conn:
                try:
                    with conn.begin_nested():
                        values = {"fingerprint": keys.fingerprint(current), "wrapped": keys.wrap(current, current)}
                        conn.execute(insert(t.store_key).values(id=1, changed_at=self.db.now(), **values))
                    return current
                except IntegrityError:  # another process made it meanwhile
                    row = conn.execute(select(*columns)).one()
        stored, wrapped = row
        for key in (current, *keys.old_keys(environ)):
            if keys.fingerprint(key) == stored:
                return keys.unwrap(key, wrapped)
        raise keys.wrong_key(stored, current)

    def rotate(self, environ: dict[str, str] | None = None) -> bool:
        """Wrap the data key under NEWSLETTER_SECRET_KEY (opened with an old key); False when
        it already is. Afterwards the old keys open nothing and can be retired."""
        current = keys.secret_key(environ)
        data_key = self.data_key(environ)
        with self.db.write() as conn:
            stored = conn.execute(select(t.store_key.c.fingerprint)).scalar_one()
            if stored == keys.fingerprint(current):
                return False
            conn.execute(
                update(t.store_key).values(
                    fingerprint=keys.fingerprint(current),
                    wrapped=keys.wrap(current, data_key),
                    changed_at=self.db.now(),
                )
            )
        return True
