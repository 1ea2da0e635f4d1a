"""What a bounce's reason does to the list, against the real store (the four-campaign world of
tests/test_feedback_store.py): hard reasons suppress at once, soft ones count toward the
soft-bounce window, and reasons about our sending or our letter suppress nobody, count against
nobody and are reported per campaign as a deliverability problem with what to check
(`campaign show`, `report`). The reason is stored for every channel, SES and the mailbox alike,
and a database of the previous schema gets the column with its old bounces left as they were."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from sqlalchemy import insert, select

import bounce_samples
from newsletter import domain as d
from newsletter.feedback.mailbox import MailboxStats
from newsletter.store import database
from newsletter.store import tables as s
from test_feedback_store import ISSUES, KEY, World, head, mail_poller, run, template, verp, world  # noqa: F401 - fixtures

SENDER_REFUSED = "553 5.1.8 <bounces@news.cssrweb.org>: Sender address rejected: Domain not found"
UNAUTHENTICATED = (
    "550 5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders "
    "to authenticate with either SPF or DKIM."
)
NO_PTR = "550 5.7.25 The IP address sending this message does not have a PTR record setup"


@pytest.fixture
def mailbox(world):
    """Hands a DSN for a person's delivery of a campaign to the mailbox poller, through its token."""
    poller, said = mail_poller(world)

    def bounce(slug: str, person: str, status: str, diagnostic: str, stats: MailboxStats | None = None):
        delivery = world.delivery(slug, person)
        raw = bounce_samples.dsn(verp(delivery), person, status, diagnostic, head(delivery))
        stats = stats or MailboxStats()
        assert poller.handle(f"{slug}/{person}", raw, stats), said
        return stats

    return bounce


def stored_reasons(world: World) -> list[tuple[str | None, str | None]]:
    return [(e["reason"], e["bounce_type"]) for e in world.events() if e["kind"] == "bounce"]


def test_a_campaign_refused_for_our_sending_suppresses_nobody_and_says_what_to_check(world, mailbox):
    stats = MailboxStats()
    for n, person in enumerate(world.people):
        refusal = [("5.1.8", SENDER_REFUSED), ("5.7.26", UNAUTHENTICATED), ("5.7.25", NO_PTR)][n % 3]
        mailbox("issue-a", person, *refusal, stats=stats)
    assert (stats.kinds["bounce"], stats.bounced, stats.hard, stats.soft, stats.ours) == (6, 0, 0, 0, 6)
    assert all(world.status(p) == d.ACTIVE and not world.suppressed(p) for p in world.people)
    assert world.counts()["suppressions"] == 0
    assert sorted(r for r, _ in stored_reasons(world)) == ["authentication"] * 4 + ["sender-rejected"] * 2

    rows = world.store.reports.campaigns(world.campaigns["issue-a"])
    assert [(r["hard_bounces"], r["soft_bounces"], r["our_problems"]) for r in rows] == [(0, 0, 3), (0, 0, 3)]
    shown = run(world.project, "campaign", "show", str(world.campaigns["issue-a"]))
    assert shown.exit_code == 0, shown.output
    print(shown.output)
    assert "bounces by reason: authentication 4, sender-rejected 2" in shown.output, shown.output
    assert "deliverability problem: 6 bounced because of our sending or our letter" in shown.output
    assert "nobody was suppressed for them" in shown.output
    for what in ("authentication 4: receiving servers could not verify", "sender-rejected 2: receiving servers refused our sender address"):
        assert what in shown.output, shown.output
    for check in ("SPF", "DKIM", "DMARC", "PTR", "reputation"):
        assert check in shown.output, check
    report = run(world.project, "report", "issue-a")
    assert report.exit_code == 0, report.output
    print(report.output)
    assert report.output.splitlines()[0].split()[-4:] == ["soft", "ours", "complaints", "unsubscribed"]
    said = "a deliverability problem of ours, nobody suppressed for it: authentication 4, sender-rejected 2"
    assert f"campaign {world.campaigns['issue-a']} (issue-a): {said}" in report.output, report.output


