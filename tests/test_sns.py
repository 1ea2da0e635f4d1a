"""SNS message signature verification (newsletter.feedback.sns).

The one fake here is the certificate: AWS's certificate hosts (sns.<region>.amazonaws.com) cannot
be reached from where the tests run, and only AWS holds the private key behind them. So the tests
make their own RSA key and self-signed certificate, sign messages with it exactly as SNS does
(PKCS#1 v1.5 with SHA1 for SignatureVersion "1", SHA256 for "2"), and pass a ``load_certificate``
that returns that PEM. Everything else - URL checks, canonical string, timestamps, validity,
signature maths - runs for real. The envelope fixtures in tests/fixtures/ses are used too: their
signatures are placeholders, so they must be rejected, and pass once signed with the test key.
"""

from __future__ import annotations

import base64
import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from ses_samples import SAMPLES

from newsletter.errors import NewsletterError
from newsletter.feedback.sns import (
    CertificateCache,
    SNSVerificationError,
    check_signing_cert_url,
    signing_string,
    verify_sns_message,
)

NOW = datetime.now(timezone.utc).replace(microsecond=0)
TOPIC = "arn:aws:sns:us-east-1:123456789012:newsletter-feedback"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
CERT_PATH = "/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(key: rsa.RSAPrivateKey, not_before: datetime, not_after: datetime) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.us-east-1.amazonaws.com (test)")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return _key()


@pytest.fixture(scope="module")
def pem(key) -> bytes:
    return _certificate(key, NOW - timedelta(days=1), NOW + timedelta(days=30))


@pytest.fixture(scope="module")
def loader(pem):
    calls: list[str] = []

    def load_certificate(url: str) -> bytes:
        calls.append(url)
        return pem

    load_certificate.calls = calls
    return load_certificate


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sign(message: dict, key: rsa.RSAPrivateKey, version: str | None = None) -> dict:
    """Sign ``message`` in place the way SNS does (version from the message unless given)."""
    version = version or message["SignatureVersion"]
    digest = {"1": hashes.SHA1(), "2": hashes.SHA256()}[version]
    message["Signature"] = base64.b64encode(key.sign(signing_string(message), padding.PKCS1v15(), digest)).decode()
    return message


def notification(key, *, version: str = "2", subject: str | None = "Bounce", sent: datetime | None = None, **extra) -> dict:
    message = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Message": json.dumps({"notificationType": "Bounce", "bounce": {"bounceType": "Permanent"}}),
        "Timestamp": _timestamp(sent or NOW - timedelta(seconds=5)),
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + TOPIC + ":1",
    }
    if subject is not None:
        message["Subject"] = subject
    message.update(extra)
    return sign(message, key)


def confirmation(key, kind: str = "SubscriptionConfirmation", version: str = "2") -> dict:
    message = {
        "Type": kind,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e2425f004a",
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.\nTo confirm, visit the SubscribeURL.",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + TOPIC,
        "Timestamp": _timestamp(NOW - timedelta(seconds=5)),
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
    }
    return sign(message, key)


def verify(message, loader, **kwargs) -> None:
    kwargs.setdefault("now", NOW)
    verify_sns_message(message, load_certificate=loader, **kwargs)


def rejected(message, loader, match: str, **kwargs) -> SNSVerificationError:
    with pytest.raises(SNSVerificationError, match=match) as info:
        verify(message, loader, **kwargs)
    return info.value


# --- the canonical string ---------------------------------------------------------------------


def test_signing_string_notification_order_and_optional_subject():
    message = {
        "Type": "Notification", "TopicArn": "T", "Timestamp": "TS", "Subject": "S", "MessageId": "ID",
        "Message": "M", "Signature": "x", "SigningCertURL": "u", "UnsubscribeURL": "un",
    }
    assert signing_string(message) == b"Message\nM\nMessageId\nID\nSubject\nS\nTimestamp\nTS\nTopicArn\nT\nType\nNotification\n"
    del message["Subject"]
    assert signing_string(message) == b"Message\nM\nMessageId\nID\nTimestamp\nTS\nTopicArn\nT\nType\nNotification\n"


