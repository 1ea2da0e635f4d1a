"""Each handler of `newsletter serve` and `newsletter preview` on its own: a Starlette app with ONE
route, the services on its state as the app factory puts them, called through starlette's
TestClient. The store is the real one, on the project's temporary SQLite file; the only fakes
are the SNS signing certificate (a key made here, as in tests/test_sns.py), the visit to a
SubscribeURL, and the sending of confirmation messages (kept in a list)."""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import json
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from conftest import SECRET, Project
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from ses_samples import SAMPLES
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route
from starlette.testclient import TestClient

from newsletter.domain import ACTIVE, UNSUBSCRIBED, NewSubscriber
from newsletter.editor.live import Preview
from newsletter.feedback.sns import signing_string
from newsletter.message.composer import PREVIEW_TOKEN, Outgoing
from newsletter.store import Database, Store
from newsletter.store.feedback import Feedback
from newsletter.keys import (
    CONFIRM_ROUTE,
    HEALTH_ROUTE,
    LANGUAGE_ROUTE,
    RESUBSCRIBE_ROUTE,
    SUBSCRIBE_ROUTE,
    UNSUBSCRIBE_ROUTE,
    TokenSigner,
    confirm_url,
    takes_token_path,
    unsubscribe_url,
)
from newsletter.web import archive, health, preview, signup, sns, unsubscribe
from newsletter.web.limits import RateLimit
from newsletter.web.pages import Pages
from newsletter.web.public import open_services
from newsletter.web.services import Services

SECRET_BYTES = SECRET.encode()
SIGNER = TokenSigner(SECRET_BYTES)
TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-feedback"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
CONFIG = (
    f'[feedback]\ntopic_arns = ["{TOPIC}"]\n\n'
    '[signup]\nlist = "partners"\nprovider = "smtp"\nconsent_version = "2023-01"\n'
)
FORM = {"form_language": "en", "email": "maya@example.org", "name": "Maya", "language": "en", "consent": "yes",
        "website": ""}
ONE_CLICK = {"content": b"List-Unsubscribe=One-Click",
             "headers": {"Content-Type": "application/x-www-form-urlencoded"}}


class Setup:
    """A project, its store, and the services of its public app (confirmations kept, SNS faked)."""

    def __init__(self, project: Project, store: Store, pem: bytes):
        self.project, self.store = project, store
        self.sent: list[Outgoing] = []
        self.visited: list[str] = []
        self.services = open_services(
            project.config(), store, SECRET_BYTES, load_certificate=lambda url: pem,
            confirm=self.visited.append, send_message=self.keep,
        )

    def keep(self, message: Outgoing) -> str:
        self.sent.append(message)
        return message.message_id

    def client(self, path: str, handler, methods: list[str], services: Services | None = None) -> TestClient:
        """ONE handler, mounted at `path` for `methods`, with the services on the app's state."""
        return self.mounted([Route(path, handler, methods=methods)], services)

    def mounted(self, routes: list[BaseRoute], services: Services | None = None) -> TestClient:
        app = Starlette(routes=routes)
        app.state.services = services or self.services
        return TestClient(app)

    def add(self, address: str, language: str = "en") -> str:
        """A subscriber on the list; their genuine token."""
        self.store.subscribers.import_rows([NewSubscriber(address, "Person", language)], "main", SECRET_BYTES)
        return SIGNER.make(self.store.subscribers.by_email(address).token_key, 0)


def forged(token: str) -> str:
    """`token` with one character changed: its signature no longer matches."""
    return token[:10] + ("B" if token[10] == "A" else "A") + token[11:]


