"""What SES feedback and the bounce mailbox's messages do to the list, against the real store
(a SQLite file) and real payloads.

Deliveries are made by `newsletter send --provider outbox`, once per issue: the year-end
issue copied under four names gives four campaigns to the same six people. Feedback events
come from newsletter.feedback.parse_ses_message on the SES fixtures in
tests/fixtures/ses/, pointed at our deliveries (mail.messageId = the delivery's
provider message id, the recipient = the subscriber's address). The store's clock is
controlled by the test, and every event happens "now" on that clock.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

import bounce_samples
from ses_samples import ses_message
from conftest import SECRET, Project
from newsletter import domain as d
from newsletter.store import tables as s
from newsletter.cli import cli
from newsletter.feedback.ses_events import parse_ses_message
from newsletter.domain import NewSubscriber
from newsletter.feedback.bounces import RECIPIENT_LIMIT, MailEvent
from newsletter.feedback.mailbox import MailboxStats, Poller
from newsletter.feedback.policy import FeedbackPolicy
from newsletter.keys import DeliveryTokens, tagged
from newsletter.store import Store
from store_helpers import is_suppressed

LIST = "readers"
ISSUES = ("issue-a", "issue-b", "issue-c", "issue-d")  # one campaign each, in this order
PEOPLE = 6
KEY = SECRET.encode()
START = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
POLICY = FeedbackPolicy()


def run(project: Project, *args: str):
    return CliRunner().invoke(cli, [*args, "--config", str(project.config_path)], env=project.env, catch_exceptions=False)


@dataclass(frozen=True)
class Delivery:
    id: int
    campaign_id: int
    message_id: str
    email: str
    language: str
    subscriber_id: int


# --- the ledger: four campaigns to six people, made once per module --------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("feedback-template") / "project"
    project = Project(root, "[send]\nrate = 500\nthreads = 2\n")
    result = run(project, "subscribers", "import", str(project.write_subscribers(PEOPLE)), "--list", LIST)
    assert f"{LIST}: {PEOPLE} added" in result.output, result.output
    for slug in ISSUES:
        shutil.copytree(project.issue, root / "issues" / slug)
        result = run(project, "send", str(root / "issues" / slug), "--list", LIST, "--provider", "outbox", "--yes")
        assert result.exit_code == 0, result.output
        assert f"sent {PEOPLE}, failed 0" in result.output, result.output
    project.store().close()
    return root


class World:
    """A copy of the template project, its store on a clock the test moves."""

    def __init__(self, root: Path):
        self.project = Project(root)
        self.current = [START]
        self.store = Store.open(self.project.config().store_url, now=lambda: self.current[0])
        self.campaigns = {c.slug: c.id for c in self.store.campaigns.all()}
        assert sorted(self.campaigns) == sorted(ISSUES)
        with self.store.db.engine.connect() as conn:
            rows = conn.execute(
                select(
                    s.deliveries.c.id, s.deliveries.c.campaign_id, s.deliveries.c.provider_message_id,
                    s.subscribers.c.email, s.deliveries.c.language, s.subscribers.c.id,
                )
                .select_from(s.deliveries.join(s.subscribers, s.deliveries.c.subscriber_id == s.subscribers.c.id))
                .where(s.deliveries.c.state == d.SENT)
            ).all()
        self.deliveries = {(row[1], row[3]): Delivery(*row) for row in rows}
        self.people = sorted({email for _, email in self.deliveries})
        assert len(self.people) == PEOPLE and len(self.deliveries) == PEOPLE * len(ISSUES)
        assert len({d.message_id for d in self.deliveries.values()}) == len(self.deliveries)

    @property
    def now(self) -> dt.datetime:
        return self.current[0]

    def day(self, n: float) -> dt.datetime:
        self.current[0] = START + dt.timedelta(days=n)
        return self.current[0]

    def delivery(self, slug: str, email: str) -> Delivery:
        return self.deliveries[(self.campaigns[slug], email)]

    def message(self, sample: str, slug: str, email: str, *, recipient: str | None = None, **changes) -> dict:
        return ses_message(sample, self.delivery(slug, email).message_id, recipient or email, self.now, **changes)

    def apply(self, *messages: dict, key: str | None = None, policy: FeedbackPolicy = POLICY):
        events = [event for message in messages for event in parse_ses_message(json.dumps(message))]
        assert events
        return self.store.feedback.apply_feedback(
            events, message_key=key if key is not None else f"sns:{uuid.uuid4()}", source="sns", policy=policy, secret=KEY
        )

    def status(self, email: str) -> str:
        subscriber = self.store.subscribers.by_email(email)
        assert subscriber is not None
        return subscriber.status

    def suppressed(self, email: str) -> bool:
        return is_suppressed(self.store, email, KEY)

    def events(self) -> list[dict]:
        with self.store.db.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(select(s.feedback_events).order_by(s.feedback_events.c.id))]

    def counts(self) -> dict[str, int]:
        with self.store.db.engine.connect() as conn:
            return {
                table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (s.feedback_events, s.processed_messages, s.suppressions)
            }


@pytest.fixture
def world(template: Path, tmp_path: Path) -> World:
    root = tmp_path / "project"
    shutil.copytree(template, root, symlinks=True)
    w = World(root)
    yield w
    w.store.close()


def soft(world: World, slug: str, email: str, bounce_type: str = "Transient", **kw):
    """A soft bounce (the permanent fixture with its type changed, as the fixtures' README says)."""
    sub_type = "MailboxFull" if bounce_type == "Transient" else "General"
    message = world.message(
        "ses_notification_bounce_permanent_with_dsn.json", slug, email, bounceType=bounce_type, bounceSubType=sub_type
    )
    return world.apply(message, **kw)


# --- permanent bounces ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sample",
    ["ses_notification_bounce_permanent_with_dsn.json", "ses_notification_bounce_permanent_no_dsn.json", "ses_event_bounce.json"],
)
def test_permanent_bounce_bounces_suppresses_and_import_does_not_bring_back(world, sample):
    person, other = world.people[1], world.people[2]
    outcome = world.apply(world.message(sample, "issue-a", person))
    assert (outcome.recorded, outcome.bounced, outcome.unknown, outcome.duplicates) == (1, 1, 0, 0)
    assert world.status(person) == d.BOUNCED
    assert world.suppressed(person)
    assert world.status(other) == d.ACTIVE and not world.suppressed(other)

    # importing the address again, even spelled differently, adds nobody and changes nothing
    result = world.store.subscribers.import_rows(
        [NewSubscriber(person.upper(), "Back again", "en"), NewSubscriber(other, "Other", "ar")], LIST, KEY
    )
    assert result.suppressed == 1 and result.updated == 1 and result.added == 0, result
    assert world.status(person) == d.BOUNCED
    assert [sub.email for sub in world.store.subscribers.all(LIST, d.ACTIVE)] == [p for p in world.people if p != person]

    # the CLI import (what the team runs) keeps them out as well
    csv = world.project.root / "again.csv"
    csv.write_text(f"email,name,language\n{person},Again,en\n", encoding="utf-8")
    result = run(world.project, "subscribers", "import", str(csv), "--list", "another-list")
    assert result.exit_code == 0, result.output
    assert "1 not added back (suppressed)" in result.output, result.output
    assert world.status(person) == d.BOUNCED
    assert [sub.email for sub in world.store.subscribers.all("another-list")] == []


