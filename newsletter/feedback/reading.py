"""What the bounce mailbox's reader makes of one message (newsletter.feedback.bounces): its
kind, the feedback events it carries and the tokens it was found with. Pure data, and the
limits every part of the reader keeps."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

SIZE_LIMIT = 1 << 20  # bytes of a message read
RECIPIENT_LIMIT = 100  # recipients of one message that become events


@dataclass(frozen=True)
class Addresses:
    """The project's own addresses that tokens are tagged onto (newsletter.toml)."""

    bounces: str | None
    unsubscribe: str | None
    delimiter: str = "+"


@dataclass(frozen=True)
class MailEvent:
    """One thing a message says about one delivery (what newsletter.feedback.policy reads)."""

    kind: str  # "bounce", "complaint", "unsubscribe", "delivery_delay"
    recipient: str | None = None  # the address the report names, when it names one
    bounce_type: str | None = None  # "Permanent", "Transient", "Undetermined", as SES says it
    complaint_type: str | None = None
    detail: str | None = None  # status and diagnostic: the store removes addresses
    original_id: str | None = None  # our message's Message-ID, when the report quotes it
    reason: str | None = None  # a bounce's, in newsletter.feedback.reasons' words


@dataclass(frozen=True)
class Reading:
    # "bounce", "complaint", "unsubscribe", "delay", "delivered", "auto-reply", "unrecognised", "unreadable"
    kind: str
    occurred_at: dt.datetime
    events: tuple[MailEvent, ...] = ()
    tokens: tuple[tuple[str, str], ...] = ()  # (role, token) as found; verified by the poller
    note: str = ""
    beyond_limit: int = 0  # recipients over RECIPIENT_LIMIT: counted, no event

    @property
    def acts(self) -> bool:
        return bool(self.events)


@dataclass(frozen=True)
class Failure:
    """One failed (or delayed) recipient as a reader found it, before it becomes an event."""

    recipient: str | None
    text: str  # what the mail system says of it: a diagnostic, or its own lines
    status: str | None = None  # an enhanced code given apart from the text (a DSN's Status)
    delayed: bool = False
    context: str = ""  # what else the mail system says of it, read when `text` says nothing