def test_signing_string_confirmation_order():
    message = {
        "Type": "UnsubscribeConfirmation", "TopicArn": "T", "Token": "K", "Timestamp": "TS",
        "SubscribeURL": "SU", "MessageId": "ID", "Message": "M", "Subject": "ignored",
    }
    assert signing_string(message) == (
        b"Message\nM\nMessageId\nID\nSubscribeURL\nSU\nTimestamp\nTS\nToken\nK\nTopicArn\nT\nType\nUnsubscribeConfirmation\n"
    )


# --- accepted ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
def test_notification_accepted(key, loader, version):
    loader.calls.clear()
    verify(notification(key, version=version), loader, topic_arns=[TOPIC])
    assert loader.calls == [CERT_URL]


def test_notification_without_subject_accepted(key, loader):
    message = notification(key, subject=None)
    assert "Subject" not in message
    verify(message, loader)


def test_lambda_null_subject_is_not_signed(key, loader):
    message = notification(key, subject=None)
    message["Subject"] = None  # Lambda records carry "Subject": null
    verify(message, loader)


@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_confirmation_v2_accepted(key, loader, kind):
    verify(confirmation(key, kind), loader, topic_arns={TOPIC})


def test_lambda_spelling_signing_cert_url_accepted(key, loader):
    message = notification(key)
    message["SigningCertUrl"] = message.pop("SigningCertURL")
    loader.calls.clear()
    verify(message, loader)
    assert loader.calls == [CERT_URL]


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.cn-north-1.amazonaws.com.cn" + CERT_PATH,
        "https://sns.us-east-1.amazonaws.com:443" + CERT_PATH,
        "https://sns.us-gov-west-1.amazonaws.com" + CERT_PATH,
        "https://sns.ap-southeast-2.amazonaws.com" + CERT_PATH,
        "https://sns.eu-west-2.amazonaws.com/SimpleNotificationService-F3ECFB7224C7233FE7BB5F59F96DE52F.pem",
    ],
    ids=["cn-north-1", "explicit-443", "gov", "ap-southeast-2", "upper-hex"],
)
def test_other_valid_cert_urls_accepted(key, loader, url):
    loader.calls.clear()
    verify(notification(key, SigningCertURL=url), loader)
    assert loader.calls == [url]


# --- rejected: signature ----------------------------------------------------------------------


def test_tampered_message_rejected(key, loader):
    message = notification(key)
    message["Message"] = message["Message"].replace("Permanent", "Transient")
    rejected(message, loader, "signature does not match")


def test_tampered_subject_rejected(key, loader):
    message = notification(key)
    message["Subject"] = "Something else"
    rejected(message, loader, "signature does not match")


def test_removed_subject_rejected(key, loader):
    message = notification(key)
    del message["Subject"]
    rejected(message, loader, "signature does not match")


def test_signature_by_another_key_rejected(loader):
    rejected(notification(_key()), loader, "signature does not match")


def test_version_mismatch_rejected(key, loader):
    """Signed with SHA1 but claiming version 2: the hash must follow the claimed version."""
    message = notification(key, version="2")
    sign(message, key, version="1")
    rejected(message, loader, "signature does not match")


def test_tampered_confirmation_token_rejected(key, loader):
    message = confirmation(key)
    message["Token"] = "another-token"
    rejected(message, loader, "signature does not match")


def test_signature_not_base64_rejected(key, loader):
    message = notification(key)
    message["Signature"] = "EXAMPLEw6JRN..."
    rejected(message, loader, "not valid base64")


@pytest.mark.parametrize("version", ["3", "0", "", "1.0"])
def test_unsupported_signature_version_rejected(key, loader, version):
    message = notification(key)
    message["SignatureVersion"] = version
    rejected(message, loader, "unsupported signature version")


