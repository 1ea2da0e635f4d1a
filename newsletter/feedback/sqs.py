"""`newsletter feedback poll`: SES feedback from an SQS queue subscribed to the SNS topic.

For teams without a public endpoint. Each queue message is deleted only after its effect
is committed; a malformed one is reported and left in the queue, so the queue's
redrive (dead-letter) policy takes it after its maximum receives. The queue's access
policy is the trust boundary here (only the SNS topic may send to it), so signatures are
not checked again; the TopicArn allow-list still applies when configured.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
)

from newsletter.config import Config
from newsletter.errors import NewsletterError
from newsletter.feedback.policy import FeedbackPolicy
from newsletter.feedback.ses_events import FeedbackFormatError, events_from_envelope, parse_envelope
from newsletter.feedback.sink import FeedbackSink


@dataclass
class PollStats:
    received: int = 0
    processed: int = 0
    events: int = 0
    duplicates: int = 0
    malformed: int = 0
    failed: int = 0


class PollError(NewsletterError):
    """The queue cannot be read: one line that says why."""


_AWS_QUEUE = re.compile(r"(?:sqs[.-]([a-z0-9-]+)|([a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?", re.ASCII)


def where_is(queue_url: str, config: Config) -> tuple[str | None, str | None]:
    """(region, endpoint URL) for the queue: an AWS queue URL names its region; any other host
    (a local test server, an SQS-compatible service) is the endpoint itself, unless
    `[sqs] endpoint_url` says otherwise."""
    parts = urlsplit(queue_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.count("/") < 2:
        raise PollError(
            f"--queue: {queue_url!r} is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"
        )
    found = _AWS_QUEUE.fullmatch(parts.hostname)
    region = (found.group(1) or found.group(2)) if found else None
    endpoint = config.feedback.endpoint_url or (None if found else f"{parts.scheme}://{parts.netloc}")
    return region or config.feedback.region or config.ses.region or "us-east-1", endpoint


def sqs_client(config: Config, queue_url: str):
    region, endpoint = where_is(queue_url, config)
    return boto3.session.Session().client(
        "sqs",
        region_name=region,
        endpoint_url=endpoint,
        config=BotoConfig(retries={"total_max_attempts": 3, "mode": "standard"}, read_timeout=40, connect_timeout=10),
    )


def _receive(client, queue_url: str, wait_seconds: int) -> list[dict]:
    """One long poll; a queue that cannot be read is one line (PollError), never a traceback."""
    try:
        return client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds).get(
            "Messages", []
        )
    except NoCredentialsError:
        raise PollError("SQS: no AWS credentials (environment, profile or role)") from None
    except (EndpointConnectionError, ConnectTimeoutError) as exc:
        raise PollError(f"SQS: cannot reach {queue_url}: {exc}") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise PollError(f"SQS: {error.get('Code', 'error')}: {error.get('Message', '')} ({queue_url})") from None
    except BotoCoreError as exc:
        raise PollError(f"SQS: {exc} ({queue_url})") from None


def poll(
    queue_url: str,
    sink: FeedbackSink,
    config: Config,
    secret: bytes,
    *,
    client=None,
    stop: threading.Event | None = None,
    once: bool = False,
    wait_seconds: int = 20,
    report: Callable[[str], None] = print,
) -> PollStats:
    client = client or sqs_client(config, queue_url)
    stop = stop or threading.Event()
    policy = FeedbackPolicy(config.feedback.soft_bounce_limit, config.feedback.soft_bounce_days)
    topics = set(config.feedback.topic_arns)
    stats = PollStats()
    while not stop.is_set():
        messages = _receive(client, queue_url, wait_seconds)
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
                outcome = sink.apply_feedback(events, message_key=key, source="sqs", policy=policy, secret=secret)
            except Exception as exc:  # noqa: BLE001 - recording failed: keep the message for later
                stats.failed += 1
                report(f"queue message {queue_id}: not stored, kept in the queue: {exc}")
                continue
            try:
                client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            except (BotoCoreError, ClientError) as exc:  # stored: a redelivery will change nothing
                raise PollError(
                    f"SQS: cannot delete a processed message ({exc}); it will come again, harmlessly"
                ) from None
            stats.processed += 1
            stats.events += outcome.recorded
            stats.duplicates += outcome.duplicates
        if once:
            break
    return stats
