"""Bounces, complaints and mailed unsubscribes of an SMTP campaign, through real servers.

A campaign goes through the aiosmtpd sink (tests/smtp_sink.py), whose envelope senders are
checked; the mail a bounce mailbox would receive is put into a real Dovecot (tests/dovecot.py,
implicit TLS and STARTTLS with its own CA) with IMAP APPEND; `newsletter feedback mailbox`
runs as a subprocess against it and against the store, SQLite and PostgreSQL. Nothing is
mocked; the store's failure is a real database error raised by a trigger.
"""

from __future__ import annotations

import imaplib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import bounce_samples as samples
import pytest
from conftest import SECRET, Project
from dovecot import DovecotServer
from smtp_sink import SinkHandler, free_port, smtp_config, smtp_sink  # noqa: F401 - fixture
from sqlalchemy import func, select, text

import newsletter.store.tables as t
from newsletter.keys import DeliveryTokens, tag_of, tagged
from store_helpers import is_suppressed

ISSUE = "issues/2022-12-year-end"
BOUNCES = "bounces@news.cssrweb.org"
UNSUBSCRIBE = "unsubscribe@news.cssrweb.org"
FEEDBACK_LOOP = "fbl@news.cssrweb.org"
FORGER = DeliveryTokens(b"a-key-that-is-not-the-store-key-0123456789")


@pytest.fixture(scope="module")
def imap():
    """A real Dovecot for the module; each test logs in as a user of its own."""
    server = DovecotServer().start()
    yield server
    server.stop()