def test_missing_signature_version_rejected(key, loader):
    message = notification(key)
    del message["SignatureVersion"]
    rejected(message, loader, "missing SignatureVersion")


# --- rejected: shape --------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["Message", "MessageId", "Timestamp", "TopicArn", "Signature", "SigningCertURL"])
def test_missing_required_key_rejected(key, loader, missing):
    message = notification(key)
    del message[missing]
    rejected(message, loader, f"missing {missing}")


@pytest.mark.parametrize("missing", ["SubscribeURL", "Token"])
def test_confirmation_missing_key_rejected(key, loader, missing):
    message = confirmation(key)
    del message[missing]
    rejected(message, loader, f"missing {missing}")


def test_unknown_type_and_non_dict_rejected(key, loader):
    message = notification(key)
    message["Type"] = "Bogus"
    rejected(message, loader, "unknown message Type 'Bogus'")
    rejected([message], loader, "must be a JSON object")


def test_non_string_value_rejected(key, loader):
    message = notification(key)
    message["Message"] = {"notificationType": "Bounce"}
    rejected(message, loader, "Message must be a string")


def test_both_cert_url_spellings_disagreeing_rejected(key, loader):
    message = notification(key, SigningCertUrl="https://sns.eu-west-1.amazonaws.com" + CERT_PATH)
    rejected(message, loader, "disagree")


# --- rejected: certificate URL (the loader must never be called) ------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://sns.us-east-1.amazonaws.com" + CERT_PATH, "must use https"),
        ("https://example.com" + CERT_PATH, "not an Amazon SNS host"),
        ("https://evil.com" + CERT_PATH, "not an Amazon SNS host"),
        ("https://sns.s3-ap-southeast-2.amazonaws.com" + CERT_PATH, "not an Amazon SNS host"),
        ("https://sns.us-east-1.amazonaws.com.evil.com" + CERT_PATH, "not an Amazon SNS host"),
        ("https://sqs.us-east-1.amazonaws.com" + CERT_PATH, "not an Amazon SNS host"),
        ("https://sns.us-3-1.amazonaws.com" + CERT_PATH, "not an Amazon SNS host"),
        ("https://sns.us-east-1.amazonaws.cn" + CERT_PATH, "not an Amazon SNS host"),
        ("https://sns.us-east-1.amazonaws.com:8443" + CERT_PATH, "port must be 443"),
        ("https://sns.us-east-1.amazonaws.com:" + CERT_PATH, "port must be 443"),
        ("https://sns.us-east-1.amazonaws.com/evil.pem", "path"),
        ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-xyz.pem", "path"),
        ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52.pem", "path"),
        ("https://sns.us-east-1.amazonaws.com/x" + CERT_PATH, "path"),
        ("https://sns.us-east-1.amazonaws.com" + CERT_PATH + "?x=1", "query string"),
        ("https://sns.us-east-1.amazonaws.com" + CERT_PATH + "?", "query string"),
        ("https://sns.us-east-1.amazonaws.com" + CERT_PATH + "#frag", "fragment"),
        ("https://user@sns.us-east-1.amazonaws.com" + CERT_PATH, "userinfo"),
        ("https://user:pw@sns.us-east-1.amazonaws.com" + CERT_PATH, "userinfo"),
        ("https://sns.us-east-1.amazonaws.com" + CERT_PATH + "\n", "control"),
        ("https://sns.us-east-1.amazonaws.com/Simple\tNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem", "control"),
        (" https://sns.us-east-1.amazonaws.com" + CERT_PATH, "control"),
    ],
)
def test_bad_signing_cert_url_rejected(key, url, reason):
    calls: list[str] = []
    message = notification(key, SigningCertURL=url)
    rejected(message, lambda u: calls.append(u) or b"", reason)
    assert calls == []
    with pytest.raises(SNSVerificationError, match=reason):
        check_signing_cert_url(url)


