"""`newsletter serve` end to end: the unsubscribe pages and the SNS endpoint on a real uvicorn server.

Every test runs the Starlette app from `newsletter.web.public.create_app` on uvicorn, on 127.0.0.1 at a
free port, and talks HTTP to it with httpx (and, for the screenshot, headless Chromium). The
database is the project's own SQLite file; messages are really sent through the outbox provider
and the unsubscribe links are read from the .eml files, with https://news.cssrweb.org replaced by
the test server's address.

Two things are faked, because AWS's hosts cannot be reached from where the tests run:

* the SNS signing certificate: ``load_certificate`` returns a self-signed certificate made here,
  whose private key signs the test messages exactly as SNS does (SignatureVersion 2: PKCS#1 v1.5
  with SHA-256 over the canonical string), as in tests/test_sns.py;
* visiting a SubscriptionConfirmation's SubscribeURL: ``confirm`` records the URL instead.

The one test that simulates a database outage passes a `Store` subclass whose apply_feedback
raises; everything else is the real store.

The concurrency test prints its wall times and asserts nothing about them: the client and the
server share one process (and its GIL) here, so they measure both, and performance is measured
in scripts/bench, never in timed tests.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import email
import email.policy
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from conftest import SECRET, Project
from newsletter import domain as d
from newsletter.store import tables as s
from newsletter.cli import cli
from newsletter.feedback.sns import signing_string
from newsletter.domain import NewSubscriber
from newsletter.store import Store
from newsletter.store.feedback import Feedback
from newsletter.keys import TokenSigner
from newsletter.web.public import create_app
from ses_samples import SAMPLES
from uvicorn_server import running
from store_helpers import is_suppressed

ROOT = Path(__file__).resolve().parents[1]
BOUNCE_SAMPLE = SAMPLES / "ses_notification_bounce_permanent_with_dsn.json"
SCREENSHOTS = ROOT / "dist" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-feedback"
OTHER_TOPIC = "arn:aws:sns:us-east-1:999999999999:someone-elses-topic"
FEEDBACK_CONFIG = f'[feedback]\ntopic_arns = ["{TOPIC}"]\n'
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
BASE_URL = "https://news.cssrweb.org"
SLUG = "2022-12-year-end"
SECRET_BYTES = SECRET.encode()

# the sentences of newsletter/languages.py, as the pages show them
EN_QUESTION = "Unsubscribe "
EN_DONE = "is unsubscribed. You will receive no more letters from"
EN_RESUBSCRIBED = "is subscribed again to the letters of"
AR_QUESTION = "هل تريد إلغاء اشتراك العنوان"
AR_DONE = "تم إلغاء اشتراك العنوان"


# --- the fake SNS certificate -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sns_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def sns_pem(sns_key) -> bytes:
    now = datetime.now(timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.us-east-1.amazonaws.com (test)")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(sns_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(sns_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sign(message: dict, key: rsa.RSAPrivateKey) -> dict:
    """Sign in place as SNS does for SignatureVersion 2."""
    signature = key.sign(signing_string(message), padding.PKCS1v15(), hashes.SHA256())
    message["Signature"] = base64.b64encode(signature).decode()
    return message


def notification(key, ses_message: dict, *, topic: str = TOPIC, sent: datetime | None = None, message_id: str | None = None) -> dict:
    message = {
        "Type": "Notification",
        "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": topic,
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(ses_message),
        "Timestamp": _timestamp(sent or datetime.now(timezone.utc) - timedelta(seconds=5)),
        "SignatureVersion": "2",
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic}:1",
    }
    return sign(message, key)


def subscription_confirmation(key, *, topic: str = TOPIC) -> dict:
    token = uuid.uuid4().hex
    message = {
        "Type": "SubscriptionConfirmation",
        "MessageId": str(uuid.uuid4()),
        "Token": token,
        "TopicArn": topic,
        "Message": f"You have chosen to subscribe to the topic {topic}.\nTo confirm, visit the SubscribeURL.",
        "SubscribeURL": f"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic}&Token={token}",
        "Timestamp": _timestamp(datetime.now(timezone.utc) - timedelta(seconds=5)),
        "SignatureVersion": "2",
        "SigningCertURL": CERT_URL,
    }
    return sign(message, key)


def bounce_for(address: str, ses_message_id: str) -> dict:
    """The SES bounce fixture, pointed at one of our deliveries."""
    ses = json.loads(BOUNCE_SAMPLE.read_text(encoding="utf-8"))
    ses["mail"]["messageId"] = ses_message_id
    ses["bounce"]["bouncedRecipients"][0]["emailAddress"] = address
    return ses


# --- the project, the server --------------------------------------------------------------------


@dataclass
class Site:
    project: Project
    store: Store
    url: str
    confirmed: list[str] = field(default_factory=list)
    certificate_loads: list[str] = field(default_factory=list)

    def cli(self, *args: str):
        result = CliRunner().invoke(cli, [*args, "--config", str(self.project.config_path)], env=self.project.env)
        assert result.exit_code == 0, result.output
        return result

    def add(self, *people: tuple[str, str, str]) -> None:
        result = self.store.subscribers.import_rows([NewSubscriber(*p) for p in people], "main", SECRET_BYTES)
        assert result.added == len(people), result

    def send(self) -> dict[str, str]:
        """Send the year-end issue to 'main' through the outbox; address → unsubscribe URL on our server."""
        self.cli("send", str(self.project.issue), "--list", "main", "--yes", "--rate", "100000", "--provider", "outbox")
        links: dict[str, str] = {}
        for path in sorted((self.project.root / "outbox").rglob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            https = re.findall(r"<(https://[^>]+)>", str(message["List-Unsubscribe"]))
            assert len(https) == 1 and https[0].startswith(BASE_URL + "/u/"), message["List-Unsubscribe"]
            links[str(message["To"])] = self.url + https[0][len(BASE_URL):]
        return links

    def status(self, address: str) -> str | None:
        found = self.store.subscribers.by_email(address)
        return found.status if found else None

    def events(self, kind: str | None = None) -> int:
        query = select(func.count()).select_from(s.feedback_events)
        if kind:
            query = query.where(s.feedback_events.c.kind == kind)
        with self.store.db.engine.connect() as conn:
            return conn.execute(query).scalar_one()

    def token(self, address: str, campaign_id: int = 0) -> str:
        return TokenSigner(SECRET_BYTES).make(self.store.subscribers.by_email(address).token_key, campaign_id)


def make_app(project: Project, store: Store, site_confirmed: list[str], loads: list[str], pem: bytes):
    def load_certificate(url: str) -> bytes:
        loads.append(url)
        return pem

    return create_app(project.config(), store, SECRET_BYTES, load_certificate=load_certificate, confirm=site_confirmed.append)


@pytest.fixture
def site(tmp_path, secret_env, sns_pem):
    project = Project(tmp_path / "p", extra_config=FEEDBACK_CONFIG)
    store = project.store()
    confirmed: list[str] = []
    loads: list[str] = []
    with running(make_app(project, store, confirmed, loads, sns_pem)) as url:
        yield Site(project, store, url, confirmed, loads)
    store.close()


@pytest.fixture
def client(site):
    with httpx.Client(base_url=site.url, follow_redirects=False, timeout=30) as c:
        yield c


def assert_security_headers(response: httpx.Response) -> None:
    csp = response.headers.get("content-security-policy", "")
    assert "default-src 'none'" in csp, response.headers
    assert "no-store" in response.headers.get("cache-control", ""), response.headers
    assert response.headers.get("x-content-type-options") == "nosniff"


def path_of(url: str) -> str:
    return urlsplit(url).path


# --- 1. the page ---------------------------------------------------------------------------------


def test_get_shows_the_page_in_the_persons_language_and_changes_nothing(site, client):
    site.add(("nour@example.org", "نور", "ar"), ("jane@example.org", "Jane", "en"))
    links = site.send()
    assert set(links) == {"nour@example.org", "jane@example.org"}

    for address, lang, dir_, masked, question in (
        ("nour@example.org", "ar", "rtl", "n•••@example.org", AR_QUESTION),
        ("jane@example.org", "en", "ltr", "j•••@example.org", EN_QUESTION),
    ):
        response = client.get(links[address])
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/html")
        page = response.text
        assert f'<html lang="{lang}" dir="{dir_}">' in page
        assert f'<main dir="{dir_}">' in page
        assert question in page
        assert masked in page
        assert address not in page and address.split("@")[0] + "@" not in page
        form = re.search(r'<form method="post" action="([^"]+)">\s*<button type="submit" name="([^"]+)" value="([^"]+)"', page)
        assert form, page
        assert form.groups() == (path_of(links[address]), "List-Unsubscribe", "One-Click")
        assert_security_headers(response)
        assert client.head(links[address]).status_code == 200

    assert site.status("nour@example.org") == site.status("jane@example.org") == "active"
    assert site.events() == 0


# --- 2. one-click POST, idempotence, resubscribe -------------------------------------------------


def test_one_click_post_unsubscribes_once_and_resubscribe_undoes_it(site, client):
    site.add(("jane@example.org", "Jane", "en"), ("omar@example.org", "Omar", "en"), ("nour@example.org", "نور", "ar"))
    links = site.send()

    # RFC 8058: application/x-www-form-urlencoded "List-Unsubscribe=One-Click", no redirect
    url = links["jane@example.org"]
    for attempt in range(2):
        response = client.post(url, content=b"List-Unsubscribe=One-Click",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 200, (attempt, response.status_code, response.headers.get("location"))
        assert EN_DONE in response.text and "j•••@example.org" in response.text
        assert "jane@example.org" not in response.text
        assert_security_headers(response)
        assert site.status("jane@example.org") == "unsubscribed"
        resubscribe_form = re.search(r'<form method="post" action="([^"]+)">', response.text)
        assert resubscribe_form and resubscribe_form.group(1) == path_of(url) + "/resubscribe"
    assert site.events("unsubscribe") == 1
    [en] = [row for row in site.store.reports.campaigns() if row["language"] == "en"]
    assert en["unsubscribes"] == 1

    # RFC 8058 as multipart/form-data
    response = client.post(links["omar@example.org"], files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200 and EN_DONE in response.text
    assert site.status("omar@example.org") == "unsubscribed"

    # what a browser submits from the page's own form
    page = client.get(links["nour@example.org"]).text
    action, name, value = re.search(r'<form method="post" action="([^"]+)">\s*<button type="submit" name="([^"]+)" value="([^"]+)"', page).groups()
    response = client.post(site.url + action, data={name: value})
    assert response.status_code == 200 and AR_DONE in response.text
    assert '<html lang="ar" dir="rtl">' in response.text
    assert site.status("nour@example.org") == "unsubscribed"
    assert site.events("unsubscribe") == 3

    # undo
    response = client.post(links["jane@example.org"] + "/resubscribe", data={"resubscribe": "1"})
    assert response.status_code == 200 and EN_RESUBSCRIBED in response.text
    assert site.status("jane@example.org") == "active"
    assert site.events("resubscribe") == 1
    assert site.status("omar@example.org") == site.status("nour@example.org") == "unsubscribed"
    # and the page offers the one-click form again
    assert 'value="One-Click"' in client.get(links["jane@example.org"]).text


# --- 3. tampered tokens ---------------------------------------------------------------------------


def test_tampered_and_dead_tokens_get_the_same_plain_404(site, client):
    site.add(("nour@example.org", "نور", "ar"), ("gone@example.org", "Gone", "en"))
    links = site.send()
    token = path_of(links["nour@example.org"]).rsplit("/", 1)[1]
    gone_token = path_of(links["gone@example.org"]).rsplit("/", 1)[1]
    site.cli("subscribers", "forget", "gone@example.org")
    assert site.status("gone@example.org") is None

    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    other_key = TokenSigner(b"another-secret-key-0123456789-abcdefghijklmnop").make(
        site.store.subscribers.by_email("nour@example.org").token_key, 1)
    bad = [flipped, other_key, "garbage", "x" * 300, "A" * len(token), token[:-4], "%E2%80%A2%E2%80%A2", gone_token]
    assert TokenSigner(SECRET_BYTES).read(gone_token) is not None  # genuine, but its person is gone

    bodies = set()
    for candidate in bad:
        for method, suffix in (("GET", ""), ("POST", ""), ("POST", "/resubscribe")):
            response = client.request(method, f"{site.url}/u/{candidate}{suffix}", data={"List-Unsubscribe": "One-Click"} if method == "POST" else None)
            assert response.status_code == 404, (candidate, method, suffix, response.status_code)
            assert response.headers["content-type"].startswith("text/plain")
            assert "@" not in response.text and "•" not in response.text
            bodies.add(response.content)
    assert len(bodies) == 1, bodies
    assert site.status("nour@example.org") == "active" and site.events() == 0
    # control: the genuine token still works, so the 404s are about the tokens
    assert client.get(links["nour@example.org"]).status_code == 200


# --- 4. 200 concurrent POSTs, 200 concurrent GETs -------------------------------------------------


def test_200_concurrent_unsubscribes_and_200_concurrent_page_views(site):
    people = [(f"person{n:03d}@example.org", f"Person {n}", "ar" if n % 2 else "en") for n in range(400)]
    site.add(*people)
    tokens = {address: site.token(address) for address, _, _ in people}
    posters = [address for address, _, _ in people[:200]]
    viewers = [address for address, _, _ in people[200:]]

    async def burst(method: str, addresses: list[str]) -> tuple[list[httpx.Response], float]:
        # A fresh client per burst: a connection kept alive from the previous burst could meet
        # uvicorn's keep-alive timeout halfway through a request (a client-side race, not the app's).
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=site.url, limits=limits, timeout=60, follow_redirects=False) as c:
            started = time.perf_counter()
            if method == "POST":
                responses = await asyncio.gather(*(
                    c.post(f"/u/{tokens[a]}", content=b"List-Unsubscribe=One-Click",
                           headers={"Content-Type": "application/x-www-form-urlencoded"}) for a in addresses))
            else:
                responses = await asyncio.gather(*(c.get(f"/u/{tokens[a]}") for a in addresses))
            return responses, time.perf_counter() - started

    posted, post_time = asyncio.run(burst("POST", posters))
    viewed, get_time = asyncio.run(burst("GET", viewers))
    print(f"\n200 concurrent one-click POSTs: {post_time:.2f} s; 200 concurrent GETs: {get_time:.2f} s")

    assert [r.status_code for r in posted] == [200] * 200
    assert all(EN_DONE in r.text or AR_DONE in r.text for r in posted)
    assert [r.status_code for r in viewed] == [200] * 200
    assert all('value="One-Click"' in r.text for r in viewed)
    unsubscribed = {sub.email for sub in site.store.subscribers.all(status="unsubscribed")}
    assert unsubscribed == set(posters)
    active = {sub.email for sub in site.store.subscribers.all(status="active")}
    assert active == set(viewers)
    assert site.events("unsubscribe") == 200 and site.events() == 200


# --- 5. the report --------------------------------------------------------------------------------


def test_report_counts_unsubscribes_under_their_campaign_and_language(site, client):
    people = [(f"ar{n}@example.org", f"مشارك {n}", "ar") for n in range(3)] + [(f"en{n}@example.org", f"Person {n}", "en") for n in range(3)]
    site.add(*people)
    links = site.send()
    for address in ("ar0@example.org", "ar1@example.org", "en0@example.org"):
        assert client.post(links[address], data={"List-Unsubscribe": "One-Click"}).status_code == 200
    # a link that names no campaign unsubscribes, but is not counted under the campaign
    assert client.post(f"{site.url}/u/{site.token('en1@example.org', 0)}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert site.status("en1@example.org") == "unsubscribed"

    result = site.cli("report", "--format", "json")
    rows = json.loads(result.output)
    by_language = {row["language"]: row for row in rows}
    assert sorted(by_language) == ["ar", "en"] and len(rows) == 2, rows
    for language, unsubscribes in (("ar", 2), ("en", 1)):
        row = by_language[language]
        assert row["campaign"] == SLUG and row["campaign_id"] == 1
        assert row["recipients"] == row["sent"] == 3
        assert row["unsubscribes"] == unsubscribes, row
        assert row["hard_bounces"] == row["complaints"] == 0

    table = site.cli("report", "--format", "table").output.splitlines()
    header = table[0].split()
    assert header[:7] == ["#", "issue", "lists", "provider", "started", "finished", "state"], table
    assert header[7:9] == ["lang", "recipients"] and header[-1] == "unsubscribed", table
    # cells may hold spaces (times, "outbox (rehearsal)"): read the language at its column
    at = table[0].index(" lang ") + 1
    cells = {line[at:].split()[0]: line.split() for line in table[1:]}
    assert set(cells) == {"ar", "en"}, table
    assert cells["ar"][1] == SLUG and cells["ar"][-1] == "2" and cells["en"][-1] == "1"


# --- 6. SNS -----------------------------------------------------------------------------------------


def _delivery(site: Site, address: str) -> str:
    """The provider message id recorded for the delivery to `address` (the Message-ID, for the outbox)."""
    d, sub = s.deliveries.c, s.subscribers.c
    with site.store.db.engine.connect() as conn:
        return conn.execute(
            select(d.provider_message_id).select_from(s.deliveries.join(s.subscribers, d.subscriber_id == sub.id))
            .where(sub.email == address)
        ).scalar_one()


def _post_json(client: httpx.Client, path: str, message) -> httpx.Response:
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return client.post(path, content=body, headers={"Content-Type": "text/plain; charset=UTF-8",
                                                    "x-amz-sns-message-type": "Notification"})


def _processed(site: Site) -> int:
    with site.store.db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(s.processed_messages)).scalar_one()


def test_sns_rejections_change_nothing(site, client, sns_key):
    site.add(("nour@example.org", "نور", "ar"))
    site.send()
    ses = bounce_for("NOUR@EXAMPLE.ORG", _delivery(site, "nour@example.org"))
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    tampered = notification(sns_key, ses)
    tampered["Message"] = tampered["Message"].replace("Permanent", "Permanent ")
    rejected = {
        "forged signature": notification(forger, ses),
        "tampered after signing": tampered,
        "topic not allowed": notification(sns_key, ses, topic=OTHER_TOPIC),
        "stale timestamp": notification(sns_key, ses, sent=datetime.now(timezone.utc) - timedelta(hours=2)),
        "non-JSON body": b"this is {not JSON",
        "JSON but not an object": b'["Notification"]',
    }
    for reason, message in rejected.items():
        response = _post_json(client, "/sns", message)
        assert response.status_code == 400, (reason, response.status_code, response.text)
    assert site.status("nour@example.org") == "active"
    assert not is_suppressed(site.store, "nour@example.org", SECRET_BYTES)
    assert site.events() == 0 and _processed(site) == 0

    # control: the same SES message, signed and from the allowed topic, is accepted
    assert _post_json(client, "/sns", notification(sns_key, ses)).status_code == 200
    assert site.status("nour@example.org") == "bounced"


def test_sns_bounce_from_ses_fixture_suppresses_once(site, client, sns_key):
    site.add(("nour@example.org", "نور", "ar"), ("jane@example.org", "Jane", "en"))
    site.send()
    message_id = _delivery(site, "nour@example.org")
    assert message_id.startswith("<") and message_id.endswith("@news.cssrweb.org>")
    envelope = notification(sns_key, bounce_for("NOUR@EXAMPLE.ORG", message_id))

    response = _post_json(client, "/sns", envelope)
    assert response.status_code == 200, response.text
    assert site.status("nour@example.org") == "bounced"
    assert is_suppressed(site.store, "nour@example.org", SECRET_BYTES)
    assert is_suppressed(site.store, "Nour@Example.org", SECRET_BYTES)
    assert site.status("jane@example.org") == "active"
    assert not is_suppressed(site.store, "jane@example.org", SECRET_BYTES)
    assert site.events("bounce") == 1 and site.events() == 1
    assert site.certificate_loads == [CERT_URL]

    # SNS delivers at least once: the same message again, and the same SES event in a new envelope
    assert _post_json(client, "/sns", envelope).status_code == 200
    again = notification(sns_key, bounce_for("nour@example.org", message_id))
    assert _post_json(client, "/sns", again).status_code == 200
    assert site.events() == 1 and site.status("nour@example.org") == "bounced"
    [ar] = [row for row in site.store.reports.campaigns() if row["language"] == "ar"]
    assert ar["hard_bounces"] == 1
    # a bounced address gets no unsubscribe page form: it is not subscribed any more
    page = client.get(f"{site.url}/u/{site.token('nour@example.org')}")
    assert page.status_code == 200 and "One-Click" not in page.text


def test_sns_subscription_confirmation_only_when_genuine(site, client, sns_key):
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unsigned = subscription_confirmation(sns_key)
    del unsigned["Signature"]
    forged = subscription_confirmation(sns_key)
    forged["SubscribeURL"] = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=" + OTHER_TOPIC
    for reason, message in (
        ("unsigned", unsigned),
        ("forged", forged),
        ("signed by another key", subscription_confirmation(forger)),
        ("topic not allowed", subscription_confirmation(sns_key, topic=OTHER_TOPIC)),
    ):
        response = _post_json(client, "/sns", message)
        assert response.status_code == 400, (reason, response.status_code, response.text)
    assert site.confirmed == []

    genuine = subscription_confirmation(sns_key)
    response = _post_json(client, "/sns", genuine)
    assert response.status_code == 200, response.text
    assert site.confirmed == [genuine["SubscribeURL"]]


def test_sns_store_failure_is_503_and_sns_may_retry(site, client, sns_key, sns_pem):
    class DatabaseDown(Feedback):
        def apply_feedback(self, *args, **kwargs):
            raise OperationalError("INSERT INTO processed_messages ...", {}, Exception("could not connect to server"))

    down = Store(site.store.db)
    down.feedback = DatabaseDown(site.store.db)

    site.add(("nour@example.org", "نور", "ar"))
    site.send()
    envelope = notification(sns_key, bounce_for("NOUR@EXAMPLE.ORG", _delivery(site, "nour@example.org")))
    broken = make_app(site.project, down, [], [], sns_pem)
    with running(broken) as url, httpx.Client(base_url=url, timeout=30) as down:
        response = _post_json(down, "/sns", envelope)
    assert response.status_code == 503, (response.status_code, response.text)
    assert site.status("nour@example.org") == "active" and site.events() == 0

    # SNS delivers the same message again once the database is back
    assert _post_json(client, "/sns", envelope).status_code == 200
    assert site.status("nour@example.org") == "bounced"


# --- 7. Chromium ------------------------------------------------------------------------------------


@pytest.mark.browser
def test_arabic_page_in_chromium_at_375px(site):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium package (apt-get install chromium)", pytrace=False)
    from playwright.sync_api import sync_playwright

    site.add(("nour@example.org", "نور", "ar"))
    url = site.send()["nour@example.org"]
    foreign: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 375, "height": 800})
            page = context.new_page()
            page.on("request", lambda r: None if r.url.startswith(site.url) else foreign.append(r.url))
            response = page.goto(url, wait_until="load")
            assert response.status == 200
            looks = page.evaluate("""() => {
                const p = document.querySelector('main p'), address = document.querySelector('main p .address');
                return {inner: window.innerWidth, html: document.documentElement.scrollWidth, body: document.body.scrollWidth,
                        direction: getComputedStyle(p).direction, align: getComputedStyle(p).textAlign,
                        addressDirection: getComputedStyle(address).direction, address: address.textContent,
                        text: p.textContent};
            }""")
            assert looks["direction"] == "rtl" and looks["align"] == "right", looks
            assert looks["addressDirection"] == "ltr" and looks["address"] == "n•••@example.org", looks
            assert looks["html"] <= looks["inner"] and looks["body"] <= looks["inner"], f"horizontal scrolling: {looks}"
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shot = SCREENSHOTS / "unsubscribe-ar-375.png"
            shot.unlink(missing_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 1000

            # the page's button, pressed in a real browser (CSP form-action 'self' allows it)
            with page.expect_navigation():
                page.click("button[name='List-Unsubscribe']")
            assert AR_DONE in page.text_content("main")
            assert site.status("nour@example.org") == "unsubscribed"
            context.close()
        finally:
            browser.close()
    assert foreign == []


@pytest.mark.browser
def test_the_readers_page_says_only_what_is_true_in_chromium(tmp_path, secret_env):
    """The three pages the issue found wrong, read in a real browser at 375 px: under the bilingual
    layout (both languages, no choice of language), a person who chose both under the per-recipient
    layout (both languages, the choice in each), and after leaving (how to come back, nothing about
    which letters they receive). What each says is written to dist/screenshots/readers-page.txt."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium package (apt-get install chromium)", pytrace=False)
    from playwright.sync_api import sync_playwright

    bilingual = Project(tmp_path / "bilingual")
    chosen = Project(tmp_path / "per-recipient")
    text = chosen.config_path.read_text(encoding="utf-8")
    chosen.config_path.write_text(text.replace('layout = "bilingual"', 'layout = "per-recipient"', 1), encoding="utf-8")
    stores = [bilingual.store(), chosen.store()]
    stores[0].subscribers.import_rows([NewSubscriber("jane@example.org", "Jane", "en")], "main", SECRET_BYTES)
    stores[1].subscribers.import_rows([NewSubscriber("sami@example.org", "سامي", "both")], "main", SECRET_BYTES)
    people = [stores[0].subscribers.by_email("jane@example.org"), stores[1].subscribers.by_email("sami@example.org")]
    tokens = [TokenSigner(SECRET_BYTES).make(person.token_key, 0) for person in people]
    said: dict[str, list[dict]] = {}
    read = """() => [...document.querySelectorAll('main section')].map(s => ({
        lang: s.lang, direction: getComputedStyle(s).direction, align: getComputedStyle(s).textAlign,
        text: s.innerText.replace(/\\s+/g, ' ').trim()}))"""
    with running(create_app(bilingual.config(), stores[0], SECRET_BYTES)) as first, \
            running(create_app(chosen.config(), stores[1], SECRET_BYTES)) as second, sync_playwright() as p:  # fmt: skip
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 375, "height": 800}).new_page()
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            for case, url in (("bilingual layout", f"{first}/u/{tokens[0]}"), ("chose both", f"{second}/u/{tokens[1]}")):
                assert page.goto(url, wait_until="load").status == 200
                said[case] = page.evaluate(read)
                page.screenshot(path=str(SCREENSHOTS / f"readers-page-{case.replace(' ', '-')}.png"), full_page=True)
            with page.expect_navigation():
                page.click("section[lang=ar] button[name='List-Unsubscribe']")
            assert page.goto(f"{second}/u/{tokens[1]}", wait_until="load").status == 200
            said["after leaving"] = page.evaluate(read)
            page.screenshot(path=str(SCREENSHOTS / "readers-page-after-leaving.png"), full_page=True)
        finally:
            browser.close()
    for store in stores:
        store.close()
    (SCREENSHOTS / "readers-page.txt").write_text(
        "".join(f"{case}:\n" + "".join(f"  [{b['lang']} {b['direction']}] {b['text']}\n" for b in blocks) for case, blocks in said.items()),
        encoding="utf-8",
    )
    for case, blocks in said.items():
        assert [(b["lang"], b["direction"], b["align"]) for b in blocks] in (
            [("en", "ltr", "left"), ("ar", "rtl", "right")], [("ar", "rtl", "right"), ("en", "ltr", "left")]), (case, blocks)
    words = ("You receive the letters", "تصلك الرسائل", "next letter", "Language of the letters", "لغة الرسائل")
    assert not any(w in b["text"] for b in said["bilingual layout"] for w in words), said["bilingual layout"]
    assert [b["lang"] for b in said["bilingual layout"]] == ["en", "ar"]  # Jane's own first
    assert "تصلك الرسائل بالعربية والإنجليزية معًا." in said["chose both"][0]["text"]
    assert "You receive the letters in Arabic and English." in said["chose both"][1]["text"]
    after = said["after leaving"]
    assert not any(w in b["text"] for b in after for w in words), after
    assert "Subscribe again" in after[1]["text"] and "إعادة الاشتراك" in after[0]["text"]