# --- soft bounces -----------------------------------------------------------------------------


@pytest.mark.parametrize("types", [("Transient",) * 3, ("Undetermined",) * 3, ("Transient", "Undetermined", "Transient")])
def test_soft_bounces_in_three_campaigns_within_90_days_bounce(world, types):
    person = world.people[0]
    for n, (slug, bounce_type) in enumerate(zip(ISSUES, types)):
        world.day(n * 40)  # days 0, 40, 80: all three within 90 days of the last
        outcome = soft(world, slug, person, bounce_type)
        assert outcome.recorded == 1 and outcome.unknown == 0
        if n < 2:  # one, then two campaigns: still mailed
            assert outcome.bounced == 0
            assert world.status(person) == d.ACTIVE and not world.suppressed(person)
    assert outcome.bounced == 1
    assert world.status(person) == d.BOUNCED
    assert world.suppressed(person)
    assert all(world.status(p) == d.ACTIVE for p in world.people if p != person)


def test_soft_bounces_in_the_same_campaign_do_not_bounce(world):
    person = world.people[3]
    for n in range(5):  # five different soft bounces, one campaign
        world.day(n)
        outcome = soft(world, "issue-b", person, ("Transient", "Undetermined")[n % 2])
        assert (outcome.recorded, outcome.bounced, outcome.duplicates) == (1, 0, 0)
    assert world.status(person) == d.ACTIVE and not world.suppressed(person)
    assert sum(1 for e in world.events() if e["kind"] == "bounce") == 5

    # a second campaign makes two: still active
    soft(world, "issue-c", person)
    assert world.status(person) == d.ACTIVE and not world.suppressed(person)


