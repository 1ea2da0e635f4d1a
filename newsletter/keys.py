"""The secret, read from the environment only; the keys derived from it; how the store's own key
is locked with it, so that a wrong key is refused and a key can be changed; and what the keys
sign: the tokens in links and addresses, and the public paths that carry them; and an address
as it is stored and keyed, normalised one way everywhere.

The store keeps one data key (the first NEWSLETTER_SECRET_KEY it met): it signs unsubscribe
links and keys the suppression hashes of forgotten people for the life of the list, so links
already sent and suppressions made never stop working. It is stored wrapped (AES-GCM) under
the current NEWSLETTER_SECRET_KEY together with that key's fingerprint: another key is refused
by every command, and `newsletter keys rotate` re-wraps the data key under a new one, after
which the old key opens nothing.

Unsubscribe tokens are opaque, HMAC-SHA256 signed and hold no email address: a token carries the
subscriber's random token key and the campaign it was sent in, so the unsubscribe can be
attributed to a campaign. Forgetting a subscriber deletes the key, and every token naming it then
leads nowhere. Delivery tokens (VERP), for the bounce and unsubscribe mail addresses, and
sign-up confirmation tokens follow; the public paths last, written once here.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import hmac
import os
import secrets
import struct

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


# --- addresses: as stored, and keyed ---------------------------------------------------------


def normalise_email(address: str) -> str:
    """The address as it will be stored: syntax checked, domain normalised, no DNS lookup.

    Raises ValueError with the reason. Internationalised local parts are refused: they
    need SMTPUTF8 all the way, which many providers do not offer.
    """
    from email_validator import EmailNotValidError, validate_email  # 35 ms: only where an address is read

    try:
        result = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    normalised = result.ascii_email or result.normalized
    if "=?" in normalised:
        # valid for SMTP, but mail software decodes it as an RFC 2047 encoded-word in a header
        raise ValueError("'=?' in an address is read as an encoded word by mail programs")
    return normalised


def email_key(address: str) -> str:
    """The uniqueness key of an address, the same for every spelling of it: case-insensitive,
    and an internationalised domain in its ASCII form (`exämple.org` is `xn--exmple-cua.org`),
    so that `forget`, `remove` and the suppressions find the person however the address is typed."""
    address = address.strip()
    if not address.isascii():
        with contextlib.suppress(ValueError):  # not an address we could have stored: compared as it is
            address = normalise_email(address)
    return address.lower()


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


# --- tokens: signed with keys derived from the data key ---------------------------------------

VERSION = 1
_KEY_BYTES = 16
_SIG_BYTES = 16
_PAYLOAD = struct.Struct(">B16sI")
_RAW = _PAYLOAD.size + _SIG_BYTES


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


LENGTH = len(_b64(bytes(_RAW)))  # 50 characters, no padding


def _decode(token: str) -> bytes | None:
    if len(token) != LENGTH:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-LENGTH % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == _RAW else None


class TokenSigner:
    def __init__(self, secret: bytes, purpose: str = "unsubscribe-token"):
        self._key = derive(secret, purpose)
        self.deliveries = DeliveryTokens(secret)  # VERP tokens, signed with keys of their own

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIG_BYTES]

    def make(self, token_key: str, campaign_id: int = 0) -> str:
        payload = _PAYLOAD.pack(VERSION, bytes.fromhex(token_key), campaign_id)
        return _b64(payload + self._sign(payload))

    def read(self, token: str) -> tuple[str, int] | None:
        """(token key, campaign id) for a genuine token written exactly as `make` writes it, else None.

        The token is compared, in constant time, with the one `make` would write for its payload:
        no second spelling passes (padding, the other base64 alphabet, other unused bits in the
        last character). Every token costs one HMAC, whatever is wrong with it.
        """
        raw = _decode(token)
        payload = raw[: _PAYLOAD.size] if raw else bytes(_PAYLOAD.size)
        canonical = _b64(payload + self._sign(payload)).encode("ascii")
        if raw is None or not hmac.compare_digest(canonical, token.encode("utf-8", "replace")):
            return None
        version, key, campaign_id = _PAYLOAD.unpack(payload)
        if version != VERSION:
            return None
        return key.hex(), campaign_id


# --- Delivery tokens (VERP) -----------------------------------------------------------------
#
# A delivery token names one delivery (one message to one person in one campaign) inside an
# email address: `bounces+<token>@…` as the envelope sender, so that a bounce names its
# delivery even when it does not quote the recipient, and `unsubscribe+<token>@…` as the
# List-Unsubscribe mailto. Each role signs with its own key, so a token from the one address
# does nothing at the other. No address is in it: version and delivery id, then 88 bits of
# HMAC-SHA256, in lower-case base32 (32 characters, no padding, no unused bits). Mail systems
# may change the case of a local part, so it is read case-insensitively; that is its one
# spelling otherwise.

DELIVERY_ROLES = ("bounce", "unsubscribe")
_DELIVERY = struct.Struct(">BQ")
_DELIVERY_SIG = 11
DELIVERY_LENGTH = (_DELIVERY.size + _DELIVERY_SIG) * 8 // 5  # 32


class DeliveryTokens:
    def __init__(self, secret: bytes):
        self._keys = {role: derive(secret, f"delivery-token:{role}") for role in DELIVERY_ROLES}

    def _token(self, payload: bytes, role: str) -> str:
        signature = hmac.new(self._keys[role], payload, hashlib.sha256).digest()[:_DELIVERY_SIG]
        return base64.b32encode(payload + signature).decode("ascii").lower()

    def make(self, delivery_id: int, role: str) -> str:
        return self._token(_DELIVERY.pack(VERSION, delivery_id), role)

    def read(self, token: str, role: str) -> int | None:
        """The delivery id of a genuine token of this role (any letter case), else None; one HMAC whatever is wrong."""
        spelled = token.lower()
        raw = None
        if len(spelled) == DELIVERY_LENGTH and spelled.isascii():
            try:
                raw = base64.b32decode(spelled.upper())
            except (binascii.Error, ValueError):
                raw = None
        payload = raw[: _DELIVERY.size] if raw else bytes(_DELIVERY.size)
        canonical = self._token(payload, role).encode("ascii")
        if raw is None or not hmac.compare_digest(canonical, spelled.encode("utf-8", "replace")):
            return None
        version, delivery_id = _DELIVERY.unpack(payload)
        return delivery_id if version == VERSION and delivery_id > 0 else None


def tagged(address: str, token: str, delimiter: str = "+") -> str:
    """`bounces@news.example.org` with a token: `bounces+<token>@news.example.org`."""
    local, _, domain = address.rpartition("@")
    return f"{local}{delimiter}{token}@{domain}"


def tag_of(candidate: str, address: str, delimiter: str = "+") -> str | None:
    """The token in `candidate` when it is `address` tagged with one (local part and domain
    compared case-insensitively), else None."""
    local, _, domain = address.lower().rpartition("@")
    c_local, _, c_domain = candidate.strip().lower().rpartition("@")
    prefix = local + delimiter
    if c_domain != domain or not c_local.startswith(prefix) or len(c_local) == len(prefix):
        return None
    return candidate.strip().rpartition("@")[0][len(prefix) :]


# --- Confirmation tokens ------------------------------------------------------------------------
#
# The link in a sign-up's confirmation message: the pending sign-up's random key and the time it
# was asked for, in the unsubscribe token's format, signed with a key of its own (an unsubscribe
# token confirms nothing, and the reverse). The time lets an expired link say so even after
# its sign-up was cleared away.


class ConfirmationTokens:
    def __init__(self, secret: bytes):
        self._signer = TokenSigner(secret, "signup-confirmation")

    def make(self, token_key: str, issued: dt.datetime) -> str:
        return self._signer.make(token_key, int(issued.timestamp()))

    def read(self, token: str) -> tuple[str, dt.datetime] | None:
        """(sign-up key, when it was issued) for a genuine token, else None; one HMAC whatever is wrong."""
        found = self._signer.read(token)
        if found is None:
            return None
        key, seconds = found
        return key, dt.datetime.fromtimestamp(seconds, dt.UTC)


# --- The public URLs ------------------------------------------------------------------------
#
# The paths `newsletter serve` answers, written once: its routes are these patterns, and the
# links in letters and confirmation messages are built from them. A token in a path is a
# capability, so the access log hides the segment after each of TOKEN_SEGMENTS.

UNSUBSCRIBE_ROUTE = "/u/{token}"
RESUBSCRIBE_ROUTE = "/u/{token}/resubscribe"
LANGUAGE_ROUTE = "/u/{token}/language"
SUBSCRIBE_ROUTE = "/subscribe"
CONFIRM_ROUTE = "/confirm/{token}"
ARCHIVE_ROUTE = "/archive"
HEALTH_ROUTE = "/healthz"
SNS_ROUTE = "/sns"  # the default of feedback.sns_path, which a project may move
TOKEN_SEGMENTS = ("u", "confirm")


def unsubscribe_path(token: str) -> str:
    return UNSUBSCRIBE_ROUTE.format(token=token)


def unsubscribe_url(base_url: str, token: str) -> str:
    """The one-click unsubscribe URL that `newsletter serve` answers at /u/<token>."""
    return base_url + unsubscribe_path(token)


def resubscribe_path(token: str) -> str:
    return RESUBSCRIBE_ROUTE.format(token=token)


def language_path(token: str) -> str:
    return LANGUAGE_ROUTE.format(token=token)


def confirm_url(base_url: str, token: str) -> str:
    """The confirmation page that `newsletter serve` answers at /confirm/<token>."""
    return base_url + CONFIRM_ROUTE.format(token=token)


def takes_token_path(path: str) -> bool:
    """Whether `path` lies under a token's paths (/u/…, /confirm/…), where no other endpoint may go."""
    return path.startswith(tuple(f"/{segment}/" for segment in TOKEN_SEGMENTS))
