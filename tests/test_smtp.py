"""Sending through a real SMTP server (aiosmtpd on loopback): what arrives, and how faults end.

Nothing is mocked: the CLI runs in a subprocess, smtplib talks to aiosmtpd, and the test
reads back what the server received and what the ledger says.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import SECRET, Project
from smtp_sink import SENDER_REFUSED, SinkHandler, smtp_config, smtp_sink  # noqa: F401 - fixture
from store_helpers import set_status

ISSUE = "issues/2022-12-year-end"
ACTIVE = 30
UNSUBSCRIBED = 3  # imported, then unsubscribed
FORGOTTEN = 1  # imported, then forgotten


def run_cli(project: Project, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    # --config always: the issue folder is a symlink into the repository, whose own
    # newsletter.toml (and database) would otherwise be found from the resolved path.
    return subprocess.run(
        [sys.executable, "-m", "newsletter", *args, "--config", str(project.config_path)],
        cwd=project.root, env=project.env, capture_output=True, text=True, timeout=timeout,
    )


def send(project: Project, *extra: str) -> subprocess.CompletedProcess:
    return run_cli(project, "send", ISSUE, "--list", "main", "--provider", "smtp", "--yes", *extra)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def populate(project: Project) -> tuple[dict[str, str], set[str]]:
    """Import everyone, unsubscribe some and forget one. Returns (active address → language, gone addresses)."""
    total = ACTIVE + UNSUBSCRIBED + FORGOTTEN
    csv = project.write_subscribers(total, arabic_every=2)
    ok(run_cli(project, "subscribers", "import", str(csv), "--list", "main"))
    store = project.store()
    people = {sub.email: sub.language for sub in store.subscribers.all("main")}
    assert len(people) == total
    addresses = sorted(people)
    # unsubscribe an Arabic and an English reader at least, and forget one
    gone = set()
    for address in addresses[1:1 + UNSUBSCRIBED]:
        sub = store.subscribers.by_email(address)
        assert set_status(store, sub.id, "unsubscribed")
        gone.add(address)
    forgotten = addresses[-1]
    ok(run_cli(project, "subscribers", "forget", forgotten))
    assert store.subscribers.by_email(forgotten) is None
    gone.add(forgotten)
    store.close()
    active = {a: lang for a, lang in people.items() if a not in gone}
    assert len(active) == ACTIVE and {"ar", "en"} <= set(active.values())
    return active, gone


class Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href, self._text = dict(attrs).get("href"), []

    def handle_data(self, data):
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


def raw_headers(raw: bytes) -> tuple[list[bytes], dict[str, str]]:
    """The raw header lines and the unfolded headers (name lower-cased → value) of a message."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    lines = re.split(rb"\r?\n", head)
    unfolded: dict[str, str] = {}
    name = None
    for line in lines:
        text = line.decode("ascii")  # raw headers must be ASCII
        if text[:1] in (" ", "\t") and name:
            unfolded[name] += " " + text.strip()
        else:
            name, _, value = text.partition(":")
            name = name.lower()
            assert name not in unfolded or name == "received", f"header {name} twice"
            unfolded[name] = value.strip()
    return lines, unfolded