def test_soft_bounce_older_than_90_days_stops_counting(world):
    person = world.people[4]
    world.day(0)
    soft(world, "issue-a", person)
    world.day(50)
    soft(world, "issue-b", person)
    world.day(95)  # the day-0 bounce is now 95 days old: two count
    outcome = soft(world, "issue-c", person)
    assert outcome.bounced == 0
    assert world.status(person) == d.ACTIVE and not world.suppressed(person)
    world.day(100)  # days 50, 95 and 100: three campaigns within 90 days
    outcome = soft(world, "issue-d", person)
    assert outcome.bounced == 1
    assert world.status(person) == d.BOUNCED and world.suppressed(person)


def test_soft_bounce_limit_and_days_are_configurable(world):
    policy = FeedbackPolicy(soft_bounce_limit=2, soft_bounce_days=30)
    first, second = world.people[0], world.people[1]
    # two campaigns within 30 days: enough under this policy (the default needs three)
    world.day(0)
    soft(world, "issue-a", first, policy=policy)
    world.day(29)
    assert soft(world, "issue-b", first, policy=policy).bounced == 1
    assert world.status(first) == d.BOUNCED and world.suppressed(first)
    # 31 days apart: the first no longer counts; a third, 9 days after the second, does it
    world.day(40)
    soft(world, "issue-a", second, policy=policy)
    world.day(71)
    assert soft(world, "issue-b", second, policy=policy).bounced == 0
    assert world.status(second) == d.ACTIVE and not world.suppressed(second)
    world.day(80)
    assert soft(world, "issue-c", second, policy=policy).bounced == 1
    assert world.status(second) == d.BOUNCED and world.suppressed(second)


def test_default_policy_needs_three_campaigns(world):
    """The same two bounces as above, under the default policy: nobody bounced."""
    person = world.people[0]
    world.day(0)
    soft(world, "issue-a", person)
    world.day(29)
    assert soft(world, "issue-b", person).bounced == 0
    assert world.status(person) == d.ACTIVE


