"""What the pollers (sqs.py, mailbox.py) act through: whatever records feedback and acts on it,
passed in by their caller (the store's feedback repository), so that this layer never imports
the store below it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from newsletter.feedback.bounces import MailEvent
from newsletter.feedback.policy import FeedbackPolicy
from newsletter.feedback.ses_events import FeedbackEvent


@dataclass
class FeedbackOutcome:
    """What one SES message or one mailbox message changed."""

    recorded: int = 0
    duplicates: int = 0
    unknown: int = 0
    bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0
    repeated_message: bool = False
    beyond_limit: int = 0  # events over the limit of one message: counted, not stored


class FeedbackSink(Protocol):
    def now(self) -> dt.datetime: ...

    def apply_feedback(
        self,
        events: Sequence[FeedbackEvent],
        *,
        message_key: str | None,
        source: str,
        policy: FeedbackPolicy,
        secret: bytes,
    ) -> FeedbackOutcome: ...

    def apply_mail(
        self,
        events: Sequence[MailEvent],
        *,
        message_key: str,
        delivery_id: int | None,
        occurred_at: dt.datetime,
        policy: FeedbackPolicy,
        secret: bytes,
    ) -> FeedbackOutcome: ...