@pytest.fixture(scope="module")
def sns_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def sns_pem(sns_key) -> bytes:
    now = datetime.now(timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.us-east-1.amazonaws.com (test)")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(sns_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
        .sign(sns_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def setup(tmp_path, secret_env, sns_pem):
    project = Project(tmp_path / "project", extra_config=CONFIG)
    store = Store.open(project.config().store_url)
    yield Setup(project, store, sns_pem)
    store.close()


# --- the URLs, written once ----------------------------------------------------------------------


def test_the_urls_are_built_from_the_route_patterns():
    assert unsubscribe_url("https://news.example.org", "abc") == "https://news.example.org/u/abc"
    assert confirm_url("https://news.example.org", "abc") == "https://news.example.org/confirm/abc"
    assert (UNSUBSCRIBE_ROUTE, RESUBSCRIBE_ROUTE, LANGUAGE_ROUTE) == (
        "/u/{token}", "/u/{token}/resubscribe", "/u/{token}/language")
    assert takes_token_path("/u/x") and takes_token_path("/confirm/x") and not takes_token_path("/sns")


# --- newsletter.web.unsubscribe -------------------------------------------------------------------


def test_the_page_offers_to_leave_and_changes_nothing(setup):
    token = setup.add("nour@example.org")
    client = setup.client(UNSUBSCRIBE_ROUTE, unsubscribe.unsubscribe_page, ["GET", "HEAD"])
    page = client.get(f"/u/{token}")
    assert page.status_code == 200 and "n•••@example.org" in page.text
    assert f'action="/u/{token}"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert setup.store.subscribers.by_email("nour@example.org").status == ACTIVE


# What each page says, as the reader reads it: (lang, dir, the block's text without tags).
BLOCK = re.compile(r'<section lang="([a-z]+)" dir="([a-z]+)"[^>]*>(.*?)</section>', re.S)


def blocks(html: str) -> list[tuple[str, str, str]]:
    return [(lang, d, re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip()) for lang, d, body in BLOCK.findall(html)]


LANGUAGE_WORDS = ("You receive the letters", "تصلك الرسائل", "next letter will reach you", "ستصل الرسالة القادمة",
                  "Language of the letters", "لغة الرسائل")  # fmt: skip


def per_recipient(setup) -> Services:
    """The services of the same project under the per-recipient layout."""
    text = setup.project.config_path.read_text(encoding="utf-8")
    setup.project.config_path.write_text(text.replace('layout = "bilingual"', 'layout = "per-recipient"', 1), encoding="utf-8")
    config = setup.project.config()
    return dataclasses.replace(setup.services, config=config, pages=Pages(config))


def test_under_the_bilingual_layout_the_page_is_in_both_languages_and_offers_no_language(setup):
    token = setup.add("jane@example.org", "en")
    page = setup.client(UNSUBSCRIBE_ROUTE, unsubscribe.unsubscribe_page, ["GET"]).get(f"/u/{token}").text
    said = blocks(page)
    assert [(lang, d) for lang, d, _ in said] == [("en", "ltr"), ("ar", "rtl")]  # theirs first
    assert '<html lang="en" dir="ltr">' in page
    assert said[0][2].startswith("Unsubscribe Unsubscribe j•••@example.org from the letters of")
    assert "هل تريد إلغاء اشتراك العنوان j•••@example.org" in said[1][2]
    assert "/language" not in page and not any(w in page for w in LANGUAGE_WORDS), said
    # a post to the language form of an old page changes nothing: the page answers as it is
    posted = setup.client(LANGUAGE_ROUTE, unsubscribe.choose_language, ["POST"]).post(f"/u/{token}/language", data={"language": "ar"})
    assert posted.status_code == 200 and blocks(posted.text) == said
    assert setup.store.subscribers.by_email("jane@example.org").language == "en"


def test_per_recipient_the_page_follows_the_readers_choice_and_after_leaving_says_how_to_come_back(setup):
    services = per_recipient(setup)
    page_client = setup.client(UNSUBSCRIBE_ROUTE, unsubscribe.unsubscribe_page, ["GET"], services)
    jane, both = setup.add("jane@example.org", "en"), setup.add("sami@example.org", "both")

    only_english = blocks(page_client.get(f"/u/{jane}").text)
    assert [lang for lang, _, _ in only_english] == ["en"] and "You receive the letters in English." in only_english[0][2]
    said = blocks(page_client.get(f"/u/{both}").text)
    assert [(lang, d) for lang, d, _ in said] == [("ar", "rtl"), ("en", "ltr")]  # the primary first
    assert "تصلك الرسائل بالعربية والإنجليزية معًا." in said[0][2]
    assert "You receive the letters in Arabic and English." in said[1][2]

    left = setup.client(UNSUBSCRIBE_ROUTE, unsubscribe.unsubscribe, ["POST"], services).post(f"/u/{both}", **ONE_CLICK)
    for page in (left.text, page_client.get(f"/u/{both}").text):
        said = blocks(page)
        assert [lang for lang, _, _ in said] == ["ar", "en"], said
        assert not any(w in page for w in LANGUAGE_WORDS) and "/language" not in page, said
        assert f'action="/u/{both}/resubscribe"' in page and "Subscribe again" in said[1][2]
    # and a language posted after leaving changes nothing
    language = setup.client(LANGUAGE_ROUTE, unsubscribe.choose_language, ["POST"], services)
    assert blocks(language.post(f"/u/{both}/language", data={"language": "en"}).text) == said
    assert setup.store.subscribers.by_email("sami@example.org").language == "both"


def test_the_page_of_a_bad_token_is_404_and_a_test_copy_changes_nothing(setup):
    token = setup.add("nour@example.org")
    client = setup.client(UNSUBSCRIBE_ROUTE, unsubscribe.unsubscribe_page, ["GET", "HEAD"])
    assert client.get(f"/u/{forged(token)}").status_code == 404
    assert client.get("/u/not-a-token").status_code == 404
    copy = client.get(f"/u/{PREVIEW_TOKEN}")
    assert copy.status_code == 200 and "n•••" not in copy.text
    assert client.post(f"/u/{token}", **ONE_CLICK).status_code == 405


def test_one_click_unsubscribes_and_offers_to_rejoin(setup):
    token = setup.add("nour@example.org")
    client = setup.client(UNSUBSCRIBE_ROUTE, unsubscribe.unsubscribe, ["POST"])
    done = client.post(f"/u/{token}", **ONE_CLICK)
    assert done.status_code == 200 and f'action="/u/{token}/resubscribe"' in done.text
    assert setup.store.subscribers.by_email("nour@example.org").status == UNSUBSCRIBED
    assert client.post(f"/u/{token}", **ONE_CLICK).status_code == 200  # again: already


def test_one_click_refuses_a_bad_token_an_oversized_body_and_get(setup):
    token = setup.add("nour@example.org")
    client = setup.client(UNSUBSCRIBE_ROUTE, unsubscribe.unsubscribe, ["POST"])
    assert client.post(f"/u/{forged(token)}", **ONE_CLICK).status_code == 404
    big = b"x" * (unsubscribe.MAX_FORM_BODY + 1)
    assert client.post(f"/u/{token}", content=big).status_code == 413
    assert client.get(f"/u/{token}").status_code == 405
    assert setup.store.subscribers.by_email("nour@example.org").status == ACTIVE


def test_resubscribe_undoes_an_unsubscribe(setup):
    token = setup.add("nour@example.org")
    setup.store.feedback.unsubscribe(SIGNER.read(token)[0], 0)
    client = setup.client(RESUBSCRIBE_ROUTE, unsubscribe.resubscribe, ["POST"])
    assert client.post(f"/u/{token}/resubscribe", content=b"x" * (unsubscribe.MAX_FORM_BODY + 1)).status_code == 413
    assert client.post(f"/u/{forged(token)}/resubscribe", data={"resubscribe": "1"}).status_code == 404
    assert client.get(f"/u/{token}/resubscribe").status_code == 405
    assert setup.store.subscribers.by_email("nour@example.org").status == UNSUBSCRIBED
    assert client.post(f"/u/{token}/resubscribe", data={"resubscribe": "1"}).status_code == 200
    assert setup.store.subscribers.by_email("nour@example.org").status == ACTIVE


def test_the_language_is_saved_and_an_unknown_choice_changes_nothing(setup):
    token = setup.add("nour@example.org", "en")
    client = setup.client(LANGUAGE_ROUTE, unsubscribe.choose_language, ["POST"], per_recipient(setup))
    assert client.post(f"/u/{token}/language", data={"language": "klingon"}).status_code == 200
    assert setup.store.subscribers.by_email("nour@example.org").language == "en"
    saved = client.post(f"/u/{token}/language", data={"language": "ar"})
    assert saved.status_code == 200 and 'lang="ar"' in saved.text
    assert [lang for lang, _, _ in blocks(saved.text)] == ["ar"] and "ستصل الرسالة القادمة بالعربية" in saved.text
    assert setup.store.subscribers.by_email("nour@example.org").language == "ar"
    both = client.post(f"/u/{token}/language", data={"language": "both"})
    assert [lang for lang, _, _ in blocks(both.text)] == ["ar", "en"]
    assert "Saved: the next letter will reach you in Arabic and English." in both.text
    assert client.post(f"/u/{forged(token)}/language", data={"language": "en"}).status_code == 404
    assert client.post(f"/u/{token}/language", content=b"x" * (unsubscribe.MAX_FORM_BODY + 1)).status_code == 413
    assert client.get(f"/u/{token}/language").status_code == 405


# --- newsletter.web.signup ------------------------------------------------------------------------


def test_the_form_in_every_language_or_the_one_asked_for(setup):
    client = setup.client(SUBSCRIBE_ROUTE, signup.subscribe_page, ["GET", "HEAD"])
    both = client.get("/subscribe")
    assert both.status_code == 200 and both.text.count('name="email"') == 2
    assert client.get("/subscribe?lang=en").text.count('name="email"') == 1
    assert client.post("/subscribe", data=FORM).status_code == 405


def test_a_sign_up_is_recorded_and_its_confirmation_sent_after_the_answer(setup):
    client = setup.client(SUBSCRIBE_ROUTE, signup.subscribe, ["POST"])
    answer = client.post("/subscribe", data=FORM)
    assert answer.status_code == 200 and [m.recipient for m in setup.sent] == ["maya@example.org"]
    robot = client.post("/subscribe", data={**FORM, "email": "bot@example.org", "website": "http://spam"})
    assert robot.status_code == 200 and robot.text == answer.text and len(setup.sent) == 1


def test_a_sign_up_refuses_a_bad_form_an_oversized_body_and_too_many_posts(setup):
    client = setup.client(SUBSCRIBE_ROUTE, signup.subscribe, ["POST"])
    assert client.post("/subscribe", data={**FORM, "email": "not an address"}).status_code == 400
    assert client.post("/subscribe", data={**FORM, "consent": ""}).status_code == 400
    assert client.post("/subscribe", content=b"x" * (signup.MAX_SIGNUP_BODY + 1)).status_code == 413
    assert client.get("/subscribe").status_code == 405
    strict = dataclasses.replace(setup.services, limit=RateLimit(1, 10))
    limited = setup.client(SUBSCRIBE_ROUTE, signup.subscribe, ["POST"], strict)
    assert limited.post("/subscribe", data=FORM).status_code == 200
    refused = limited.post("/subscribe", data={**FORM, "email": "other@example.org"})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert not setup.sent[1:]


def test_without_signup_the_sign_up_handlers_answer_404(setup):
    bare = dataclasses.replace(setup.services, signups=None, limit=None)
    assert setup.client(SUBSCRIBE_ROUTE, signup.subscribe_page, ["GET"], bare).get("/subscribe").status_code == 404
    assert setup.client(SUBSCRIBE_ROUTE, signup.subscribe, ["POST"], bare).post("/subscribe", data=FORM).status_code == 404
    assert setup.client(CONFIRM_ROUTE, signup.confirm, ["POST"], bare).post("/confirm/x").status_code == 404


def confirmation_path(message: Outgoing) -> str:
    parsed = email.message_from_bytes(message.data, policy=email.policy.default)
    text = parsed.get_body(("plain",)).get_content()
    return re.search(r"https://[^/\s]+(/confirm/[A-Za-z0-9_-]+)", text).group(1)


def test_the_confirmation_link_shows_a_button_then_confirms_once(setup):
    setup.client(SUBSCRIBE_ROUTE, signup.subscribe, ["POST"]).post("/subscribe", data=FORM)
    path = confirmation_path(setup.sent[0])
    page = setup.client(CONFIRM_ROUTE, signup.confirm_page, ["GET", "HEAD"]).get(path)
    assert page.status_code == 200 and f'action="{path}"' in page.text and "m•••@example.org" in page.text
    assert setup.store.subscribers.by_email("maya@example.org") is None
    confirm = setup.client(CONFIRM_ROUTE, signup.confirm, ["POST"])
    assert confirm.post(path, content=b"x" * (signup.MAX_SIGNUP_BODY + 1)).status_code == 413
    assert confirm.get(path).status_code == 405
    assert confirm.post(path).status_code == 200
    assert setup.store.subscribers.by_email("maya@example.org").status == ACTIVE
    assert confirm.post(path).status_code == 404  # used


def test_a_bad_confirmation_link_says_so_in_every_language(setup):
    page = setup.client(CONFIRM_ROUTE, signup.confirm_page, ["GET"]).get("/confirm/not-a-token")
    assert page.status_code == 404
    assert 'lang="ar"' in page.text and 'lang="en"' in page.text
    assert setup.client(CONFIRM_ROUTE, signup.confirm, ["POST"]).post("/confirm/not-a-token").status_code == 404


# --- newsletter.web.archive -----------------------------------------------------------------------


def test_the_archive_answers_its_index_and_nothing_else(setup):
    client = setup.mounted(archive.ROUTES)
    index = client.get("/archive/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert index.headers["cache-control"] == "public, max-age=300"
    assert client.get("/archive/no-such-issue/index.html").status_code == 404
    assert client.get("/archive/a/b/c").status_code == 404
    assert client.post("/archive/").status_code == 405


# --- newsletter.web.sns ---------------------------------------------------------------------------


def signed(message: dict, key: rsa.RSAPrivateKey) -> bytes:
    signature = key.sign(signing_string(message), padding.PKCS1v15(), hashes.SHA256())
    return json.dumps({**message, "Signature": base64.b64encode(signature).decode()}).encode()


def envelope(kind: str = "Notification", **fields) -> dict:
    sent = datetime.now(timezone.utc) - timedelta(seconds=5)
    message = {
        "Type": kind,
        "MessageId": str(uuid.uuid4()),
        "TopicArn": TOPIC,
        "Message": "{}",
        "Timestamp": sent.strftime("%Y-%m-%dT%H:%M:%S.") + f"{sent.microsecond // 1000:03d}Z",
        "SignatureVersion": "2",
        "SigningCertURL": CERT_URL,
    }
    if kind == "Notification":
        message["UnsubscribeURL"] = f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={TOPIC}:1"
    else:
        message |= {"Token": uuid.uuid4().hex,
                    "SubscribeURL": f"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}"}
    return message | fields


def test_sns_refuses_what_is_not_a_genuine_message(setup, sns_key):
    client = setup.client("/sns", sns.sns, ["POST"])
    assert client.post("/sns", content=b"x" * (sns.MAX_SNS_BODY + 1)).status_code == 413
    assert client.post("/sns", content=b"[" * 40 + b"]" * 40).text == "nested too deeply\n"
    assert client.post("/sns", content=b"{not json").text == "not JSON\n"
    assert client.post("/sns", content=b"[]").text == "not an SNS message\n"
    unsigned = client.post("/sns", content=json.dumps(envelope(Signature="AAAA")).encode())
    assert unsigned.status_code == 400 and unsigned.text.startswith("rejected:")
    other_topic = client.post("/sns", content=signed(envelope(TopicArn=TOPIC + "-other"), sns_key))
    assert other_topic.status_code == 400 and other_topic.text.startswith("rejected:")
    malformed = client.post("/sns", content=signed(envelope(Message="[1]"), sns_key))
    assert malformed.status_code == 400 and malformed.text.startswith("malformed:")
    assert client.get("/sns").status_code == 405


def test_sns_confirms_a_subscription_once_verified(setup, sns_key):
    client = setup.client("/sns", sns.sns, ["POST"])
    message = envelope("SubscriptionConfirmation")
    assert client.post("/sns", content=signed(message, sns_key)).text == "confirmed\n"
    assert setup.visited == [message["SubscribeURL"]]

    def unreachable(url: str) -> None:
        raise OSError("no route to host")

    failing = dataclasses.replace(setup.services, confirm_topic=unreachable)
    refused = setup.client("/sns", sns.sns, ["POST"], failing).post("/sns", content=signed(message, sns_key))
    assert refused.status_code == 502


def test_sns_stores_feedback_and_asks_again_when_the_store_fails(setup, sns_key):
    bounce = (SAMPLES / "ses_notification_bounce_permanent_with_dsn.json").read_text(encoding="utf-8")
    client = setup.client("/sns", sns.sns, ["POST"])
    assert client.post("/sns", content=signed(envelope(Message=bounce), sns_key)).text == "ok\n"

    class Down(Feedback):
        def apply_feedback(self, *args, **kwargs):
            raise RuntimeError("database unavailable")

    broken = Store(setup.store.db)
    broken.feedback = Down(setup.store.db)
    down = dataclasses.replace(setup.services, store=broken)
    answer = setup.client("/sns", sns.sns, ["POST"], down).post("/sns", content=signed(envelope(Message=bounce), sns_key))
    assert answer.status_code == 503 and answer.text == "store unavailable\n"


# --- newsletter.web.health ------------------------------------------------------------------------


def test_health_says_whether_the_database_answers(setup):
    assert setup.client(HEALTH_ROUTE, health.healthz, ["GET", "HEAD"]).get("/healthz").text == "ok\n"

    class Unreachable(Database):
        def reachable(self) -> bool:
            return False

    down = dataclasses.replace(setup.services, store=Store(Unreachable(setup.store.db.engine)))
    client = setup.client(HEALTH_ROUTE, health.healthz, ["GET", "HEAD"], down)
    assert client.get("/healthz").status_code == 503
    assert client.post("/healthz").status_code == 405


# --- newsletter.web.preview -----------------------------------------------------------------------


@pytest.fixture
def previewing(year_end_build):
    def client(path: str, handler, methods: list[str]) -> TestClient:
        app = Starlette(routes=[Route(path, handler, methods=methods)])
        app.state.preview = Preview(lambda: year_end_build, lambda: [], present=preview.present, title="year-end")
        return TestClient(app)

    return client


def test_preview_state_answers_the_generation_it_is_asked_about(previewing):
    client = previewing("/state", preview.state, ["GET"])
    full = client.get("/state").json()
    assert full["generation"] == 1 and full["ok"] and "sections" in full
    assert set(client.get("/state?since=1").json()) == {"server", "generation"}
    assert client.post("/state").status_code == 405


def test_preview_variants_and_their_404(previewing):
    client = previewing("/variant/{name}.{ext}", preview.variant, ["GET", "HEAD"])
    html = client.get("/variant/en.html")
    assert html.status_code == 200 and "frame-ancestors 'self'" in html.headers["content-security-policy"]
    eml = client.get("/variant/en.eml")
    assert eml.headers["content-disposition"] == 'attachment; filename="2022-12-year-end-en.eml"'
    assert client.get("/variant/klingon.html").status_code == 404
    assert client.get("/variant/en.exe").status_code == 404


def test_preview_page_script_and_checks(previewing):
    assert previewing("/", preview.page, ["GET"]).get("/").headers["content-security-policy"] == preview.PAGE_CSP
    assert previewing("/preview.js", preview.script, ["GET"]).get("/preview.js").content == preview.SCRIPT
    checks = previewing("/checks", preview.checks, ["GET"]).get("/checks")
    assert checks.status_code == 200 and "failed," in checks.text