class Setup:
    """A project sending through the sink, with [bounces] and [mailbox] pointing at Dovecot."""

    def __init__(self, root: Path, store_url: str | None, sink: SinkHandler, imap: DovecotServer):
        self.imap = imap
        self.user, self.password = imap.add_user()
        self.store_url = store_url
        self.sink = sink
        self.sink_port = sink.port
        self.project = Project(root, extra_config=self.config_text())
        text_ = self.project.config_path.read_text(encoding="utf-8")
        self.project.config_path.write_text(
            text_.replace("[email]\n", f'[email]\nunsubscribe = "{UNSUBSCRIBE}"\n', 1), encoding="utf-8"
        )

    def config_text(self, *, port: int | None = None, security: str = "tls", mailbox: bool = True, interval: float = 60) -> str:
        out = smtp_config(self.sink_port)
        if self.store_url and not self.store_url.startswith("sqlite"):
            out += f'\n[store]\nurl = "{self.store_url}"\n'
        out += f'\n[bounces]\naddress = "{BOUNCES}"\n'
        if mailbox:
            default = self.imap.tls_port if security == "tls" else self.imap.starttls_port
            out += (
                f'\n[mailbox]\nhost = "127.0.0.1"\nport = {port or default}\nsecurity = "{security}"\n'
                f'user = "{self.user}"\ninterval = {interval}\n'
            )
        return out

    def reconfigure(self, **options) -> None:
        path = self.project.config_path
        head = path.read_text(encoding="utf-8").split("[smtp]\n", 1)[0]
        path.write_text(head + self.config_text(**options), encoding="utf-8")

    def env(self, **changes: str | None) -> dict[str, str]:
        env = {**self.project.env, "NEWSLETTER_MAILBOX_PASSWORD": self.password, "SSL_CERT_FILE": str(self.imap.ca)}
        for name, value in changes.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "newsletter", *args, "--config", str(self.project.config_path)],
            cwd=self.project.root, env=env or self.env(), capture_output=True, text=True, timeout=timeout,
        )

    def mailbox(self, **env: str | None) -> subprocess.CompletedProcess:
        return self.cli("feedback", "mailbox", "--once", env=self.env(**env))

    def send_to(self, people: int) -> list[str]:
        csv = self.project.write_subscribers(people)
        ok(self.cli("subscribers", "import", str(csv), "--list", "main"))
        ok(self.cli("send", ISSUE, "--list", "main", "--provider", "smtp", "--yes"))
        store = self.project.store()
        try:
            return sorted(sub.email for sub in store.subscribers.all("main"))
        finally:
            store.close()

    # --- the IMAP side ------------------------------------------------------------------------

    def client(self) -> imaplib.IMAP4_SSL:
        return self.imap.client(self.user, self.password)

    def deliver(self, *messages: bytes) -> None:
        conn = self.client()
        try:
            for raw in messages:
                status, _ = conn.append("INBOX", None, None, raw)
                assert status == "OK"
        finally:
            conn.logout()

    def folder(self, name: str) -> list[tuple[bytes, set[str]]]:
        """(message bytes, flags) of every message in the folder; [] when it does not exist."""
        conn = self.client()
        try:
            status, _ = conn.select(f'"{name}"', readonly=True)
            if status != "OK":
                return []
            _, data = conn.uid("SEARCH", "ALL")
            out = []
            for uid in data[0].split():
                _, fetched = conn.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
                for item in fetched:
                    if isinstance(item, tuple):  # (not when the message was moved meanwhile)
                        out.append((item[1], set(re.findall(r"\\\w+", item[0].decode()))))
            return out
        finally:
            conn.logout()

    def count(self, name: str) -> int:
        conn = self.client()
        try:
            _, data = conn.status(f'"{name}"', "(MESSAGES)")
            return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))
        finally:
            conn.logout()

    def copy_back(self, count: int | None = None) -> None:
        """Put processed messages back into INBOX, as if stored but never moved."""
        conn = self.client()
        try:
            conn.select('"processed"')
            _, data = conn.uid("SEARCH", "ALL")
            uids = data[0].split()[: count or None]
            assert conn.uid("COPY", b",".join(uids).decode(), "INBOX")[0] == "OK"
            conn.select("INBOX")
            _, data = conn.uid("SEARCH", "ALL")
            conn.uid("STORE", b",".join(data[0].split()).decode(), "-FLAGS.SILENT", "(\\Seen)")
        finally:
            conn.logout()

    # --- the store side -----------------------------------------------------------------------

    def snapshot(self) -> dict:
        store = self.project.store()
        try:
            statuses = {sub.email: sub.status for sub in store.subscribers.all("main")}
            with store.db.engine.connect() as conn:
                events = conn.execute(select(func.count()).select_from(t.feedback_events)).scalar_one()
                suppressed = conn.execute(select(func.count()).select_from(t.suppressions)).scalar_one()
            return {"statuses": statuses, "events": events, "suppressed": suppressed, "report": store.reports.campaigns()}
        finally:
            store.close()

    def deliveries(self) -> dict[str, tuple[int, str]]:
        """address → (delivery id, Message-ID) of the campaign."""
        store = self.project.store()
        try:
            with store.db.engine.connect() as conn:
                rows = conn.execute(
                    select(t.subscribers.c.email, t.deliveries.c.id, t.deliveries.c.provider_message_id).join(
                        t.deliveries, t.deliveries.c.subscriber_id == t.subscribers.c.id
                    )
                ).all()
            return {email: (delivery, message_id) for email, delivery, message_id in rows}
        finally:
            store.close()

    def soft_bounces(self) -> dict[str, int]:
        store = self.project.store()
        try:
            with store.db.engine.connect() as conn:
                rows = conn.execute(
                    select(t.subscribers.c.email, func.count())
                    .join(t.feedback_events, t.feedback_events.c.subscriber_id == t.subscribers.c.id)
                    .where(t.feedback_events.c.kind == "bounce", t.feedback_events.c.bounce_type != "Permanent")
                    .group_by(t.subscribers.c.email)
                ).all()
            return dict(rows)
        finally:
            store.close()

    def events_of(self, address: str) -> list[tuple[str, str | None]]:
        store = self.project.store()
        try:
            person = store.subscribers.by_email(address)
            with store.db.engine.connect() as conn:
                rows = conn.execute(
                    select(t.feedback_events.c.kind, t.feedback_events.c.bounce_type).where(
                        t.feedback_events.c.subscriber_id == person.id
                    )
                ).all()
            return [tuple(row) for row in rows]
        finally:
            store.close()

    def report_totals(self) -> dict[str, int]:
        rows = json.loads(ok(self.cli("report", "--format", "json")).stdout)
        keys = ("hard_bounces", "soft_bounces", "complaints", "unsubscribes", "sent")
        return {key: sum(row[key] for row in rows) for key in keys}


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def head_of(raw: bytes) -> str:
    return re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0].decode("ascii") + "\r\n"