# --- complaints -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sample",
    [
        "ses_notification_complaint_abuse_with_feedback.json",  # complaintFeedbackType: abuse
        "ses_notification_complaint_no_feedback.json",  # no feedback report, no type
        "ses_event_complaint.json",
    ],
)
def test_complaint_stops_mail_to_the_person(world, sample):
    person = world.people[2]
    message = world.message(sample, "issue-a", person)
    outcome = world.apply(message)
    assert (outcome.recorded, outcome.complained, outcome.bounced) == (1, 1, 0)
    # the code marks the person "complained" (not "unsubscribed"), and suppresses the address
    assert world.status(person) == d.COMPLAINED
    assert world.suppressed(person)
    # no later campaign includes them
    shutil.copytree(world.project.issue, world.project.root / "issues" / "issue-e")
    result = run(world.project, "send", str(world.project.root / "issues" / "issue-e"), "--list", LIST, "--yes", "--provider", "outbox")
    assert result.exit_code == 0, result.output
    assert f"sent {PEOPLE - 1}, failed 0" in result.output, result.output
    cid = next(c.id for c in world.store.campaigns.all() if c.slug == "issue-e")
    with world.store.db.engine.connect() as conn:
        mailed = conn.execute(select(s.deliveries.c.subscriber_id).where(s.deliveries.c.campaign_id == cid)).scalars().all()
    assert world.delivery("issue-a", person).subscriber_id not in mailed and len(mailed) == PEOPLE - 1


def test_complaint_after_unsubscribing_still_suppresses(world):
    person = world.people[3]
    subscriber = world.store.subscribers.by_email(person)
    world.store.feedback.unsubscribe(subscriber.token_key, world.campaigns["issue-a"])
    assert world.status(person) == d.UNSUBSCRIBED
    world.apply(world.message("ses_event_complaint.json", "issue-a", person))
    assert world.status(person) == d.COMPLAINED and world.suppressed(person)


def test_not_spam_complaint_changes_nothing(world):
    person = world.people[2]
    before = world.counts()
    message = world.message(
        "ses_notification_complaint_abuse_with_feedback.json", "issue-a", person, complaintFeedbackType="not-spam"
    )
    outcome = world.apply(message)
    assert (outcome.recorded, outcome.complained, outcome.bounced, outcome.unknown) == (1, 0, 0, 0)
    assert world.status(person) == d.ACTIVE and not world.suppressed(person)
    assert world.counts()["suppressions"] == before["suppressions"]
    (event,) = world.events()
    assert event["kind"] == "complaint" and event["complaint_type"] == "not-spam"
    assert all(row["complaints"] == 0 for row in world.store.reports.campaigns())


# --- events that change nothing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "kind"),
    [
        ("ses_notification_delivery.json", "delivery"),
        ("ses_event_delivery.json", "delivery"),
        ("ses_event_send.json", "send"),
        ("ses_event_delivery_delay.json", "delivery_delay"),
        ("ses_event_reject.json", "reject"),
    ],
)
def test_informational_events_are_recorded_against_the_delivery(world, sample, kind):
    person = world.people[5]
    delivery = world.delivery("issue-c", person)
    outcome = world.apply(world.message(sample, "issue-c", person))
    assert (outcome.recorded, outcome.unknown, outcome.bounced, outcome.complained) == (1, 0, 0, 0)
    (event,) = world.events()
    assert event["kind"] == kind
    assert event["delivery_id"] == delivery.id
    assert event["campaign_id"] == delivery.campaign_id == world.campaigns["issue-c"]
    assert event["subscriber_id"] == delivery.subscriber_id
    assert event["ses_message_id"] == delivery.message_id
    assert event["occurred_at"].replace(tzinfo=dt.timezone.utc) == world.now
    assert [world.status(p) for p in world.people] == [d.ACTIVE] * PEOPLE
    assert world.counts()["suppressions"] == 0
    row = next(r for r in world.store.reports.campaigns(world.campaigns["issue-c"]) if r["language"] == delivery.language)
    assert (row["hard_bounces"], row["soft_bounces"], row["complaints"]) == (0, 0, 0)


# --- matching ---------------------------------------------------------------------------------


