"""`newsletter feedback poll`: SES feedback from an SQS queue subscribed to the SNS topic.

For teams without a public endpoint. Each queue message is deleted only after its effect
is committed; a malformed one is reported and left in the queue, so the queue's
redrive (dead-letter) policy takes it after its maximum receives. The queue's access
policy is the trust boundary here (only the SNS topic may send to it), so signatures are
not checked again; the TopicArn allow-list still applies when configured.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import boto3
from botocore.config import Config as BotoConfig

from newsletter.config import Config
from newsletter.feedback.policy import FeedbackPolicy
from newsletter.feedback.ses_events import FeedbackFormatError, events_from_envelope, parse_envelope
from newsletter.store import Store


@dataclass
class PollStats:
    received: int = 0
    processed: int = 0
    events: int = 0
    duplicates: int = 0
    malformed: int = 0
    failed: int = 0


def sqs_client(config: Config):
    region = config.feedback.region or config.ses.region
    return boto3.session.Session().client(
        "sqs",
        region_name=region,
        endpoint_url=config.feedback.endpoint_url,
        config=BotoConfig(retries={"total_max_attempts": 3, "mode": "standard"}, read_timeout=40),
    )


def poll(
    queue_url: str,
    store: Store,
    config: Config,
    secret: bytes,
    *,
    client=None,
    stop: threading.Event | None = None,
    once: bool = False,
    wait_seconds: int = 20,
    report: Callable[[str], None] = print,
) -> PollStats:
    client = client or sqs_client(config)
    stop = stop or threading.Event()
    policy = FeedbackPolicy(config.feedback.soft_bounce_limit, config.feedback.soft_bounce_days)
    topics = set(config.feedback.topic_arns)
    stats = PollStats()
    while not stop.is_set():
        response = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds)
        messages = response.get("Messages", [])
        for message in messages:
            if stop.is_set():
                break  # not deleted: it becomes visible again after the visibility timeout
            stats.received += 1
            queue_id = message.get("MessageId", "?")
            try:
                envelope = parse_envelope(message.get("Body", ""))
                topic = envelope.get("TopicArn")
                if topics and topic is not None and topic not in topics:
                    raise FeedbackFormatError(f"topic {topic!r} is not in feedback.topic_arns")
                events = events_from_envelope(envelope)
            except FeedbackFormatError as exc:
                stats.malformed += 1
                report(f"queue message {queue_id}: malformed, left for the dead-letter queue: {exc}")
                continue
            key = f"sns:{envelope['MessageId']}" if envelope.get("MessageId") else f"sqs:{queue_id}"
            try:
                outcome = store.apply_feedback(events, message_key=key, source="sqs", policy=policy, secret=secret)
            except Exception as exc:  # noqa: BLE001 - the store failed: keep the message for later
                stats.failed += 1
                report(f"queue message {queue_id}: not stored, kept in the queue: {exc}")
                continue
            client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            stats.processed += 1
            stats.events += outcome.recorded
            stats.duplicates += outcome.duplicates
        if once:
            break
    return stats
