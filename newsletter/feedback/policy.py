"""What bounces and complaints do to a person: pure rules, no database.

- a permanent bounce: the person becomes `bounced` and is suppressed;
- transient and undetermined bounces are soft: soft bounces in `soft_bounce_limit` different
  campaigns within `soft_bounce_days` suppress the address the same way;
- a bounce whose reason is about us or our message (newsletter.feedback.reasons: sender
  rejected, authentication, blocked, rate limited, content rejected, too big) does nothing to
  the person, whatever its type: the campaign reports it as a deliverability problem. The
  mailbox's bounces are Permanent only for a hard reason; SES's type is SES's own;
- a complaint (any feedback type but `not-spam`): the person becomes `complained` and is
  suppressed, even after unsubscribing;
- anything else is only recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from newsletter import domain as d
from newsletter.feedback.reasons import counts_against_recipient

# the bounce types, as SES says them (newsletter.feedback.diagnosis reads them from a bounce's words)
PERMANENT, TRANSIENT, UNDETERMINED = "Permanent", "Transient", "Undetermined"
SOFT_BOUNCE_TYPES = (TRANSIENT, UNDETERMINED)


class Event(Protocol):
    """What the rules need of a feedback event (newsletter.feedback.ses_events.FeedbackEvent)."""

    @property
    def kind(self) -> str: ...

    @property
    def bounce_type(self) -> str | None: ...

    @property
    def complaint_type(self) -> str | None: ...

    @property
    def reason(self) -> str | None: ...


@dataclass(frozen=True)
class Verdict:
    """A change of status: to `status`, only from one of `from_states`; suppressed for `reason`."""

    status: str
    from_states: tuple[str, ...]
    reason: str


BOUNCE = Verdict(d.BOUNCED, (d.ACTIVE,), "bounced")
COMPLAINT = Verdict(d.COMPLAINED, (d.ACTIVE, d.UNSUBSCRIBED), "complained")


def is_hard_bounce(event: Event) -> bool:
    return event.kind == "bounce" and event.bounce_type == PERMANENT and counts_against_recipient(event.reason)


def is_soft_bounce(event: Event) -> bool:
    return event.kind == "bounce" and event.bounce_type in SOFT_BOUNCE_TYPES and counts_against_recipient(event.reason)


def is_complaint(event: Event) -> bool:
    return event.kind == "complaint" and event.complaint_type != "not-spam"


@dataclass(frozen=True)
class FeedbackPolicy:
    soft_bounce_limit: int = 3  # soft bounces in this many different campaigns…
    soft_bounce_days: int = 90  # …within this many days suppress the address

    def window_start(self, now: dt.datetime) -> dt.datetime:
        """Soft bounces before this moment no longer count."""
        return now - dt.timedelta(days=self.soft_bounce_days)

    def verdict(self, event: Event, soft_bounce_campaigns: Callable[[], int]) -> Verdict | None:
        """What `event` does to its person, if anything.

        `soft_bounce_campaigns()` counts the campaigns with a soft bounce of this person inside
        the window, this event included; it is asked only for a soft bounce.
        """
        if is_hard_bounce(event):
            return BOUNCE
        if is_soft_bounce(event):
            return BOUNCE if soft_bounce_campaigns() >= self.soft_bounce_limit else None
        if is_complaint(event):
            return COMPLAINT
        return None
