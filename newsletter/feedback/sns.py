"""Verify that an SNS HTTP(S) delivery really comes from Amazon SNS, and from a topic we expect.

The checks follow the SNS developer guide ("Verifying the signatures of Amazon SNS messages") and
the stricter points found in practice:

* the signing certificate URL must be an https URL on an ``sns.<region>.amazonaws.com`` host (or
  ``.amazonaws.com.cn``) with a real region label - the AWS SDKs' looser pattern also accepts
  ``sns.s3-ap-southeast-2.amazonaws.com``, an S3 bucket anyone can fill;
* a valid signature only proves that *some* SNS topic sent the message, so callers should pass
  ``topic_arns`` (anyone can subscribe our endpoint to their own topic);
* old timestamps are rejected, so a captured message cannot be replayed for ever;
* a ``SubscribeURL`` must be visited only after :func:`verify_sns_message` returned.

Trust in the certificate comes from where it is fetched: :func:`fetch_certificate` only talks
HTTPS (with the default, verifying SSL context) to a host that passed the URL check above.
The certificate's own chain is not checked, as in the AWS SDKs.

Everything here except :func:`fetch_certificate` is pure: no network, no database.
"""

from __future__ import annotations

import base64
import binascii
import re
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from newsletter.errors import NewsletterError

__all__ = [
    "SNSVerificationError",
    "verify_sns_message",
    "signing_string",
    "check_signing_cert_url",
    "CertificateCache",
    "fetch_certificate",
    "MAX_AGE",
    "MAX_CLOCK_SKEW",
]

MAX_AGE = timedelta(hours=1)
"""A message whose Timestamp is older than this (relative to ``now``) is rejected as a replay."""

MAX_CLOCK_SKEW = timedelta(minutes=5)
"""A message whose Timestamp is further than this in the future is rejected."""

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"
MESSAGE_TYPES = (NOTIFICATION, SUBSCRIPTION_CONFIRMATION, UNSUBSCRIBE_CONFIRMATION)

# Keys of the string to sign, in order. Subject is signed only when the message has one.
_SIGNED_KEYS = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    UNSUBSCRIBE_CONFIRMATION: ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
_COMMON_REQUIRED = ("Message", "MessageId", "Timestamp", "TopicArn", "Type", "Signature", "SignatureVersion")
_CONFIRMATION_REQUIRED = ("SubscribeURL", "Token")

_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}

# re.ASCII: \d and friends must not match non-ASCII digits; fullmatch: "$" would allow a trailing "\n".
_HOST_RE = re.compile(r"sns\.[a-z]{2}(?:-gov)?-[a-z]+-[0-9]\.amazonaws\.com(?:\.cn)?", re.ASCII)
_PATH_RE = re.compile(r"/SimpleNotificationService-[0-9a-fA-F]{32}\.pem", re.ASCII)
_URL_CHARS_RE = re.compile(r"[\x21-\x7e]+", re.ASCII)  # printable ASCII, no spaces or controls
_TIMESTAMP_RE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,9}))?Z", re.ASCII)

_MAX_CERTIFICATE_BYTES = 64 * 1024


class SNSVerificationError(NewsletterError):
    """An SNS message failed verification; the message says why."""

    exit_code = 2

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def signing_string(message: Mapping[str, Any]) -> bytes:
    """The bytes SNS signs for ``message``: ``Key\\nValue\\n`` for each signed key present, in order.

    Notification: Message, MessageId, Subject (only if present and not null), Timestamp, TopicArn,
    Type. SubscriptionConfirmation and UnsubscribeConfirmation: Message, MessageId, SubscribeURL,
    Timestamp, Token, TopicArn, Type.
    """
    kind = message.get("Type")
    keys = _SIGNED_KEYS.get(kind) if isinstance(kind, str) else None
    if keys is None:
        raise SNSVerificationError(f"unknown message Type {kind!r}")
    parts: list[str] = []
    for key in keys:
        value = message.get(key)
        if value is None:  # absent (or null, as Lambda writes a missing Subject): not signed
            continue
        if not isinstance(value, str):
            raise SNSVerificationError(f"{key} must be a string")
        parts.append(f"{key}\n{value}\n")
    return "".join(parts).encode("utf-8")


