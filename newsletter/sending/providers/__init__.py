"""The providers: outbox, SMTP or Amazon SES behind one small interface (newsletter.sending.providers.base)."""

from __future__ import annotations

from newsletter.config import Config
from newsletter.sending.providers.base import Provider, ProviderFactory, SendError

__all__ = ["Provider", "ProviderFactory", "SendError", "provider_factory"]


def provider_factory(name: str, config: Config, *, campaign_label: str = "test") -> ProviderFactory:
    if name == "outbox":
        from newsletter.sending.providers.outbox import OutboxFactory

        return OutboxFactory(config.root / config.send.outbox / campaign_label)
    if name == "smtp":
        from newsletter.sending.providers.smtp import SMTPFactory

        return SMTPFactory(config.smtp)
    if name == "ses":
        from newsletter.sending.providers.ses import SESFactory

        return SESFactory(config.ses)
    raise ValueError(f"unknown provider {name!r}")
