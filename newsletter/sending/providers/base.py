"""Providers send one finished message to one recipient: outbox, SMTP or Amazon SES.

Vendor errors (smtplib, botocore) are converted at this boundary into SendError, which
says what the campaign loop should do:

- `retryable`: certainly not sent (a 4xx reply, throttling, a connection lost before the
  message was handed over); try again after a pause;
- `unavailable`: certainly not sent, and nothing can be (cannot connect, DNS, TLS): the
  provider is down; after a short retry the campaign pauses;
- `uncertain`: may have been sent (the connection died after the message went out, a
  read timeout); never retried automatically, since that could send it twice;
- `fatal`: no message can go out until a person acts (authentication refused, sending
  paused, sender not verified, quota); the campaign pauses at once, resumable;
- none of these: this recipient failed for good (an address the server refuses, a message
  the provider rejects). Fatal for the provider is never fatal for the recipient.
"""

from __future__ import annotations

from typing import Protocol

from newsletter.errors import NewsletterError
from newsletter.message.composer import Outgoing


class SendError(NewsletterError):
    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        uncertain: bool = False,
        fatal: bool = False,
        unavailable: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.unavailable = unavailable
        self.retryable = retryable
        self.uncertain = uncertain
        self.fatal = fatal
        self.retry_after = retry_after


class Provider(Protocol):
    """One connection's worth of sending; each worker thread opens its own."""

    def send(self, message: Outgoing) -> str:
        """Send and return the provider's message id, or raise SendError."""

    def close(self) -> None: ...


class ProviderFactory(Protocol):
    name: str

    def max_rate(self) -> float | None:
        """The provider's own limit in messages per second, when it tells one."""

    def open(self) -> Provider: ...