def check_signing_cert_url(url: Any) -> str:
    """Return ``url`` if it is an SNS signing certificate URL we may fetch; raise otherwise.

    Required: https, port 443 or none, no userinfo, query or fragment, a host
    ``sns.<region>.amazonaws.com`` (or ``.amazonaws.com.cn``) with a real region label, and the
    path ``/SimpleNotificationService-<32 hex>.pem``.
    """
    if not isinstance(url, str) or not url:
        raise SNSVerificationError("SigningCertURL must be a non-empty string")
    # urlsplit silently drops tabs/newlines and strips leading blanks: refuse them before parsing.
    if not _URL_CHARS_RE.fullmatch(url):
        raise SNSVerificationError("SigningCertURL contains spaces, control or non-ASCII characters")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https":
        raise SNSVerificationError(f"SigningCertURL must use https, not {parts.scheme or 'no scheme'!r}")
    if "@" in parts.netloc:
        raise SNSVerificationError("SigningCertURL must not contain userinfo")
    if "?" in url:
        raise SNSVerificationError("SigningCertURL must not have a query string")
    if "#" in url:
        raise SNSVerificationError("SigningCertURL must not have a fragment")
    host, colon, port = parts.netloc.rpartition(":") if ":" in parts.netloc else (parts.netloc, "", "")
    if colon and port != "443":
        raise SNSVerificationError(f"SigningCertURL port must be 443, not {port!r}")
    if not _HOST_RE.fullmatch(host.lower()):
        raise SNSVerificationError(f"SigningCertURL host {host!r} is not an Amazon SNS host")
    if not _PATH_RE.fullmatch(parts.path):
        raise SNSVerificationError(
            f"SigningCertURL path {parts.path!r} is not /SimpleNotificationService-<32 hex digits>.pem"
        )
    return url


def _parse_timestamp(value: str) -> datetime:
    match = _TIMESTAMP_RE.fullmatch(value)
    if not match:
        raise SNSVerificationError(f"Timestamp {value!r} is not ISO 8601 UTC (YYYY-MM-DDTHH:MM:SS[.fff]Z)")
    try:
        moment = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise SNSVerificationError(f"Timestamp {value!r} is not a valid date and time") from None
    fraction = match.group(2)
    if fraction:
        moment += timedelta(microseconds=int(fraction[:6].ljust(6, "0")))
    return moment


def _check_structure(message: Any) -> tuple[str, str]:
    """Check step 1; return (message type, signing certificate URL)."""
    if not isinstance(message, dict):
        raise SNSVerificationError(f"message must be a JSON object, not {type(message).__name__}")
    kind = message.get("Type")
    if kind not in MESSAGE_TYPES:
        raise SNSVerificationError(f"unknown message Type {kind!r}")
    required = _COMMON_REQUIRED + (_CONFIRMATION_REQUIRED if kind != NOTIFICATION else ())
    for key in required:
        if key not in message:
            raise SNSVerificationError(f"missing {key}")
        if not isinstance(message[key], str):
            raise SNSVerificationError(f"{key} must be a string")
    subject = message.get("Subject")
    if subject is not None and not isinstance(subject, str):
        raise SNSVerificationError("Subject must be a string")
    # HTTP deliveries spell it SigningCertURL, Lambda events SigningCertUrl.
    spellings = [message[key] for key in ("SigningCertURL", "SigningCertUrl") if key in message]
    if not spellings:
        raise SNSVerificationError("missing SigningCertURL")
    if not all(isinstance(value, str) for value in spellings):
        raise SNSVerificationError("SigningCertURL must be a string")
    if len(set(spellings)) > 1:
        raise SNSVerificationError("SigningCertURL and SigningCertUrl disagree")
    return kind, spellings[0]


def verify_sns_message(
    message: Any,
    *,
    load_certificate: Callable[[str], bytes],
    now: datetime | None = None,
    topic_arns: Iterable[str] | None = None,
) -> None:
    """Raise :class:`SNSVerificationError` unless ``message`` is a genuine, fresh SNS message.

    ``message`` is the decoded JSON body of an SNS HTTP/HTTPS delivery (or a Lambda record's
    ``Sns`` object). ``load_certificate(url)`` returns the PEM bytes of the signing certificate,
    e.g. a :class:`CertificateCache` around :func:`fetch_certificate`; it is called only after
    every cheap check passed, and only with a URL that passed :func:`check_signing_cert_url`.
    ``now`` (timezone-aware, default: the current UTC time) is used for the freshness and
    certificate validity checks. ``topic_arns``: the allowed TopicArns; ``None`` skips that check.
    """
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    kind, cert_url = _check_structure(message)
    hash_class, signature = _signature_of(message)
    check_signing_cert_url(cert_url)  # where the certificate would come from
    _check_topic(message, topic_arns)
    _check_fresh(message, now)
    certificate = _certificate(load_certificate, cert_url, now)
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SNSVerificationError("certificate key is not an RSA key")
    try:
        public_key.verify(signature, signing_string(message), padding.PKCS1v15(), hash_class())
    except InvalidSignature:
        version = message["SignatureVersion"]
        raise SNSVerificationError(f"signature does not match (SignatureVersion {version}, {kind})") from None


def _signature_of(message: dict) -> tuple[type[hashes.HashAlgorithm], bytes]:
    """The hash of the signature version and the signature's bytes."""
    version = message["SignatureVersion"]
    hash_class = _HASHES.get(version)
    if hash_class is None:
        raise SNSVerificationError(f"unsupported signature version {version!r}")
    try:
        signature = base64.b64decode(message["Signature"], validate=True)
    except (binascii.Error, ValueError):
        raise SNSVerificationError("Signature is not valid base64") from None
    if not signature:
        raise SNSVerificationError("Signature is empty")
    return hash_class, signature


