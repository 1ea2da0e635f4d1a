"""The only package that touches the database. `Store` gathers one part per aggregate:
subscribers and lists, the campaign ledger, feedback, reports."""

from __future__ import annotations

from newsletter.store import schema
from newsletter.store.archive import ArchiveStore
from newsletter.store.database import Clock, StoreError, make_engine, utcnow
from newsletter.store.feedback import FeedbackOutcome, FeedbackStore
from newsletter.store.ledger import LedgerStore
from newsletter.store.reports import ReportStore
from newsletter.store.signups import SignupStore

__all__ = ["FeedbackOutcome", "Store", "StoreError", "utcnow"]


class Store(FeedbackStore, SignupStore, LedgerStore, ReportStore, ArchiveStore):
    """Subscribers (store.subscribers), campaigns (store.campaigns), the ledger (store.ledger),
    feedback (store.feedback), sign-ups and consent (store.signups), reports (store.reports) and the
    archive (store.archive) over one engine."""

    @classmethod
    def open(cls, url: str, *, now: Clock = utcnow, check: bool = True) -> Store:
        """The store at `url`. A new, empty database is created; an older schema is refused
        (OutdatedStore, naming `newsletter db upgrade`); with `check=False`, neither."""
        store = cls(make_engine(url), now=now)
        if check:
            schema.ensure_current(store.engine)
        return store
