"""The project's vocabulary: subscriber, campaign and delivery states, and the records that
pass between the spreadsheet reader, the store and the sender. No database here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

# A subscriber's status. Only `active` people are sent anything; the others keep their
# status for ever unless they resubscribe themselves.
ACTIVE = "active"
UNSUBSCRIBED = "unsubscribed"
BOUNCED = "bounced"
COMPLAINED = "complained"
STATUSES = (ACTIVE, UNSUBSCRIBED, BOUNCED, COMPLAINED)

# A campaign's state. Paused: stopped before the end (an outage, a refusal, Ctrl-C) and
# resumed by the same `send`; cancelled: nothing more is sent, what was sent stays recorded.
CAMPAIGN_SENDING = "sending"
CAMPAIGN_PAUSED = "paused"
CAMPAIGN_DONE = "done"
CAMPAIGN_CANCELLED = "cancelled"
CAMPAIGN_STATES = (CAMPAIGN_SENDING, CAMPAIGN_PAUSED, CAMPAIGN_DONE, CAMPAIGN_CANCELLED)

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
# A person whose delivery of an issue is in one of these has had it (or may have): no other
# campaign of that issue sends it to them again unless asked (`send --again`).
HAD_STATES = (SENT, SENDING, UNCERTAIN)


@dataclass(frozen=True)
class NewSubscriber:
    """A person to add or update, as read from a spreadsheet or the command line. A field left
    empty (None, or "" for the name) changes nothing stored; a new person without a language
    gets the primary one."""

    email: str  # normalised
    name: str
    language: str | None
    line: int | None = None
    attributes: dict[str, str] = field(default_factory=dict, compare=False)  # other columns of a spreadsheet


@dataclass
class ImportResult:
    added: int = 0
    updated: int = 0
    kept_status: int = 0  # known, not active: stays as it is
    suppressed: int = 0  # forgotten or suppressed before: not added back
    primary_language: int = 0  # new people given no language, who get the primary one

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
    list_id: int  # the first of its lists
    content_hash: str
    layout: str
    provider: str
    state: str
    stop_reason: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None = None
    rehearsal: bool = False
    lists: tuple[str, ...] = ()  # the names of its lists

    @property
    def open(self) -> bool:
        """Not cancelled: a later `send` of the same issue to the same lists comes back to it."""
        return self.state != CAMPAIGN_CANCELLED


@dataclass(frozen=True)
class Claimed:
    """A delivery claimed for sending, with what the message needs of the person."""

    id: int
    variant: str
    language: str
    email: str
    name: str
    token_key: str
    attributes: dict[str, str] = field(default_factory=dict, compare=False)  # for the letter's personal fields


@dataclass(frozen=True)
class ExportRow:
    """A person as `subscribers export` writes them: the subscriber, their consent and attributes."""

    subscriber: Subscriber
    attributes: dict[str, str] = field(default_factory=dict)
    consent_at: dt.datetime | None = None  # when they confirmed a sign-up
    consent_version: str | None = None  # the version of the consent sentence they agreed to
    consent_source: str | None = None  # how they came: "sign-up form", "import partners.csv"


@dataclass(frozen=True)
class PersonRecord:
    """Everything stored about one person, for an access request."""

    subscriber: Subscriber
    updated_at: dt.datetime
    attributes: dict[str, str]
    consent_at: dt.datetime | None
    consent_version: str | None
    consent_source: str | None
    lists: list[str]
    deliveries: list[tuple[str, str, dt.datetime | None]]  # (issue, state, sent at)
    events: list[tuple[str, str, dt.datetime]]  # (kind, source, when)
    suppressed: bool = False
    pending_signup: dt.datetime | None = field(default=None)  # when a sign-up awaits confirmation