@pytest.fixture
def setup_for(tmp_path, secret_env, smtp_sink, imap):
    def make(store_url: str | None = None) -> Setup:
        return Setup(tmp_path / "project", store_url, smtp_sink(), imap)

    return make


def verp_of_each_message(s: Setup, people: list[str]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Checks every message's envelope sender and mailto; returns them and each message's head, by person."""
    store = s.project.store()
    tokens = DeliveryTokens(store.keys.data_key())
    store.close()
    deliveries = s.deliveries()
    envelope, mailto, head = {}, {}, {}
    for message in s.sink.received():
        (rcpt,) = message.rcpt_tos
        delivery_id, message_id = deliveries[rcpt]
        token = tag_of(message.mail_from, BOUNCES)
        assert token is not None, message.mail_from
        assert tokens.read(token, "bounce") == delivery_id
        assert rcpt.split("@")[0] not in message.mail_from
        assert message.parse()["Message-ID"] == message_id
        target = re.search(r"<mailto:([^>?]+)\?subject=unsubscribe>", message.parse()["List-Unsubscribe"]).group(1)
        assert tokens.read(tag_of(target, UNSUBSCRIBE), "unsubscribe") == delivery_id
        envelope[rcpt], mailto[rcpt], head[rcpt] = message.mail_from, target, head_of(message.raw)
    assert sorted(envelope) == people and len(set(envelope.values())) == len(people)
    return envelope, mailto, head


# --- the campaign, then everything that comes back ------------------------------------------


def test_smtp_campaign_feedback_through_the_bounce_mailbox(setup_for, store_url):
    s = setup_for(store_url)
    people = s.send_to(12)
    envelope, mailto, head = verp_of_each_message(s, people)
    p = people
    deliveries = s.deliveries()
    forged_bounce = tagged(BOUNCES, FORGER.make(deliveries[p[9]][0], "bounce"))
    forged_unsubscribe = tagged(UNSUBSCRIBE, FORGER.make(deliveries[p[10]][0], "unsubscribe"))
    with_return_path = f"Return-Path: <{envelope[p[6]]}>\r\n{head[p[6]]}"
    s.deliver(
        samples.dsn(envelope[p[0]], p[0], "5.1.1", f"550 5.1.1 <{p[0]}>: Recipient address rejected: User unknown", head[p[0]]),
        samples.dsn(envelope[p[1]], p[1], "4.2.2", f"452 4.2.2 <{p[1]}>: Mailbox full", head[p[1]]),
        samples.dsn(envelope[p[2]], p[2], "5.2.2", f"552 5.2.2 <{p[2]}>: Mailbox full, quota exceeded", head[p[2]]),
        samples.postfix_old(envelope[p[3]], p[3], head[p[3]]),
        samples.exim(envelope[p[4]], p[4], head[p[4]]),
        samples.qmail(envelope[p[5]], p[5], head[p[5]]),
        samples.arf(FEEDBACK_LOOP, with_return_path, original_mail_from=envelope[p[6]]),
        samples.out_of_office(envelope[p[7]], p[7]),
        samples.unsubscribe_mail(mailto[p[8]], p[8], subject="Please take me off", body="Thanks."),
        samples.dsn(forged_bounce, p[9], "5.1.1", f"550 5.1.1 <{p[9]}>: User unknown", head[p[9]]),
        samples.unsubscribe_mail(forged_unsubscribe, p[10]),
    )
    before = s.snapshot()
    assert set(before["statuses"].values()) == {"active"} and before["events"] == 0

    result = ok(s.mailbox())
    assert "Traceback" not in result.stderr
    assert (
        "11 messages in INBOX: 6 bounces (4 hard, 2 soft, 0 for our sending or our letter), 1 complaints, 1 unsubscribes, 0 delay notices, 0 delivery reports, "
        "1 auto-replies, 0 unrecognised, 2 with a token not ours" in result.stdout
    ), result.stdout
    assert (
        "4 bounced, 1 complained, 1 unsubscribed; 0 not matched to a delivery, 0 already processed, "
        "0 not stored (left unread); 11 moved to processed" in result.stdout
    ), result.stdout
    assert result.stderr.count("with a token that is not ours: nothing changed") == 2

    after = s.snapshot()
    expected = dict.fromkeys(people, "active")
    expected.update({p[0]: "bounced", p[3]: "bounced", p[4]: "bounced", p[5]: "bounced", p[6]: "complained", p[8]: "unsubscribed"})
    assert after["statuses"] == expected
    assert s.soft_bounces() == {p[1]: 1, p[2]: 1}  # counted in the window, still active
    assert after["suppressed"] == 5
    store = s.project.store()
    secret = store.keys.data_key()
    for address in people:
        assert is_suppressed(store, address, secret) == (address in {p[0], p[3], p[4], p[5], p[6]}), address
    store.close()
    for quiet in (p[7], p[9], p[10], p[11]):  # the auto-reply and the forged tokens changed nothing
        assert s.events_of(quiet) == [], quiet
    assert s.events_of(p[8]) == [("unsubscribe", None)]

    # every message moved, read; nothing left, nothing deleted
    assert s.folder("INBOX") == []
    processed = s.folder("processed")
    assert len(processed) == 11 and all("\\Seen" in flags for _, flags in processed)

    # the report counts them like SES feedback
    assert s.report_totals() == {"hard_bounces": 4, "soft_bounces": 2, "complaints": 1, "unsubscribes": 1, "sent": 12}

    # a second run: nothing to do, nothing changes
    again = ok(s.mailbox())
    assert "0 messages in INBOX" in again.stdout and "0 moved to processed" in again.stdout
    assert s.snapshot() == after

    # the same mail once more (stored, then not moved, say): nothing is counted twice
    s.copy_back()
    third = ok(s.mailbox())
    assert "8 already processed" in third.stdout and "0 bounced, 0 complained, 0 unsubscribed" in third.stdout, third.stdout
    assert s.snapshot() == after
    assert s.folder("INBOX") == [] and len(s.folder("processed")) == 22


def test_store_failure_in_the_middle_of_a_batch(setup_for, store_url):
    s = setup_for(store_url)
    people = s.send_to(6)
    envelope, _, head = verp_of_each_message(s, people)
    s.deliver(*(samples.dsn(envelope[a], a, "5.1.1", "550 5.1.1 User unknown", head[a]) for a in people))
    store = s.project.store()
    with store.db.engine.begin() as conn:  # from the fourth message on, the database refuses to write
        if store.db.engine.dialect.name == "sqlite":
            conn.execute(text(
                "CREATE TRIGGER fail_after_three BEFORE INSERT ON processed_messages "
                "WHEN (SELECT count(*) FROM processed_messages) >= 3 "
                "BEGIN SELECT RAISE(ABORT, 'disk I/O error (the test''s)'); END"
            ))
        else:
            conn.execute(text(
                "CREATE FUNCTION fail_after_three() RETURNS trigger AS $$ BEGIN "
                "IF (SELECT count(*) FROM processed_messages) >= 3 THEN "
                "RAISE EXCEPTION 'disk I/O error (the test''s)'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            ))
            conn.execute(text(
                "CREATE TRIGGER fail_after_three BEFORE INSERT ON processed_messages "
                "FOR EACH ROW EXECUTE FUNCTION fail_after_three()"
            ))
    store.close()

    first = s.mailbox()
    assert first.returncode == 1, first.stdout + first.stderr
    assert "Traceback" not in first.stderr
    assert "not stored, left unread for the next run" in first.stderr and "disk I/O error" in first.stderr
    assert "3 bounced" in first.stdout and "1 not stored (left unread); 3 moved to processed" in first.stdout
    left = s.folder("INBOX")
    assert len(left) == 3 and all("\\Seen" not in flags for _, flags in left)
    assert len(s.folder("processed")) == 3
    statuses = s.snapshot()["statuses"]
    assert sorted(statuses.values()) == ["active"] * 3 + ["bounced"] * 3

    store = s.project.store()
    with store.db.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER fail_after_three" + ("" if store.db.engine.dialect.name == "sqlite" else " ON processed_messages")))
    store.close()
    s.copy_back(1)  # one that was stored comes again: it counts once

    second = ok(s.mailbox())
    assert "3 bounced" in second.stdout and "1 already processed" in second.stdout, second.stdout
    assert s.folder("INBOX") == []
    after = s.snapshot()
    assert set(after["statuses"].values()) == {"bounced"}
    assert after["events"] == 6
    for address in people:
        assert s.events_of(address) == [("bounce", "Permanent")], address
    assert s.report_totals()["hard_bounces"] == 6


def test_mailbox_unreachable_or_refused_changes_nothing(setup_for):
    s = setup_for()
    people = s.send_to(2)
    envelope, _, head = verp_of_each_message(s, people)
    s.deliver(samples.dsn(envelope[people[0]], people[0], "5.1.1", "550 5.1.1 User unknown", head[people[0]]))
    before = s.snapshot()

    def refused(result: subprocess.CompletedProcess, status: int, *needles: str) -> None:
        assert result.returncode == status, result.stdout + result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
        for needle in needles:
            assert needle in result.stderr, result.stderr
        assert s.snapshot() == before
        inbox = s.folder("INBOX")
        assert len(inbox) == 1 and "\\Seen" not in inbox[0][1]

    refused(s.mailbox(NEWSLETTER_MAILBOX_PASSWORD="wrong"), 1, f"refused the login for '{s.user}'", "AUTHENTICATIONFAILED")
    refused(s.mailbox(NEWSLETTER_MAILBOX_PASSWORD=None), 2, "NEWSLETTER_MAILBOX_PASSWORD: not set")
    refused(s.mailbox(SSL_CERT_FILE=None), 1, "cannot connect securely (tls)", "certificate verify failed")
    s.reconfigure(port=free_port())
    refused(s.mailbox(), 1, "cannot connect securely (tls)", "Connection refused")
    s.reconfigure(mailbox=False)
    refused(s.mailbox(), 2, "[mailbox]: missing")

    s.reconfigure(security="starttls")  # and over STARTTLS, once it can be reached
    logins = len(s.imap.logins(s.user))
    result = ok(s.mailbox())
    # (the test's own last look at INBOX may be logged only now: every new login must be over TLS)
    new = s.imap.logins(s.user)[logins:]
    assert new and all(", TLS," in login for login in new), new  # upgraded before the password went over
    assert "1 bounced" in result.stdout and "1 moved to processed" in result.stdout
    assert s.snapshot()["statuses"] == {people[0]: "bounced", people[1]: "active"}


def test_mailbox_keeps_polling_until_asked_to_stop(setup_for):
    s = setup_for()
    people = s.send_to(2)
    _, mailto, _ = verp_of_each_message(s, people)
    s.reconfigure(interval=0.2)
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "feedback", "mailbox", "--config", str(s.project.config_path)],
        cwd=s.project.root, env=s.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(0.5)
        s.deliver(samples.unsubscribe_mail(mailto[people[1]], people[1]))
        deadline = time.monotonic() + 30
        while s.count("INBOX") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert s.count("INBOX") == 0 and s.count("processed") == 1
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, out + err
    assert "Traceback" not in err and "stopping" in err
    assert "1 unsubscribed" in out
    assert s.snapshot()["statuses"] == {people[0]: "active", people[1]: "unsubscribed"}


def test_without_our_token_a_real_message_id_changes_nobody_and_a_huge_bounce_is_read_in_part(setup_for):
    """A bounce sent to the plain bounce address (a server that dropped the tag, or a forger
    holding a reply to the letter) quotes a real Message-ID and its own person's address: it is
    counted, and nobody changes. A genuine bounce returning a 3 MB copy of the letter is fetched
    in part (its first megabyte) and acted on."""
    s = setup_for()
    people = s.send_to(3)
    envelope, _, head = verp_of_each_message(s, people)
    letter = head[people[1]] + "\r\n" + ("The letter, with its images. " * 40 + "\r\n") * 2_800
    huge = samples.dsn(envelope[people[1]], people[1], "5.1.1", "550 5.1.1 User unknown", head[people[1]]).replace(
        b"Content-Type: text/rfc822-headers\r\n\r\n" + head[people[1]].encode(),
        b"Content-Type: message/rfc822\r\n\r\n" + letter.encode(),
    )
    assert len(huge) > 3 * 2**20
    s.deliver(
        samples.dsn(BOUNCES, people[0], "5.1.1", "550 5.1.1 User unknown", head[people[0]]),
        samples.exim(BOUNCES, people[2], head[people[2]]),
        huge,
    )
    result = ok(s.mailbox())
    assert "3 messages in INBOX: 1 bounces (1 hard, 0 soft, 0 for our sending or our letter)" in result.stdout, result.stdout
    assert "2 without our token (counted, not acted on)" in result.stdout, result.stdout
    assert "1 message over 1,048,576 bytes (only the first 1,048,576 read)" in result.stdout, result.stdout
    assert "1 bounced, 0 complained, 0 unsubscribed; 0 not matched to a delivery" in result.stdout, result.stdout
    assert "3 moved to processed" in result.stdout
    assert result.stderr.count("without a token of ours: counted, nothing changed") == 2, result.stderr
    after = s.snapshot()
    assert after["statuses"] == {people[0]: "active", people[1]: "bounced", people[2]: "active"}
    assert after["events"] == 1 and after["suppressed"] == 1
    assert s.events_of(people[0]) == [] and s.events_of(people[2]) == []
    # the whole message stays in the mailbox, moved as it came
    assert sorted(len(raw) for raw, _ in s.folder("processed"))[-1] >= len(huge)


def test_the_feedback_mailbox_command_is_listed():
    env = {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET}
    out = subprocess.run([sys.executable, "-m", "newsletter", "feedback", "--help"], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and "mailbox" in out.stdout


def test_without_move_a_message_is_copied_and_flagged_never_deleted(imap, monkeypatch):
    """A server without MOVE: the message is copied to the processed folder and flagged
    \\Deleted in INBOX, where it stays for its owner to expunge; later rounds skip it."""
    from newsletter.config.mail import MailboxSettings
    from newsletter.feedback.mailbox import Mailbox

    monkeypatch.setenv("SSL_CERT_FILE", str(imap.ca))
    user, password = imap.add_user()
    conn = imap.client(user, password)
    conn.append("INBOX", None, None, samples.read_receipt(BOUNCES, "reader@example.org"))
    conn.logout()
    box = Mailbox(MailboxSettings("127.0.0.1", user, imap.tls_port, "tls", processed_folder="Done"), password)
    try:
        assert box.can_move
        box.can_move = False
        (uid,) = box.uids()
        raw, size = box.fetch(uid)
        assert b"Read: Civil Society" in raw and size == len(raw)
        box.move(uid)
        assert box.uids() == []
    finally:
        box.close()
    conn = imap.client(user, password)
    try:
        assert conn.select("INBOX", readonly=True)[1] == [b"1"]
        _, flags = conn.uid("FETCH", uid, "(FLAGS)")
        assert b"\\Deleted" in flags[0] and b"\\Seen" in flags[0]
        assert conn.select('"Done"', readonly=True)[1] == [b"1"]
    finally:
        conn.logout()
