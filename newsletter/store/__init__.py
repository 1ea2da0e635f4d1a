"""The only package that touches the database. `Store.open(url)` gives one small repository
per aggregate over one shared `Database` (engine, clock, writer lock): `store.subscribers`
(lists and people), `store.campaigns`, `store.ledger` (deliveries and senders),
`store.feedback`, `store.signups`, `store.archive`, `store.keys` (the data key),
`store.reports`."""

from __future__ import annotations

from typing import Any

from newsletter.feedback.sink import FeedbackOutcome
from newsletter.store import schema
from newsletter.store.archive import Archive
from newsletter.store.campaigns import Campaigns
from newsletter.store.database import Clock, Database, Keys, StoreError, make_engine, utcnow
from newsletter.store.feedback import Feedback
from newsletter.store.ledger import Ledger
from newsletter.store.legacy import LEGACY_NAMES
from newsletter.store.reports import Reports
from newsletter.store.signups import Signups
from newsletter.store.subscribers import Subscribers

__all__ = ["Database", "FeedbackOutcome", "Store", "StoreError", "utcnow"]


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
        self.archive = Archive(db)
        self.reports = Reports(db)

    @classmethod
    def open(cls, url: str, *, now: Clock = utcnow, check: bool = True) -> Store:
        """The store at `url`. A new, empty database is created; an older schema is refused
        (OutdatedStore, naming `newsletter db upgrade`); with `check=False`, neither."""
        db = Database(make_engine(url), now=now)
        if check:
            schema.ensure_current(db.engine)
        return cls(db)

    def close(self) -> None:
        self.db.close()

    def __getattr__(self, name: str) -> Any:
        """The old one-object names, while callers move to the repositories."""
        if name in LEGACY_NAMES:
            repository, method = LEGACY_NAMES[name]
            return getattr(getattr(self, repository), method)
        raise AttributeError(name)
