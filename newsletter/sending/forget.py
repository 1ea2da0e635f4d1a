"""Forgetting a person everywhere sending left a trace: the store (their row, lists, stored
texts; only a keyed hash of the address stays, as a suppression) and the outbox's copies of
the messages they were sent."""

from __future__ import annotations

from dataclasses import dataclass

from newsletter.config import Config
from newsletter.sending.providers import outbox
from newsletter.store import Store


@dataclass(frozen=True)
class Erased:
    known: bool  # False: the address was not known; it is suppressed all the same
    outbox_files: int


def forget(config: Config, address: str) -> Erased:
    store = Store.open(config.store_url)
    forgotten = store.subscribers.forget(address, store.keys.data_key())
    files = outbox.erase(config.root / config.send.outbox, forgotten.deliveries)
    return Erased(forgotten.known, files)
