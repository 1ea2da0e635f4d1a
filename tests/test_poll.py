"""`newsletter feedback poll` against moto in server mode: SES, SNS and SQS over real HTTP.

The letter goes out through SES-on-moto, so the ledger holds the MessageIds SendEmail
returned. An SNS topic has the queue subscribed to it (protocol sqs), and the SES fixtures
(tests/fixtures/ses), pointed at those MessageIds and addresses, are published to the topic:
what reaches the queue is what SNS really wraps around SES feedback.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from ses_samples import SAMPLES, ses_message as fixture_message
from conftest import SECRET, Project, reset_moto
from newsletter import domain as d
from newsletter.store import tables as s
from newsletter.cli import cli
from newsletter.feedback.sqs import poll
from newsletter.store import Store
from newsletter.store.feedback import Feedback
from store_helpers import is_suppressed

SENDER = "updates@news.cssrweb.org"
REGION = "us-east-1"
LIST = "feedback-readers"
KEY = SECRET.encode()


# --- moto server ------------------------------------------------------------------------------


@pytest.fixture
def moto(moto_url: str, aws_env) -> str:
    reset_moto(moto_url)
    return moto_url


# --- the world: a sent letter, a topic, a queue -------------------------------------------------


def ses_message(sample: str, message_id: str, recipient: str, **changes) -> str:
    """The fixture as SES would publish it about `recipient` of our message `message_id`."""
    return json.dumps(fixture_message(sample, message_id, recipient, **changes))


class DeadlinePassed(BaseException):
    """Not an Exception: botocore and the poller catch those (an OSError would be retried as a network error)."""


@contextlib.contextmanager
def deadline(seconds: float):
    """A command that does not return in time (`--once` that keeps polling) fails the test instead of hanging it."""

    def expired(signum, frame):
        raise DeadlinePassed(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1)  # again every second, should anything swallow it
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class World:
    def __init__(self, url: str, root: Path):
        self.url = url
        self.sns = boto3.client("sns", endpoint_url=url, region_name=REGION)
        self.sqs = boto3.client("sqs", endpoint_url=url, region_name=REGION)
        self.topic = self.sns.create_topic(Name="ses-feedback")["TopicArn"]
        # a short visibility timeout: a message left in the queue is seen again within a second
        self.queue = self.sqs.create_queue(QueueName="ses-feedback", Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=queue_arn)
        self.project = Project(
            root,
            "[send]\nrate = 500\nthreads = 2\n\n"
            f'[ses]\nregion = "{REGION}"\nendpoint_url = "{url}"\n\n'
            f'[feedback]\nendpoint_url = "{url}"\nregion = "{REGION}"\ntopic_arns = ["{self.topic}"]\n',
        )
        boto3.client("sesv2", endpoint_url=url, region_name=REGION).create_email_identity(EmailIdentity=SENDER)
        result = self.run("subscribers", "import", str(self.project.write_subscribers(4)), "--list", LIST)
        assert f"{LIST}: 4 added" in result.output, result.output
        result = self.run("send", str(self.project.issue), "--list", LIST, "--provider", "ses", "--yes")
        assert result.exit_code == 0, result.output
        self.store = self.project.store()
        with self.store.db.engine.connect() as conn:
            rows = conn.execute(
                select(s.subscribers.c.email, s.deliveries.c.provider_message_id, s.deliveries.c.state)
                .select_from(s.deliveries.join(s.subscribers, s.deliveries.c.subscriber_id == s.subscribers.c.id))
            ).all()
        assert {state for _, _, state in rows} == {d.SENT}
        self.message_ids = {address: message_id for address, message_id, _ in rows}
        # the MessageIds SendEmail returned (moto's), not our own Message-ID headers
        with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=10) as response:
            moto_ids = {item["id"] for item in json.load(response)["ses"]["RawMessage"]}
        assert set(self.message_ids.values()) == moto_ids and len(moto_ids) == 4
        self.a, self.b, self.c, self.d = sorted(self.message_ids)

    def run(self, *args: str, timeout: float = 30):
        with deadline(timeout):
            return CliRunner().invoke(
                cli, [*args, "--config", str(self.project.config_path)], env=self.project.env, catch_exceptions=False
            )

    def publish(self, message: str) -> None:
        self.sns.publish(TopicArn=self.topic, Message=message)

    def feedback(self) -> list[str]:
        """Permanent bounce for A, complaint for B, delivery for C, transient bounce for D."""
        return [
            ses_message("ses_notification_bounce_permanent_with_dsn.json", self.message_ids[self.a], self.a),
            ses_message("ses_notification_complaint_abuse_with_feedback.json", self.message_ids[self.b], self.b),
            ses_message("ses_notification_delivery.json", self.message_ids[self.c], self.c),
            ses_message(
                "ses_event_bounce.json", self.message_ids[self.d], self.d, bounceType="Transient", bounceSubType="MailboxFull"
            ),
        ]

    def poll_cli(self) -> tuple[list[str], list[tuple[int, ...]]]:
        """`feedback poll --once` until a round receives nothing; (all output, the counts of each round)."""
        outputs, rounds = [], []
        for _ in range(4):
            result = self.run("feedback", "poll", "--queue", self.queue, "--once", "--wait", "1")
            assert result.exit_code == 0, result.output
            outputs.append(result.output)
            summary = result.stdout.strip().splitlines()[-1]
            numbers = tuple(int(word) for word in summary.replace("(", " ").replace(",", " ").split() if word.isdigit())
            assert len(numbers) == 6, summary  # received, processed, events, duplicates, malformed, not stored
            rounds.append(numbers)
            if numbers[0] == 0:
                return outputs, rounds
        raise AssertionError(f"the queue never ran dry: {rounds}")

    def statuses(self) -> dict[str, str]:
        return {address: self.store.subscribers.by_email(address).status for address in self.message_ids}

    def count(self, table) -> int:
        with self.store.db.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()

    def queue_counts(self) -> tuple[int, int]:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def receive_all(self, wait: float = 1.5) -> list[dict]:
        """Everything in the queue, once visible again (each received once more)."""
        time.sleep(wait)
        found: dict[str, dict] = {}
        for _ in range(3):
            response = self.sqs.receive_message(
                QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=0, AttributeNames=["ApproximateReceiveCount"]
            )
            for message in response.get("Messages", []):
                found[message["MessageId"]] = message
        return list(found.values())


@pytest.fixture
def world(moto: str, project) -> World:
    w = World(moto, project.root)
    yield w
    w.store.close()


def total(rounds: list[tuple[int, ...]]) -> tuple[int, ...]:
    return tuple(sum(column) for column in zip(*rounds))


# --- the command --------------------------------------------------------------------------------


def test_poll_acts_on_feedback_and_empties_the_queue_once(world):
    for message in world.feedback():
        world.publish(message)
    assert world.queue_counts() == (4, 0)

    _, rounds = world.poll_cli()
    # received, processed, events, duplicates, malformed, not stored
    assert total(rounds) == (4, 4, 4, 0, 0, 0), rounds
    statuses = world.statuses()
    # the code marks a complaint "complained" (suppressed as well), not "unsubscribed"
    assert statuses == {world.a: d.BOUNCED, world.b: d.COMPLAINED, world.c: d.ACTIVE, world.d: d.ACTIVE}
    assert [is_suppressed(world.store, address, KEY) for address in (world.a, world.b, world.c, world.d)] == [
        True, True, False, False,
    ]
    assert world.queue_counts() == (0, 0)
    assert world.receive_all(wait=0) == []
    with world.store.db.engine.connect() as conn:
        rows = conn.execute(select(s.feedback_events.c.kind, s.feedback_events.c.source, s.feedback_events.c.delivery_id)).all()
        keys = conn.execute(select(s.processed_messages.c.message_key)).scalars().all()
    assert sorted(kind for kind, _, _ in rows) == ["bounce", "bounce", "complaint", "delivery"]
    assert all(source == "sqs" and delivery_id is not None for _, source, delivery_id in rows), rows
    assert len(keys) == 4 and all(key.startswith("sns:") for key in keys), keys
    events = world.count(s.feedback_events)

    # SNS delivers the same feedback again (new SNS MessageIds, the same SES events)
    for message in world.feedback():
        world.publish(message)
    _, rounds = world.poll_cli()
    assert total(rounds) == (4, 4, 0, 4, 0, 0), rounds
    assert world.statuses() == statuses
    assert world.count(s.feedback_events) == events
    assert world.count(s.processed_messages) == 8
    assert world.queue_counts() == (0, 0)

    # the report shows it
    result = world.run("report", "--format", "json")
    rows = json.loads(result.output)
    assert sorted(row["language"] for row in rows) == ["ar", "en"]
    assert [sum(row[k] for row in rows) for k in ("recipients", "hard_bounces", "soft_bounces", "complaints")] == [4, 1, 1, 1]


@pytest.mark.trials  # several seconds of whole sends: the whole suite's
def test_malformed_messages_are_reported_and_left_in_the_queue(world):
    envelope = json.loads((SAMPLES / "sns_envelope_notification.json").read_text(encoding="utf-8"))
    envelope["TopicArn"] = world.topic  # from our topic: its Message is what is wrong
    foreign = dict(envelope, MessageId=str(uuid.uuid4()), TopicArn="arn:aws:sns:us-east-1:999999999999:someone-else")
    foreign["Message"] = ses_message("ses_event_bounce.json", world.message_ids[world.a], world.a)
    bodies = {"not json", json.dumps(envelope), json.dumps(foreign)}
    for body in bodies:
        world.sqs.send_message(QueueUrl=world.queue, MessageBody=body)

    result = world.run("feedback", "poll", "--queue", world.queue, "--once", "--wait", "1")
    assert result.exit_code == 0, result.output
    assert "3 received, 0 processed (0 events, 0 duplicates), 3 malformed, 0 not stored" in result.stdout, result.output
    problems = [line for line in result.stderr.splitlines() if "malformed" in line]
    assert len(problems) == 3, result.stderr
    assert any("SNS envelope is not JSON" in line for line in problems), problems
    assert any("SES message is not JSON" in line and "Hello from ses-feedback!" in line for line in problems), problems
    assert any("is not in feedback.topic_arns" in line for line in problems), problems
    # the bounce from a topic we do not trust was not acted on
    assert world.statuses()[world.a] == d.ACTIVE
    assert world.count(s.feedback_events) == 0 and world.count(s.processed_messages) == 0

    # none was deleted: all three come back after the visibility timeout, for the dead-letter queue to take
    again = world.receive_all()
    assert {m["Body"] for m in again} == bodies
    assert all(int(m["Attributes"]["ApproximateReceiveCount"]) >= 2 for m in again)

    # and a second round says the same, still without crashing
    time.sleep(1.2)
    result = world.run("feedback", "poll", "--queue", world.queue, "--once", "--wait", "1")
    assert result.exit_code == 0 and "3 malformed" in result.stdout, result.output
    assert len(world.receive_all()) == 3


# --- in process -------------------------------------------------------------------------------


def in_thread(function, timeout: float):
    """function() in a thread; its result, or a failure (not a hang) when it has not returned in time."""
    outcome: dict = {}

    def target():
        try:
            outcome["result"] = function()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"still running after {timeout} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


class FailingFeedback(Feedback):
    def apply_feedback(self, *args, **kwargs):
        raise RuntimeError("database is locked")


@pytest.mark.trials  # several seconds of whole sends: the whole suite's
def test_a_store_failure_keeps_the_message_in_the_queue(world):
    config = world.project.config()
    world.publish(world.feedback()[0])  # A's permanent bounce
    lines: list[str] = []
    failing = Store.open(config.store_url)
    try:
        stats = poll(world.queue, FailingFeedback(failing.db), config, KEY, once=True, wait_seconds=1, report=lines.append)
    finally:
        failing.close()
    assert (stats.received, stats.processed, stats.failed, stats.malformed) == (1, 0, 1, 0)
    assert len(lines) == 1 and "not stored, kept in the queue: database is locked" in lines[0], lines
    assert world.statuses()[world.a] == d.ACTIVE
    assert world.count(s.processed_messages) == 0  # the failed attempt left no trace

    (message,) = world.receive_all()
    assert json.loads(json.loads(message["Body"])["Message"])["mail"]["messageId"] == world.message_ids[world.a]

    # once the store works again, the same message is acted on and deleted
    time.sleep(1.2)
    stats = poll(world.queue, world.store.feedback, config, KEY, once=True, wait_seconds=1, report=lines.append)
    assert (stats.received, stats.processed, stats.events, stats.failed) == (1, 1, 1, 0)
    assert world.statuses()[world.a] == d.BOUNCED
    assert world.queue_counts() == (0, 0)


def test_stop_set_before_polling_receives_nothing(world):
    world.publish(world.feedback()[0])
    stop = threading.Event()
    stop.set()
    config = world.project.config()
    stats = in_thread(lambda: poll(world.queue, world.store.feedback, config, KEY, stop=stop, once=False, wait_seconds=20), 5)
    assert stats.received == 0 and stats.processed == 0
    assert world.queue_counts() == (1, 0)  # still there, still visible: never received
    assert world.statuses()[world.a] == d.ACTIVE


def test_stop_set_while_polling_ends_the_loop(world):
    config = world.project.config()
    stop = threading.Event()
    outcome: dict = {}

    def target():
        try:
            outcome["stats"] = poll(world.queue, world.store.feedback, config, KEY, stop=stop, once=False, wait_seconds=1)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    time.sleep(0.3)
    assert thread.is_alive()  # once=False: it keeps polling an empty queue
    feedback = world.feedback()
    world.publish(feedback[0])
    world.publish(feedback[1])
    deadline = time.monotonic() + 10
    while world.statuses()[world.b] != d.COMPLAINED and time.monotonic() < deadline:
        time.sleep(0.1)
    assert thread.is_alive()  # acted on both, still running
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    thread.join(timeout=10)
    timer.cancel()
    assert not thread.is_alive(), "poll did not stop"
    assert "error" not in outcome, outcome
    stats = outcome["stats"]
    assert (stats.received, stats.processed, stats.events, stats.malformed, stats.failed) == (2, 2, 2, 0, 0)
    assert world.statuses()[world.a] == d.BOUNCED
    assert world.queue_counts() == (0, 0)


@pytest.mark.trials  # several seconds of whole sends: the whole suite's
def test_stop_during_a_batch_leaves_the_rest_in_the_queue(world):
    """Stopped after the first message of a batch: it is done, the others are not deleted."""
    config = world.project.config()
    stop = threading.Event()

    class StoppingFeedback(Feedback):
        def apply_feedback(self, *args, **kwargs):
            outcome = super().apply_feedback(*args, **kwargs)
            stop.set()
            return outcome

    for message in world.feedback()[:3]:
        world.publish(message)
    store = Store.open(config.store_url)
    try:
        stats = poll(world.queue, StoppingFeedback(store.db), config, KEY, stop=stop, once=False, wait_seconds=1)
    finally:
        store.close()
    assert stats.received == 1 and stats.processed == 1, stats
    assert world.count(s.feedback_events) == 1
    assert sum(world.queue_counts()) == 2
    # the two left behind are acted on by the next run
    time.sleep(1.2)
    _, rounds = world.poll_cli()
    assert total(rounds)[:3] == (2, 2, 2), rounds
    assert world.statuses() == {world.a: d.BOUNCED, world.b: d.COMPLAINED, world.c: d.ACTIVE, world.d: d.ACTIVE}
