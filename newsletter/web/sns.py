"""POST <feedback.sns_path> (/sns by default): Amazon SNS deliveries of SES feedback.

Validate → normalise → act: the body read up to its limit and its nesting checked on the bytes,
the message verified (signature, freshness, an allowed topic), then a subscription confirmed or
the SES events stored. A 5xx makes SNS deliver again later, so it answers what the store could
not take; a 400 is for what no retry will mend.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from newsletter.feedback.ses_events import FeedbackFormatError, events_from_envelope
from newsletter.feedback.sns import SNSVerificationError, verify_sns_message
from newsletter.store.database import redact
from newsletter.web.answers import read_body
from newsletter.web.services import Services, services_of

log = logging.getLogger("newsletter.web")

MAX_SNS_BODY = 256 * 1024
MAX_JSON_DEPTH = 32  # an SNS envelope is one flat object

# a JSON string, its end optional so that an unterminated one is consumed once, not rescanned
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON nests arrays and objects deeper than `limit`, found on the bytes, before any parser recurses."""
    depth = 0
    for byte in _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in b"[{" else -1
        if depth > limit:
            return True
    return False


def confirm_subscription(url: str, timeout: float = 10) -> None:
    """Visit an SNS SubscribeURL (only ever called after the message was verified)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not (parts.hostname or "").endswith((".amazonaws.com", ".amazonaws.com.cn")):
        raise SNSVerificationError(f"SubscribeURL is not an https URL of Amazon SNS: {url!r}")
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - checked above
        response.read()


def answer(text: str, status: int = 200) -> Response:
    return PlainTextResponse(text, status_code=status)


def parse(body: bytes | None) -> dict[str, Any] | Response:
    """The envelope as a dict, or the answer that refuses it."""
    if body is None:
        log.warning("sns: body over %d bytes", MAX_SNS_BODY)
        return answer("too large\n", 413)
    if too_deep(body):
        log.warning("sns: JSON nested deeper than %d", MAX_JSON_DEPTH)
        return answer("nested too deeply\n", 400)
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        log.warning("sns: body is not JSON")
        return answer("not JSON\n", 400)
    if not isinstance(message, dict):
        return answer("not an SNS message\n", 400)
    return message


async def verify(services: Services, message: dict[str, Any]) -> Response | None:
    """None for a genuine, fresh message of an allowed topic; else the answer that refuses it."""
    topics = services.config.feedback.topic_arns
    try:
        if not topics:
            raise SNSVerificationError("no topic is allowed: set feedback.topic_arns in newsletter.toml")
        await run_in_threadpool(
            verify_sns_message,
            message,
            load_certificate=services.certificates,
            now=services.now() if services.now else None,
            topic_arns=topics,
        )
    except SNSVerificationError as exc:
        log.warning("sns: rejected: %s", exc)
        return answer(f"rejected: {exc}\n", 400)
    return None


async def confirm_topic(services: Services, message: dict[str, Any]) -> Response:
    try:
        await run_in_threadpool(services.confirm_topic, message["SubscribeURL"])
    except Exception as exc:  # noqa: BLE001 - SNS retries the confirmation on a 5xx
        log.error("sns: could not confirm the subscription to %s: %s", message.get("TopicArn"), exc)
        return answer("could not confirm\n", 502)
    log.info("sns: confirmed the subscription to %s", message.get("TopicArn"))
    return answer("confirmed\n")


async def store_feedback(services: Services, message: dict[str, Any]) -> Response:
    try:
        events = events_from_envelope(message)
    except FeedbackFormatError as exc:
        # the reason may quote the payload, which holds recipients' addresses
        log.warning("sns: %s: malformed SES payload: %s", message.get("MessageId"), redact(str(exc)))
        return answer(f"malformed: {exc}\n", 400)
    try:
        outcome = await run_in_threadpool(
            services.store.feedback.apply_feedback,
            events,
            message_key=f"sns:{message['MessageId']}",
            source="sns",
            policy=services.policy,
            secret=services.secret,
        )
    except Exception as exc:  # noqa: BLE001 - a 5xx makes SNS deliver the message again later
        # the kind only: a database error's text quotes the row it was writing
        log.error("sns: storing feedback failed (%s)", type(exc).__name__)
        return answer("store unavailable\n", 503)
    log.info(
        "sns: %s: %d recorded, %d duplicates, %d unknown",
        message["MessageId"],
        outcome.recorded,
        outcome.duplicates,
        outcome.unknown,
    )
    return answer("ok\n")


async def sns(request: Request) -> Response:
    services = services_of(request)
    message = parse(await read_body(request, MAX_SNS_BODY))
    if isinstance(message, Response):
        return message
    refused = await verify(services, message)
    if refused is not None:
        return refused
    kind = message.get("Type")
    if kind == "SubscriptionConfirmation":
        return await confirm_topic(services, message)
    if kind != "Notification":
        return answer("ok\n")
    return await store_feedback(services, message)


def routes(path: str) -> list[Route]:
    """The endpoint at `path` (feedback.sns_path)."""
    return [Route(path, sns, methods=["POST"])]
