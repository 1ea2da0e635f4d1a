"""The one secret, read from the environment only, and the keys derived from it."""

from __future__ import annotations

import hashlib
import hmac
import os

from newsletter.errors import NewsletterError

SECRET_ENV = "NEWSLETTER_SECRET_KEY"
MIN_LENGTH = 32


class MissingSecret(NewsletterError):
    exit_code = 2


def secret_key(environ: dict[str, str] | None = None) -> bytes:
    """NEWSLETTER_SECRET_KEY as bytes. It must stay the same for the life of the list:
    unsubscribe links and the suppression hashes of forgotten people depend on it."""
    value = (environ if environ is not None else os.environ).get(SECRET_ENV, "")
    if len(value) < MIN_LENGTH:
        raise MissingSecret(
            f"{SECRET_ENV}: {'not set' if not value else 'too short'}; set it to a random value of at least "
            f"{MIN_LENGTH} characters, e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    return value.encode("utf-8")


def derive(key: bytes, purpose: str) -> bytes:
    """A separate key per purpose, so that one use can never forge another."""
    return hmac.new(key, b"newsletter:" + purpose.encode(), hashlib.sha256).digest()


def email_hash(key: bytes, email_key: str) -> str:
    """Keyed hash of a lower-cased address, for suppressions that must outlive the address."""
    return hmac.new(derive(key, "suppression"), email_key.encode("utf-8"), hashlib.sha256).hexdigest()