def test_recipient_is_matched_case_insensitively(world):
    person = world.people[1]
    shouted = person.upper()
    assert shouted != person
    outcome = world.apply(world.message("ses_event_bounce.json", "issue-b", person, recipient=shouted))
    assert (outcome.bounced, outcome.unknown) == (1, 0)
    assert world.status(person) == d.BOUNCED and world.suppressed(person)
    (event,) = world.events()
    assert event["subscriber_id"] == world.delivery("issue-b", person).subscriber_id


def test_unknown_recipient_or_message_id_changes_nothing(world):
    a, b = world.people[0], world.people[1]
    stranger = "someone.else@elsewhere.example"
    hard = "ses_notification_bounce_permanent_with_dsn.json"
    messages = [
        # A's message, but the bounce names B: B was never sent that message
        world.message(hard, "issue-a", a, recipient=b),
        # A's message, naming a stranger
        world.message("ses_event_complaint.json", "issue-a", a, recipient=stranger),
        # a message we never sent, naming A (correct address, unknown message id)
        ses_message(hard, "0000000000000000-unknown-0000-0000-000000000000-000000", a, world.now),
    ]
    report = world.store.reports.campaigns()
    for message in messages:
        outcome = world.apply(message)
        assert (outcome.recorded, outcome.unknown, outcome.bounced, outcome.complained) == (1, 1, 0, 0)
    assert [world.status(p) for p in world.people] == [d.ACTIVE] * PEOPLE
    assert not any(world.suppressed(p) for p in (a, b, stranger))
    events = world.events()
    assert len(events) == 3
    assert all(e["subscriber_id"] is None for e in events)
    assert all(e["delivery_id"] is None and e["campaign_id"] is None for e in events)
    assert [e["ses_message_id"] for e in events[:2]] == [world.delivery("issue-a", a).message_id] * 2
    # nobody we mailed bounced or complained: the campaign's numbers stay as they were
    assert world.store.reports.campaigns() == report


def test_feedback_for_a_forgotten_person_still_counts_anonymously(world):
    person = world.people[2]
    delivery = world.delivery("issue-d", person)
    assert world.store.subscribers.forget(person, KEY)
    outcome = world.apply(world.message("ses_event_bounce.json", "issue-d", person))
    assert (outcome.recorded, outcome.unknown, outcome.bounced) == (1, 1, 0)
    (event,) = world.events()
    assert (event["delivery_id"], event["campaign_id"], event["subscriber_id"]) == (delivery.id, delivery.campaign_id, None)
    row = next(r for r in world.store.reports.campaigns(delivery.campaign_id) if r["language"] == delivery.language)
    assert row["hard_bounces"] == 1
    assert world.store.subscribers.by_email(person) is None and world.suppressed(person)


# --- idempotency ------------------------------------------------------------------------------


def test_the_same_feedback_twice_changes_nothing(world):
    a, b, c = world.people[0], world.people[1], world.people[2]
    messages = [
        world.message("ses_notification_bounce_permanent_with_dsn.json", "issue-a", a),
        world.message("ses_notification_complaint_abuse_with_feedback.json", "issue-a", b),
        world.message("ses_notification_delivery.json", "issue-a", c),
        world.message("ses_event_bounce.json", "issue-b", c, bounceType="Transient", bounceSubType="General"),
    ]
    first = world.apply(*messages, key="sns:first")
    assert (first.recorded, first.bounced, first.complained, first.duplicates) == (4, 1, 1, 0)
    statuses = {p: world.status(p) for p in world.people}
    assert (statuses[a], statuses[b], statuses[c]) == (d.BOUNCED, d.COMPLAINED, d.ACTIVE)
    events, counts, report = world.events(), world.counts(), world.store.reports.campaigns()

    world.day(1)
    # the same SNS message delivered again
    again = world.apply(*messages, key="sns:first")
    assert again.repeated_message and again.duplicates == 4
    assert (again.recorded, again.bounced, again.complained) == (0, 0, 0)
    # the same events in another SNS message (a second topic, a republish, the HTTP and SQS paths)
    other = world.apply(*messages, key="sns:second")
    assert not other.repeated_message
    assert (other.recorded, other.duplicates, other.bounced, other.complained, other.unknown) == (0, 4, 0, 0, 0)
    # and without any message key
    none = world.store.feedback.apply_feedback(
        [e for m in messages for e in parse_ses_message(m)], message_key=None, source="sqs", policy=POLICY, secret=KEY
    )
    assert (none.recorded, none.duplicates) == (0, 4)

    assert world.events() == events
    assert world.counts() == {**counts, "processed_messages": counts["processed_messages"] + 1}
    assert {p: world.status(p) for p in world.people} == statuses
    assert world.store.reports.campaigns() == report