# --- rejected: topic, time --------------------------------------------------------------------


def test_topic_not_allowed_rejected(key, loader):
    loader.calls.clear()
    rejected(notification(key), loader, "not an allowed topic", topic_arns=["arn:aws:sns:us-east-1:123456789012:other"])
    rejected(notification(key), loader, "not an allowed topic", topic_arns=[])
    assert loader.calls == []


def test_topic_check_skipped_when_none(key, loader):
    verify(notification(key), loader, topic_arns=None)


def test_timestamp_61_minutes_old_rejected(key, loader):
    rejected(notification(key, sent=NOW - timedelta(minutes=61)), loader, "stale")


def test_timestamp_59_minutes_old_accepted(key, loader):
    verify(notification(key, sent=NOW - timedelta(minutes=59)), loader)


def test_timestamp_in_future_rejected(key, loader):
    rejected(notification(key, sent=NOW + timedelta(minutes=6)), loader, "in the future")


@pytest.mark.parametrize("value", ["yesterday", "2024-01-01T00:00:00", "2024-01-01T00:00:00+00:00", "2024-13-01T00:00:00Z"])
def test_unparsable_timestamp_rejected(key, loader, value):
    message = notification(key)
    message["Timestamp"] = value
    rejected(message, loader, "Timestamp")


def test_naive_now_is_a_programming_error(key, loader):
    with pytest.raises(ValueError, match="timezone-aware"):
        verify(notification(key), loader, now=datetime.now())


# --- rejected: certificate --------------------------------------------------------------------


def test_expired_certificate_rejected(key, loader, pem):
    later = x509.load_pem_x509_certificate(pem).not_valid_after_utc + timedelta(minutes=1)
    message = notification(key, sent=later - timedelta(seconds=5))
    rejected(message, loader, "certificate has expired", now=later)


def test_certificate_not_yet_valid_rejected(key, loader, pem):
    earlier = x509.load_pem_x509_certificate(pem).not_valid_before_utc - timedelta(minutes=1)
    message = notification(key, sent=earlier - timedelta(seconds=5))
    rejected(message, loader, "not yet valid", now=earlier)


def test_loader_that_raises_rejected(key):
    def broken(url: str) -> bytes:
        raise OSError("connection refused")

    error = rejected(notification(key), broken, "cannot load certificate")
    assert isinstance(error.__cause__, OSError)


def test_loader_returning_garbage_rejected(key):
    rejected(notification(key), lambda url: b"not a certificate", "not a valid PEM certificate")


def test_error_is_a_newsletter_error(key):
    message = notification(key)
    message["SignatureVersion"] = "3"
    with pytest.raises(NewsletterError) as info:
        verify(message, lambda url: b"")
    assert isinstance(info.value, SNSVerificationError)
    assert info.value.exit_code == 2
    assert str(info.value) == info.value.reason == "unsupported signature version '3'"


# --- the envelope fixtures --------------------------------------------------------------------

FIXTURE_TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"
# each fixture's placeholder signature, and what it fails on
ENVELOPES = {
    "sns_envelope_notification.json": "Signature is not valid base64",
    "sns_envelope_subscription_confirmation.json": "signature does not match",
    "sns_envelope_unsubscribe_confirmation.json": "Signature is not valid base64",
}