def check_messages(sink: SinkHandler, project: Project, active: dict[str, str], gone: set[str], *, layout: str) -> None:
    from newsletter.letter.render import build_issue
    from newsletter.keys import TokenSigner

    build = build_issue(project.issue, project.config_path)
    subjects = {name: v.subject for name, v in build.variants.items()}
    assert subjects["ar"] != subjects["en"]
    store = project.store()
    (campaign,) = store.campaigns.all()
    token_keys = {sub.email: sub.token_key for sub in store.subscribers.all("main")}
    signer = TokenSigner(SECRET.encode())

    received = sink.received()
    assert sorted(m.rcpt_tos[0] for m in received) == sorted(active), "one message per active subscriber, nobody else"
    message_ids = set()
    for message in received:
        assert len(message.rcpt_tos) == 1
        rcpt = message.rcpt_tos[0]
        assert message.mail_from == "updates@news.cssrweb.org"
        for address in gone:
            assert address.encode() not in message.raw, f"{address} appears in the message to {rcpt}"

        lines, headers = raw_headers(message.raw)
        assert max(len(line) for line in lines) <= 998
        for line in re.split(rb"\r?\n", message.raw):
            assert len(line) <= 998
        unsubscribe = headers["list-unsubscribe"]
        assert "=?" not in unsubscribe, unsubscribe
        assert "cc" not in headers and "bcc" not in headers

        msg = message.parse()
        assert msg["To"] == rcpt
        assert msg.get_all("To") == [rcpt]
        assert msg["Cc"] is None and msg["Bcc"] is None
        assert "updates@news.cssrweb.org" in msg["From"]
        assert msg["Reply-To"] == "contact@cssrweb.org"
        assert msg["Date"] is not None and msg["Date"].datetime is not None
        assert msg["Message-ID"] and msg["Message-ID"] not in message_ids
        message_ids.add(msg["Message-ID"])
        assert msg["List-Id"] == "Civil Society Support Room <newsletter.news.cssrweb.org>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

        targets = re.findall(r"<([^>]*)>", unsubscribe)
        https = [t for t in targets if t.startswith("https://")]
        assert len(https) == 1, unsubscribe
        url = https[0]
        assert url.startswith("https://news.cssrweb.org/u/")
        assert "@" not in url and rcpt.split("@")[0] not in url
        for other in targets:
            assert other == url or other.startswith("mailto:"), unsubscribe
        # the link names this person (and this campaign), not somebody else
        assert signer.read(url.rsplit("/", 1)[1]) == (token_keys[rcpt], campaign.id)

        assert msg.get_content_type() == "multipart/alternative"
        parts = list(msg.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        text, html = parts[0].get_content(), parts[1].get_content()
        assert url in text
        anchors = Anchors()
        anchors.feed(html)
        visible = [label for href, label in anchors.links if href == url]
        assert visible and all(visible), f"no visible unsubscribe link to {url} in the HTML for {rcpt}"

        language = active[rcpt]
        if layout == "bilingual":
            assert msg["Content-Language"] == "ar,en"
            assert msg["Subject"] == subjects["bilingual"]
            assert 'lang="ar"' in html and 'lang="en"' in html
        else:
            assert msg["Content-Language"] == language
            assert msg["Subject"] == subjects[language]
            assert re.search(rf'<html[^>]*\blang="{language}"', html), html[:300]
            other = "en" if language == "ar" else "ar"
            assert f'lang="{other}"' not in html
    store.close()


@pytest.mark.parametrize("layout", ["bilingual", "per-recipient"])
def test_smtp_one_message_per_active_subscriber(project_dir, smtp_sink, layout):
    sink = smtp_sink()
    project = Project(project_dir, extra_config=smtp_config(sink.port))
    if layout == "per-recipient":
        text = project.config_path.read_text(encoding="utf-8")
        assert text.count('layout = "bilingual"') == 1
        text = text.replace('layout = "bilingual"', 'layout = "per-recipient"')
        # and a mailto target besides the https one
        text = text.replace('[email]\n', '[email]\nunsubscribe = "unsubscribe@news.cssrweb.org"\n', 1)
        project.config_path.write_text(text, encoding="utf-8")
    active, gone = populate(project)

    result = ok(send(project))
    assert "sent 30, failed 0, uncertain 0, pending 0" in result.stdout
    check_messages(sink, project, active, gone, layout=layout)
    if layout == "per-recipient":
        with_mailto = [m for m in sink.received() if "mailto:unsubscribe@news.cssrweb.org" in raw_headers(m.raw)[1]["list-unsubscribe"]]
        assert len(with_mailto) == ACTIVE

    # a second run sends nothing more
    result = ok(send(project))
    assert "0 sent in this run" in result.stdout
    assert sink.count() == ACTIVE
    assert set(sink.per_recipient().values()) == {1}


@pytest.mark.trials  # several seconds of whole sends: the whole suite's
def test_smtp_throttling_retried_until_everyone_has_one(project_dir, smtp_sink):
    """30 % of messages refused with 451 at the end of DATA: retried, each person gets exactly one."""
    from newsletter.letter.render import build_issue
    from newsletter.sending.campaign import SendOptions
    from newsletter.sending.engine import provider_factory, send_campaign
    from newsletter.sending.pacing import Backoff

    sink = smtp_sink(refuse_fraction=0.3, seed=7)
    project = Project(project_dir, extra_config=smtp_config(sink.port, max_attempts=12))
    active, gone = populate(project)
    build = build_issue(project.issue, project.config_path)
    store = project.store()
    options = SendOptions(lists=("main",), provider="smtp", rate=2000, threads=4, max_attempts=12)
    factory = provider_factory("smtp", build.config)
    summary = send_campaign(store, build, options, factory, SECRET.encode(), backoff=Backoff(base=0.01, cap=0.05))

    assert summary.stopped is None
    assert summary.counts["sent"] == ACTIVE and summary.counts["failed"] == 0 and summary.counts["uncertain"] == 0
    assert summary.failed == [] and summary.sent_now == ACTIVE
    assert sink.refused >= 3, f"the sink refused only {sink.refused}: the fault was not exercised"
    assert sorted(sink.per_recipient().elements()) == sorted(active)
    store.close()
    check_messages(sink, project, active, gone, layout="bilingual")


def test_smtp_throttling_through_the_cli(project_dir, smtp_sink):
    """The same fault through the command and its real backoff, on a smaller list."""
    sink = smtp_sink(refuse_fraction=0.3, seed=3)
    project = Project(project_dir, extra_config=smtp_config(sink.port, max_attempts=12))
    csv = project.write_subscribers(12)
    ok(run_cli(project, "subscribers", "import", str(csv), "--list", "main"))
    result = ok(send(project))
    assert "sent 12, failed 0, uncertain 0, pending 0" in result.stdout
    assert sink.refused > 0
    counts = sink.per_recipient()
    assert len(counts) == 12 and set(counts.values()) == {1}


@pytest.mark.trials  # several seconds of whole sends: the whole suite's
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("fault", ["sender_refused", "login_refused"])
def test_smtp_refused_sender_stops_the_campaign(project_dir, smtp_sink, fault, monkeypatch):
    if fault == "sender_refused":
        sink = smtp_sink(mail_from_reply=SENDER_REFUSED)
        fix = dict(mail_from_reply=None)
    else:
        sink = smtp_sink(require_auth=True, credentials=None)
        fix = dict(credentials=("news", "s3cret"))
    project = Project(project_dir, extra_config=smtp_config(sink.port))
    if fault == "login_refused":
        monkeypatch.setenv("NEWSLETTER_SMTP_USERNAME", "news")
        monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", "s3cret")
    active, _ = populate(project)

    started = time.monotonic()
    result = send(project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert time.monotonic() - started < 30
    expected = "MAIL FROM refused: 550" if fault == "sender_refused" else "refused the login for 'news'"
    assert expected in result.stderr, result.stderr
    assert "paused" in result.stderr and "run the same send again to resume" in result.stderr
    assert "Traceback" not in result.stderr
    assert sink.count() == 0
    assert (sink.refused_senders if fault == "sender_refused" else sink.refused_logins) > 0
    store = project.store()
    (campaign,) = store.campaigns.all()
    counts = store.ledger.delivery_counts(campaign.id)
    assert counts["sent"] == 0 and counts["uncertain"] == 0 and counts["failed"] == 0
    assert counts["pending"] == ACTIVE
    assert campaign.state == "paused" and campaign.stop_reason

    sink.configure(**fix)
    result = ok(send(project))
    assert "sent 30, failed 0, uncertain 0, pending 0" in result.stdout
    counts = sink.per_recipient()
    assert sorted(counts.elements()) == sorted(active)
    (campaign,) = store.campaigns.all()
    assert campaign.state == "done"
    store.close()


@pytest.fixture
def project_dir(tmp_path: Path, secret_env) -> Path:
    return tmp_path / "project"