def test_refusals_of_our_sending_never_count_toward_the_soft_bounce_window(world, mailbox):
    person = world.people[0]
    for n, slug in enumerate(ISSUES[:3]):  # three campaigns within 90 days: would suppress a soft bouncer
        world.day(n * 10)
        mailbox(slug, person, "5.7.26", UNAUTHENTICATED)
    assert world.status(person) == d.ACTIVE and not world.suppressed(person)
    # a full mailbox counts: three campaigns of it do suppress, the refusals above not among them
    for n, slug in enumerate(ISSUES[:3]):
        world.day(40 + n * 10)
        mailbox(slug, person, "5.2.2", "552 5.2.2 Mailbox full")
        assert (world.status(person) == d.BOUNCED) == (n == 2), n
    assert stored_reasons(world).count(("mailbox-full", "Transient")) == 3


def test_hard_reasons_suppress_at_once_and_a_5_alone_never_does(world, mailbox):
    gone, odd = world.people[1], world.people[2]
    mailbox("issue-b", gone, "5.0.0", "550-5.1.1 The email account that you tried to reach does not exist.")
    mailbox("issue-b", odd, "5.0.0", "550 Requested action aborted: error in processing")
    assert world.status(gone) == d.BOUNCED and world.suppressed(gone)
    assert world.status(odd) == d.ACTIVE and not world.suppressed(odd)
    assert stored_reasons(world) == [("user-unknown", "Permanent"), ("undetermined", "Undetermined")]


@pytest.mark.parametrize(
    ("bounce_type", "subtype", "diagnostic", "reason", "suppressed"),
    [
        ("Permanent", "General", "smtp; 550 5.1.1 user unknown", "user-unknown", True),
        ("Permanent", "NoEmail", None, "user-unknown", True),
        # SES's type is SES's own, but a refusal of our authentication suppresses nobody on any channel
        ("Permanent", "General", f"smtp; {UNAUTHENTICATED}", "authentication", False),
        ("Transient", "MailboxFull", "smtp; 552 5.2.2 Mailbox full", "mailbox-full", False),
        ("Transient", "ContentRejected", "smtp; 554 5.7.1 Message rejected as spam", "content-rejected", False),
    ],
)
def test_ses_bounces_carry_the_same_reasons(world, bounce_type, subtype, diagnostic, reason, suppressed):
    person = world.people[3]
    message = world.message("ses_notification_bounce_permanent_with_dsn.json", "issue-c", person)
    message["bounce"].update(bounceType=bounce_type, bounceSubType=subtype)
    if diagnostic is None:
        message["bounce"]["bouncedRecipients"][0].pop("diagnosticCode", None)
    else:
        message["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = diagnostic
    world.apply(message)
    assert stored_reasons(world) == [(reason, bounce_type)]
    assert world.suppressed(person) == suppressed and (world.status(person) == d.BOUNCED) == suppressed
    row = next(r for r in world.store.reports.campaigns(world.campaigns["issue-c"]) if r["our_problems"] or r["hard_bounces"] or r["soft_bounces"])
    assert row["our_problems"] == (reason in ("authentication", "content-rejected"))


def test_an_older_database_gets_the_column_and_its_bounces_count_as_before(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = database.make_engine(url)
    config = database._config()
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0008")
        old = dict(event_key="old", kind="bounce", source="sns", bounce_type="Transient", occurred_at=now, received_at=now)
        conn.execute(insert(s.feedback_events).values(**old))  # only the columns 0008 has
    assert database.upgrade(engine).current == database.head()
    with engine.connect() as conn:
        assert conn.execute(select(s.feedback_events.c.reason, s.feedback_events.c.bounce_type)).all() == [(None, "Transient")]
    engine.dispose()
