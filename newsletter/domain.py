"""The project's vocabulary: subscriber, campaign and delivery states, and the records that
pass between the spreadsheet reader, the store and the sender. No database here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# A subscriber's status. Only `active` people are sent anything; the others keep their
# status for ever unless they resubscribe themselves.
ACTIVE = "active"
UNSUBSCRIBED = "unsubscribed"
BOUNCED = "bounced"
COMPLAINED = "complained"
STATUSES = (ACTIVE, UNSUBSCRIBED, BOUNCED, COMPLAINED)

# A campaign's state.
CAMPAIGN_SENDING = "sending"
CAMPAIGN_STOPPED = "stopped"
CAMPAIGN_DONE = "done"

# A delivery's state. `sending` is written before the provider is called and `sent` only
# after it returned a message id, so a delivery left `sending` by a dead process may or may
# not have gone out: on resume it becomes `uncertain`, resent only when asked.
PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
UNCERTAIN = "uncertain"
SKIPPED = "skipped"  # the person left (or was forgotten) after the recipients were frozen
DELIVERY_STATES = (PENDING, SENDING, SENT, FAILED, UNCERTAIN, SKIPPED)
FINISHED_STATES = (SENT, FAILED, UNCERTAIN)


# The variant with every language of the letter, the primary one first.
BILINGUAL = "bilingual"


def email_key(address: str) -> str:
    """The uniqueness key of an address: addresses compare case-insensitively."""
    return address.strip().lower()


@dataclass(frozen=True)
class NewSubscriber:
    """A person to add or update, as read from a spreadsheet or the command line."""

    email: str  # normalised
    name: str
    language: str
    line: int | None = None


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    kept_status: int = 0  # known, not active: stays as it is
    suppressed: int = 0  # forgotten or suppressed before: not added back

    def total(self) -> int:
        return self.added + self.updated + self.kept_status + self.suppressed


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str
    language: str
    status: str
    token_key: str  # random, public: what an unsubscribe token names instead of the address
    created_at: dt.datetime


@dataclass(frozen=True)
class Campaign:
    id: int
    slug: str
    list_id: int
    content_hash: str
    layout: str
    provider: str
    state: str
    stop_reason: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for sending, with what the message needs of the person."""

    id: int
    variant: str
    language: str
    email: str
    name: str
    token_key: str
