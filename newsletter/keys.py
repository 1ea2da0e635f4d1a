"""The secret, read from the environment only; the keys derived from it; and how the store's
own key is locked with it, so that a wrong key is refused and a key can be changed.

The store keeps one data key (the first NEWSLETTER_SECRET_KEY it met): it signs unsubscribe
links and keys the suppression hashes of forgotten people for the life of the list, so links
already sent and suppressions made never stop working. It is stored wrapped (AES-GCM) under
the current NEWSLETTER_SECRET_KEY together with that key's fingerprint: another key is refused
by every command, and `newsletter keys rotate` re-wraps the data key under a new one, after
which the old key opens nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from newsletter.errors import NewsletterError

SECRET_ENV = "NEWSLETTER_SECRET_KEY"
OLD_ENV = "NEWSLETTER_OLD_SECRET_KEYS"
MIN_LENGTH = 32  # bytes
_WRAP_LABEL = b"newsletter data key"


class MissingSecret(NewsletterError):
    exit_code = 2


class WrongKey(NewsletterError):
    exit_code = 2


def _checked(name: str, value: str) -> bytes:
    raw = value.encode("utf-8")
    problem = None
    if not value:
        problem = "not set"
    elif len(raw) < MIN_LENGTH:
        problem = f"too short ({len(raw)} bytes)"
    elif len(set(value)) == 1:
        problem = "one character repeated"
    if problem:
        raise MissingSecret(
            f"{name}: {problem}; set it to a random value of at least {MIN_LENGTH} bytes, "
            "e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        )
    return raw


def secret_key(environ: dict[str, str] | None = None) -> bytes:
    """NEWSLETTER_SECRET_KEY as bytes, refused when missing, short or one repeated character."""
    return _checked(SECRET_ENV, (environ if environ is not None else os.environ).get(SECRET_ENV, ""))


def old_keys(environ: dict[str, str] | None = None) -> list[bytes]:
    """NEWSLETTER_OLD_SECRET_KEYS (comma-separated): keys that still open the store until rotated."""
    value = (environ if environ is not None else os.environ).get(OLD_ENV, "")
    return [_checked(OLD_ENV, part.strip()) for part in value.split(",") if part.strip()]


def derive(key: bytes, purpose: str) -> bytes:
    """A separate key per purpose, so that one use can never forge another."""
    return hmac.new(key, b"newsletter:" + purpose.encode(), hashlib.sha256).digest()


def email_hash(key: bytes, email_key: str) -> str:
    """Keyed hash of a lower-cased address, for suppressions that must outlive the address."""
    return hmac.new(derive(key, "suppression"), email_key.encode("utf-8"), hashlib.sha256).hexdigest()


def fingerprint(key: bytes) -> str:
    """Names a key without revealing it."""
    return derive(key, "fingerprint").hex()


def wrap(key: bytes, data_key: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # only the store's key needs it

    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(derive(key, "key-wrapping")).encrypt(nonce, data_key, _WRAP_LABEL)


def unwrap(key: bytes, wrapped: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        return AESGCM(derive(key, "key-wrapping")).decrypt(wrapped[:12], wrapped[12:], _WRAP_LABEL)
    except InvalidTag:
        raise WrongKey(f"{SECRET_ENV}: the store's key does not open with it (damaged store?)") from None


def wrong_key(stored: str, given: bytes) -> WrongKey:
    return WrongKey(
        f"{SECRET_ENV}: not the key this store was made with (the store's key has fingerprint {stored[:12]}…, "
        f"this one {fingerprint(given)[:12]}…). Set the store's key; to change keys, put the old one in "
        f"{OLD_ENV} and run `newsletter keys rotate`."
    )
