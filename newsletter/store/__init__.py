"""The only package that touches the database. `Store` gathers one part per aggregate:
subscribers and lists, the campaign ledger, feedback, reports."""

from __future__ import annotations

from newsletter.store.database import Clock, StoreError, make_engine, utcnow
from newsletter.store.feedback import FeedbackOutcome, FeedbackStore
from newsletter.store.ledger import LedgerStore
from newsletter.store.reports import ReportStore

__all__ = ["FeedbackOutcome", "Store", "StoreError", "utcnow"]


class Store(FeedbackStore, LedgerStore, ReportStore):
    """Subscribers (store.subscribers), campaigns (store.campaigns), the ledger (store.ledger),
    feedback (store.feedback) and reports (store.reports) over one engine."""

    @classmethod
    def open(cls, url: str, *, now: Clock = utcnow, migrate: bool = True) -> Store:
        store = cls(make_engine(url), now=now)
        if migrate:
            store.migrate()
        return store