def _fixture(name: str) -> tuple[dict, datetime]:
    message = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    return message, datetime.strptime(message["Timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def test_envelope_fixtures_are_there():
    names = {path.name for path in SAMPLES.glob("sns_envelope_*.json")}
    assert names == set(ENVELOPES), f"expected the envelope fixtures in {SAMPLES}"


@pytest.mark.parametrize(("name", "reason"), ENVELOPES.items())
def test_fixture_envelopes_rejected_for_their_signature(key, name, reason):
    """The fixtures pass every check but the signature: their signatures are placeholders.

    ``now`` is a minute after their timestamp (so not stale) and the certificate - ours, same
    key as the other tests - is valid then, so the only thing left to fail is the signature.
    """
    message, sent = _fixture(name)
    pem = _certificate(key, sent - timedelta(days=1), sent + timedelta(days=30))
    calls: list[str] = []

    def load_certificate(url: str) -> bytes:
        calls.append(url)
        return pem

    rejected(message, load_certificate, reason, now=sent + timedelta(minutes=1), topic_arns=[FIXTURE_TOPIC])
    # a signature that is not even base64 is refused before any certificate is fetched
    assert calls == ([] if "base64" in reason else [message["SigningCertURL"]])


@pytest.mark.parametrize("name", ENVELOPES)
def test_fixture_envelope_accepted_once_signed_by_us(key, name):
    """Control for the test above: the same envelope, re-signed, passes - so the placeholder is the fault."""
    message, sent = _fixture(name)
    pem = _certificate(key, sent - timedelta(days=1), sent + timedelta(days=30))
    sign(message, key)
    verify(message, lambda url: pem, now=sent + timedelta(minutes=1), topic_arns=[FIXTURE_TOPIC])


# --- CertificateCache -------------------------------------------------------------------------


def test_certificate_cache_fetches_once_per_url(pem):
    calls: list[str] = []

    def fetch(url: str) -> bytes:
        calls.append(url)
        return pem + url.encode()

    other = "https://sns.eu-west-1.amazonaws.com" + CERT_PATH
    cache = CertificateCache(fetch)
    assert cache(CERT_URL) == pem + CERT_URL.encode()
    assert cache(CERT_URL) == pem + CERT_URL.encode()
    assert cache(other) == pem + other.encode()
    assert cache(other) == pem + other.encode()
    assert calls == [CERT_URL, other]


def test_certificate_cache_as_loader(key, pem):
    calls: list[str] = []
    cache = CertificateCache(lambda url: calls.append(url) or pem)
    for _ in range(3):
        verify_sns_message(notification(key), load_certificate=cache, now=NOW)
    assert calls == [CERT_URL]


def test_certificate_cache_is_bounded_and_does_not_cache_failures():
    calls: list[str] = []
    fail = {"https://bad"}

    def fetch(url: str) -> bytes:
        calls.append(url)
        if url in fail:
            raise OSError("down")
        return url.encode()

    cache = CertificateCache(fetch, maxsize=2)
    for url in ("a", "b", "a", "c"):  # "a" used again, so "b" is the least recently used
        cache(url)
    assert len(cache) == 2
    cache("a")
    cache("c")
    assert calls == ["a", "b", "c"]
    cache("b")
    assert calls == ["a", "b", "c", "b"]
    for _ in range(2):
        with pytest.raises(OSError):
            cache("https://bad")
    assert calls.count("https://bad") == 2


def test_certificate_cache_concurrent_calls_fetch_once():
    calls: list[str] = []
    started = threading.Event()
    release = threading.Event()

    def slow_fetch(url: str) -> bytes:
        calls.append(url)
        started.set()
        release.wait(5)
        return b"pem"

    cache = CertificateCache(slow_fetch)
    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(cache(CERT_URL))) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert started.wait(5)
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == [b"pem"] * 8
    assert calls == [CERT_URL]


def test_fetch_certificate_refuses_bad_urls_before_any_network():
    """fetch_certificate itself is not run against AWS (unreachable here); only its URL gate is tested."""
    from newsletter.feedback.sns import fetch_certificate

    for url, reason in (
        ("http://sns.us-east-1.amazonaws.com" + CERT_PATH, "must use https"),
        ("https://127.0.0.1" + CERT_PATH, "not an Amazon SNS host"),
        ("file:///etc/passwd", "must use https"),
    ):
        with pytest.raises(SNSVerificationError, match=reason):
            fetch_certificate(url, timeout=0.01)