def _check_topic(message: dict, topic_arns: Iterable[str] | None) -> None:
    """Whose topic: a valid signature only proves that some SNS topic sent the message."""
    if topic_arns is None:
        return
    allowed = {topic_arns} if isinstance(topic_arns, str) else set(topic_arns)
    if message["TopicArn"] not in allowed:
        raise SNSVerificationError(f"TopicArn {message['TopicArn']!r} is not an allowed topic")


def _check_fresh(message: dict, now: datetime) -> None:
    """Not a replay: sent within MAX_AGE, and not from the future."""
    sent = _parse_timestamp(message["Timestamp"])
    if sent < now - MAX_AGE:
        raise SNSVerificationError(f"Timestamp {message['Timestamp']} is stale (older than {MAX_AGE})")
    if sent > now + MAX_CLOCK_SKEW:
        raise SNSVerificationError(f"Timestamp {message['Timestamp']} is in the future")


def _certificate(load_certificate: Callable[[str], bytes], cert_url: str, now: datetime) -> x509.Certificate:
    """The signing certificate, loaded only now that every cheap check passed, and valid at `now`."""
    try:
        pem = load_certificate(cert_url)
    except Exception as exc:
        raise SNSVerificationError(f"cannot load certificate {cert_url}: {exc}") from exc
    if isinstance(pem, str):
        pem = pem.encode("ascii", "replace")
    if not isinstance(pem, (bytes, bytearray)):
        raise SNSVerificationError(f"cannot load certificate {cert_url}: loader returned {type(pem).__name__}")
    try:
        certificate = x509.load_pem_x509_certificate(bytes(pem))
    except ValueError as exc:
        raise SNSVerificationError(f"certificate from {cert_url} is not a valid PEM certificate: {exc}") from None
    if now < certificate.not_valid_before_utc:
        raise SNSVerificationError(f"certificate is not yet valid (valid from {certificate.not_valid_before_utc})")
    if now > certificate.not_valid_after_utc:
        raise SNSVerificationError(f"certificate has expired (valid until {certificate.not_valid_after_utc})")
    return certificate


class CertificateCache:
    """A ``load_certificate`` that remembers PEMs by URL, so each certificate is fetched once.

    Thread-safe; concurrent calls for the same URL wait for one fetch. Keeps the ``maxsize`` most
    recently used certificates. Failed fetches are not cached.
    """

    def __init__(self, fetch: Callable[[str], bytes] | None = None, maxsize: int = 32):
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._fetch = fetch if fetch is not None else fetch_certificate
        self._maxsize = maxsize
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._url_locks: dict[str, threading.Lock] = {}

    def _cached(self, url: str) -> bytes | None:
        with self._lock:
            pem = self._entries.get(url)
            if pem is not None:
                self._entries.move_to_end(url)
            return pem

    def __call__(self, url: str) -> bytes:
        pem = self._cached(url)
        if pem is not None:
            return pem
        with self._lock:
            url_lock = self._url_locks.setdefault(url, threading.Lock())
        with url_lock:
            pem = self._cached(url)  # another thread may have fetched it meanwhile
            if pem is not None:
                return pem
            try:
                pem = self._fetch(url)
                if isinstance(pem, (bytes, bytearray)):
                    pem = bytes(pem)
                    with self._lock:
                        self._entries[url] = pem
                        self._entries.move_to_end(url)
                        while len(self._entries) > self._maxsize:
                            self._entries.popitem(last=False)
                return pem
            finally:
                with self._lock:
                    self._url_locks.pop(url, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to another valid SNS certificate URL on the same host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 (urllib API)
        newurl = urllib.parse.urljoin(req.full_url, newurl)
        check_signing_cert_url(newurl)
        if urllib.parse.urlsplit(newurl).hostname != urllib.parse.urlsplit(req.full_url).hostname:
            raise SNSVerificationError(f"certificate download redirected to another host: {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_certificate(url: str, timeout: float = 10) -> bytes:
    """Download the PEM at ``url`` over HTTPS, after checking that it is an SNS certificate URL.

    Redirects are followed only to valid certificate URLs on the same host; the body is capped
    at 64 KiB. Not covered by the tests: AWS's certificate hosts cannot be reached from where
    they run, so the tests pass their own ``load_certificate`` instead.
    """
    check_signing_cert_url(url)
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ssl.create_default_context()),
        _SameHostRedirects(),
    )
    request = urllib.request.Request(url, headers={"Accept": "application/x-pem-file, */*"})
    try:
        with opener.open(request, timeout=timeout) as response:
            final_url = response.geturl()
            check_signing_cert_url(final_url)
            if response.status != 200:
                raise SNSVerificationError(f"certificate download from {url} returned HTTP {response.status}")
            body = response.read(_MAX_CERTIFICATE_BYTES + 1)
    except (urllib.error.URLError, OSError) as exc:
        raise SNSVerificationError(f"cannot download certificate {url}: {exc}") from exc
    if len(body) > _MAX_CERTIFICATE_BYTES:
        raise SNSVerificationError(f"certificate at {url} is larger than {_MAX_CERTIFICATE_BYTES} bytes")
    return body