# --- no addresses kept ------------------------------------------------------------------------


def test_stored_feedback_keeps_no_address(world):
    a, b = world.people[0], world.people[1]
    stranger = "Someone.Else@Elsewhere.example"
    diagnostic = f"smtp; 550 5.1.1 <{a.upper()}>: Recipient address rejected; RCPT TO:{a} user unknown"
    world.apply(world.message("ses_event_bounce.json", "issue-a", a, recipient=a.upper()))
    hard = world.message("ses_notification_bounce_permanent_with_dsn.json", "issue-b", a)
    hard["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = diagnostic
    world.apply(hard)
    world.apply(world.message("ses_notification_bounce_permanent_with_dsn.json", "issue-a", b, recipient=stranger))
    delivery = world.message("ses_notification_delivery.json", "issue-c", b)
    delivery["delivery"]["smtpResponse"] = f"250 2.0.0 OK <{b}> accepted"
    world.apply(delivery)

    events = world.events()
    assert len(events) == 4
    details = [e["detail"] for e in events]
    assert all(d and "550 5.1.1" in d for d in details[:3]), details
    assert "250 2.0.0 OK" in details[3]
    local_parts = [address.split("@")[0].lower() for address in (*world.people, stranger)]
    for event in events:
        for column, value in event.items():
            if isinstance(value, str) and column != "ses_message_id":  # the outbox's ids are Message-IDs
                assert "@" not in value, (column, value)
                assert not any(part in value.lower() for part in local_parts), (column, value)
    # nowhere in the database: the stranger is not a subscriber, so their address must not be kept at all
    world.store.close()
    db = Path(world.project.config().store_url.removeprefix("sqlite:///"))
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(FULL)")
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                assert not any(isinstance(v, str) and "elsewhere.example" in v.lower() for v in row), (table, row)
    world.store = Store.open(world.project.config().store_url, now=lambda: world.current[0])


# --- the report ------------------------------------------------------------------------------


def test_report_counts_per_campaign_and_language(world):
    by_language: dict[str, list[str]] = {}
    for person in world.people:
        by_language.setdefault(world.delivery("issue-a", person).language, []).append(person)
    assert sorted(by_language) == ["ar", "en"] and all(len(v) == 3 for v in by_language.values())
    ar, en = by_language["ar"], by_language["en"]
    hard = "ses_notification_bounce_permanent_with_dsn.json"

    world.apply(
        # issue-a, ar: 2 hard bounces, 1 complaint; en: 1 soft (Transient), 1 soft (Undetermined), 1 not-spam
        world.message(hard, "issue-a", ar[0]),
        world.message("ses_event_bounce.json", "issue-a", ar[1]),
        world.message("ses_notification_complaint_no_feedback.json", "issue-a", ar[2]),
        world.message(hard, "issue-a", en[0], bounceType="Transient", bounceSubType="MailboxFull"),
        world.message(hard, "issue-a", en[1], bounceType="Undetermined", bounceSubType="Undetermined"),
        world.message("ses_event_complaint.json", "issue-a", en[2], complaintFeedbackType="not-spam"),
        # issue-b, en: 1 complaint (abuse) and deliveries, which count nowhere; a Send for everyone
        world.message("ses_notification_complaint_abuse_with_feedback.json", "issue-b", en[2]),
        world.message("ses_notification_delivery.json", "issue-b", en[0]),
        *(world.message("ses_event_send.json", "issue-b", p) for p in world.people),
        # issue-c, ar: one person soft-bounces twice (one delivery: counted once)
        world.message(hard, "issue-c", ar[2], bounceType="Transient", bounceSubType="General"),
        world.message(hard, "issue-c", ar[2], bounceType="Transient", bounceSubType="MailboxFull"),
    )
    rows = world.store.reports.campaigns()
    got = {
        (row["campaign"], row["language"]): (row["recipients"], row["sent"], row["hard_bounces"], row["soft_bounces"], row["complaints"])
        for row in rows
    }
    assert got == {
        ("issue-a", "ar"): (3, 3, 2, 0, 1),
        ("issue-a", "en"): (3, 3, 0, 2, 0),
        ("issue-b", "ar"): (3, 3, 0, 0, 0),
        ("issue-b", "en"): (3, 3, 0, 0, 1),
        ("issue-c", "ar"): (3, 3, 0, 1, 0),
        ("issue-c", "en"): (3, 3, 0, 0, 0),
        ("issue-d", "ar"): (3, 3, 0, 0, 0),
        ("issue-d", "en"): (3, 3, 0, 0, 0),
    }
    # one campaign only
    only_b = world.store.reports.campaigns(world.campaigns["issue-b"])
    assert [(r["language"], r["complaints"]) for r in only_b] == [("ar", 0), ("en", 1)]
    # the command prints the same numbers
    result = run(world.project, "report", "issue-a", "--format", "json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert [(r["language"], r["hard_bounces"], r["soft_bounces"], r["complaints"]) for r in printed] == [
        ("ar", 2, 0, 1),
        ("en", 0, 2, 0),
    ]


# --- the bounce mailbox: only a token acts, at most RECIPIENT_LIMIT stored -------------------------


BOUNCES = "bounces@news.cssrweb.org"


def mail_poller(world: World) -> tuple[Poller, list[str]]:
    """The mailbox poller on the world's store, with [bounces] and [mailbox] set; its IMAP side is
    never opened: messages are handed to `handle` as a round would hand them."""
    path = world.project.config_path
    path.write_text(
        path.read_text(encoding="utf-8")
        + f'\n[bounces]\naddress = "{BOUNCES}"\n\n[mailbox]\nhost = "imap.example.org"\nuser = "bounces"\n',
        encoding="utf-8",
    )
    said: list[str] = []
    return Poller(world.store.feedback, world.project.config(), KEY, "unused", said.append), said


def verp(delivery: Delivery) -> str:
    return tagged(BOUNCES, DeliveryTokens(KEY).make(delivery.id, "bounce"))


def head(delivery: Delivery) -> str:
    return bounce_samples.original_head(delivery.email, delivery.message_id, envelope=verp(delivery))


def bounce_of_10000(form: str, person: str, delivery: Delivery) -> bytes:
    """A bounce of `delivery` (through its token) naming `person` and 9,999 others, as a DSN or as Exim writes it."""
    many = [person, *(f"p{n:05d}@example.org" for n in range(9_999))]
    if form == "dsn":
        return bounce_samples.dsn_many(verp(delivery), many, "5.1.1", head(delivery))
    return bounce_samples.exim_many(verp(delivery), many, head(delivery))


def test_a_bounce_quoting_a_real_message_id_without_our_token_changes_nobody(world):
    poller, said = mail_poller(world)
    person = world.people[0]
    delivery = world.delivery("issue-a", person)
    stats = MailboxStats()
    forged = bounce_samples.dsn(BOUNCES, person, "5.1.1", "550 5.1.1 User unknown", head(delivery))
    assert delivery.message_id.encode() in forged and person.encode() in forged
    before = world.counts()
    assert poller.handle("1", forged, stats)
    assert stats.untokened == 1 and stats.kinds["bounce"] == 0 and (stats.bounced, stats.unknown) == (0, 0)
    assert said == ["message 1: bounce (hard) without a token of ours: counted, nothing changed"]
    assert world.status(person) == d.ACTIVE and not world.suppressed(person)
    assert world.counts() == before  # nothing stored at all
    # the same bounce through the token the letter went out with acts
    assert poller.handle("2", bounce_samples.dsn(verp(delivery), person, "5.1.1", "550 5.1.1 User unknown", head(delivery)), stats)
    assert (stats.bounced, stats.hard) == (1, 1)
    assert world.status(person) == d.BOUNCED and world.suppressed(person)


@pytest.mark.parametrize("form", ["dsn", "exim"])
def test_a_10000_recipient_bounce_stores_at_most_its_limit(world, form):
    poller, said = mail_poller(world)
    person = world.people[1]
    delivery = world.delivery("issue-b", person)
    raw = bounce_of_10000(form, person, delivery)
    stats = MailboxStats()
    assert poller.handle("7", raw, stats)
    assert (stats.hard, stats.beyond_limit, stats.bounced) == (RECIPIENT_LIMIT, 10_000 - RECIPIENT_LIMIT, 1)
    assert any("10,000 recipients: only the first 100 read" in line for line in said), said
    counts = world.counts()
    assert counts["feedback_events"] == RECIPIENT_LIMIT == 100 and counts["processed_messages"] == 1
    assert {e["delivery_id"] for e in world.events()} == {delivery.id}
    assert world.status(person) == d.BOUNCED
    assert [world.status(p) for p in world.people].count(d.BOUNCED) == 1


def test_the_store_keeps_at_most_the_limit_and_without_a_delivery_acts_on_nobody(world):
    person = world.people[2]
    delivery = world.delivery("issue-c", person)
    events = [MailEvent("bounce", f"p{n}@example.org", bounce_type="Permanent", original_id=delivery.message_id) for n in range(150)]
    common = dict(occurred_at=world.now, policy=POLICY, secret=KEY)
    unknown = world.store.feedback.apply_mail(events, message_key="mail:a", delivery_id=None, **common)
    assert (unknown.recorded, unknown.unknown, unknown.bounced, unknown.beyond_limit) == (100, 100, 0, 50)
    assert world.status(person) == d.ACTIVE  # the quoted Message-ID leads nowhere
    assert all(e["delivery_id"] is None and e["subscriber_id"] is None for e in world.events())
    acted = world.store.feedback.apply_mail(events, message_key="mail:b", delivery_id=delivery.id, **common)
    assert (acted.recorded, acted.unknown, acted.bounced, acted.beyond_limit) == (100, 0, 1, 50)
    assert world.status(person) == d.BOUNCED and world.counts()["feedback_events"] == 200


@pytest.mark.trials
@pytest.mark.parametrize("form", ["dsn", "exim"])
def test_a_10000_recipient_bounce_is_handled_in_under_2_seconds(world, form):
    """Read, token checked, stored: the poller's `handle` against the SQLite store, as a round
    calls it after the fetch. Each run bounces another person (a fresh message)."""
    poller, _ = mail_poller(world)
    timings = []
    for person in world.people[:5]:
        delivery = world.delivery("issue-d", person)
        raw = bounce_of_10000(form, person, delivery)
        stats = MailboxStats()
        started = time.perf_counter()
        assert poller.handle(person, raw, stats)
        timings.append(time.perf_counter() - started)
        assert stats.bounced == 1 and stats.beyond_limit == 9_900
    median = statistics.median(timings)
    print(f"{form}: {len(raw):,} bytes, handled in {median:.3f} s (median of 5; {min(timings):.3f} to {max(timings):.3f} s)")
    assert median < 2.0, timings
    assert world.counts()["feedback_events"] == 5 * RECIPIENT_LIMIT
