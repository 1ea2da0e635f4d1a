"""Amazon SES feedback (bounces, complaints, deliveries, ...) normalised into events.

Pure parsing: no database, no network. SES publishes feedback to SNS in one of two
formats, both carried as a JSON string in the SNS envelope's ``Message``:

* identity feedback notifications, keyed by ``notificationType`` (Bounce, Complaint, Delivery);
* configuration-set event publishing, keyed by ``eventType`` (Bounce, Complaint, Delivery,
  Send, Reject, DeliveryDelay, Subscription, Open, Click, Rendering Failure, ...), the only
  format that carries ``mail.tags``.

One SES message may name several recipients: it becomes one `FeedbackEvent` per recipient.
Unknown fields and new event types are tolerated; what the caller acts on (the message id,
who bounced or complained, when) is checked, and a payload that lacks it raises
`FeedbackFormatError` saying what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from newsletter.errors import NewsletterError
from newsletter.feedback import policy
from newsletter.feedback.diagnosis import ses_reason

DETAIL_LIMIT = 500

# kind -> the key of the event's own object in the SES JSON (where it differs from the kind,
# or the kind is known to carry one). Unknown kinds use the lower-camel-case event type.
_DETAIL_KEYS = {
    "bounce": "bounce", "complaint": "complaint", "delivery": "delivery", "send": "send", "reject": "reject",
    "delivery_delay": "deliveryDelay", "subscription": "subscription", "open": "open", "click": "click",
    "rendering_failure": "failure",
}  # fmt: skip

_SUBSCRIPTION_SUCCEEDED = "AmazonSnsSubscriptionSucceeded"


class FeedbackFormatError(NewsletterError):
    """An SES or SNS feedback payload that cannot be understood; the message says what is wrong."""


@dataclass(frozen=True)
class FeedbackEvent:
    """One thing that happened to one SES message for (at most) one recipient."""

    kind: str
    ses_message_id: str
    recipient: str | None
    occurred_at: datetime
    feedback_id: str | None
    bounce_type: str | None
    bounce_subtype: str | None
    complaint_type: str | None
    detail: str | None
    tags: dict[str, list[str]] = field(hash=False)
    format: str
    reason: str | None = None  # a bounce's, in newsletter.feedback.reasons' words (ses_reason)

    @property
    def key(self) -> str:
        """A stable idempotency key: the same SES event for the same recipient gives the same key."""
        parts: list[str | None] = [
            self.kind,
            self.ses_message_id,
            self.feedback_id,
            self.recipient.lower() if self.recipient is not None else None,
        ]
        if self.feedback_id is None:
            parts.append(self.occurred_at.isoformat())
        encoded = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("utf-8")).hexdigest()

    @property
    def hard_bounce(self) -> bool:
        return policy.is_hard_bounce(self)

    @property
    def soft_bounce(self) -> bool:
        return policy.is_soft_bounce(self)

    @property
    def is_complaint(self) -> bool:
        return policy.is_complaint(self)


def _load_object(payload: str | bytes | dict, what: str) -> tuple[dict, str | None]:
    """The payload as a dict, plus the JSON text it came from (None when given a dict)."""
    if isinstance(payload, dict):
        return payload, None
    if isinstance(payload, (bytes, bytearray)):
        try:
            payload = bytes(payload).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FeedbackFormatError(f"{what} is not UTF-8 text: {exc}") from None
    if not isinstance(payload, str):
        raise FeedbackFormatError(
            f"{what} must be JSON text or an already decoded object, got {type(payload).__name__}"
        )
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise FeedbackFormatError(f"{what} is not JSON ({exc}): {_short(payload, 80)!r}") from None
    if not isinstance(data, dict):
        raise FeedbackFormatError(f"{what} must be a JSON object, got {_json_type(data)}")
    return data, payload


_JSON_TYPES = (
    (dict, "an object"),
    (list, "an array (list)"),
    (str, "a string"),
    (bool, "a boolean"),  # before the numbers: a bool is an int
    ((int, float), "a number"),
    (type(None), "null"),
)


def _json_type(value: Any) -> str:
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), type(value).__name__)


def _short(text: Any, limit: int = DETAIL_LIMIT) -> str | None:
    """Whitespace collapsed and cut to `limit` characters; None for empty or non-text values."""
    if text is None:
        return None
    if not isinstance(text, str):
        text = str(text)
    text = " ".join(text.split())
    if not text:
        return None
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _snake(name: str) -> str:
    """'DeliveryDelay' -> 'delivery_delay', 'Rendering Failure' -> 'rendering_failure'."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name.strip())
    name = re.sub(r"[^0-9A-Za-z]+", "_", name)
    return name.strip("_").lower()


def _lower_camel(name: str) -> str:
    words = [w for w in re.split(r"[^0-9A-Za-z]+", name) if w]
    if not words:
        return ""
    first = words[0][0].lower() + words[0][1:]
    return first + "".join(w[0].upper() + w[1:] for w in words[1:])


def _parse_time(value: Any, where: str) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise FeedbackFormatError(f"{where} must be an ISO 8601 timestamp, got {_json_type(value)}")
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FeedbackFormatError(f"{where} is not an ISO 8601 timestamp: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _optional_str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise FeedbackFormatError(f"{where} must be a string, got {_json_type(value)}")
    return value or None


def _tags(mail: dict) -> dict[str, list[str]]:
    """mail.tags, tolerantly: malformed entries are skipped, a lone string becomes a list."""
    raw = mail.get("tags")
    if not isinstance(raw, dict):
        return {}
    tags: dict[str, list[str]] = {}
    for name, values in raw.items():
        if not isinstance(name, str):
            continue
        if isinstance(values, str):
            tags[name] = [values]
        elif isinstance(values, list):
            tags[name] = [v for v in values if isinstance(v, str)]
    return tags


def _recipient_objects(detail: dict, field_name: str, where: str) -> list[tuple[str, dict]]:
    """[(emailAddress, entry)] from a list of {"emailAddress": ...} objects; strict."""
    entries = detail.get(field_name)
    if not isinstance(entries, list):
        problem = "missing" if entries is None else f"{_json_type(entries)}, not a list"
        raise FeedbackFormatError(f"{where}.{field_name} is {problem}")
    if not entries:
        raise FeedbackFormatError(f"{where}.{field_name} is empty: it names no recipient")
    found = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise FeedbackFormatError(f"{where}.{field_name}[{index}] must be an object, got {_json_type(entry)}")
        address = entry.get("emailAddress")
        if not isinstance(address, str) or not address.strip():
            raise FeedbackFormatError(f"{where}.{field_name}[{index}] has no emailAddress")
        found.append((address.strip(), entry))
    return found


def _address_list(value: Any, where: str, required: bool) -> list[str]:
    if value is None and not required:
        return []
    if not isinstance(value, list):
        problem = "missing" if value is None else f"{_json_type(value)}, not a list"
        raise FeedbackFormatError(f"{where} is {problem}")
    addresses = []
    for index, entry in enumerate(value):
        if not isinstance(entry, str) or not entry.strip():
            raise FeedbackFormatError(f"{where}[{index}] must be an email address, got {_json_type(entry)}")
        addresses.append(entry.strip())
    return addresses


# ---------------------------------------------------------------------------------------------
# SES messages


def parse_ses_message(message: str | bytes | dict) -> list[FeedbackEvent]:
    """The events in one SES feedback message (the SNS envelope's Message, or already decoded).

    Returns one event per affected recipient; [] for SES's AmazonSnsSubscriptionSucceeded
    notice. Raises FeedbackFormatError when the message cannot be used.
    """
    data, _ = _load_object(message, "SES message")
    type_name, fmt = _message_type(data)
    if type_name == _SUBSCRIPTION_SUCCEEDED:
        return []
    kind = _snake(type_name)
    mail, message_id = _mail_object(data, type_name)
    detail_key, detail = _detail_object(data, kind, type_name)
    occurred_at = _occurred_at(detail, detail_key, mail, type_name)
    feedback_id = _optional_str(detail.get("feedbackId"), f"{detail_key}.feedbackId")
    tags = _tags(mail) if fmt == "event" else {}

    def make(recipient: str | None, *, bounce_type=None, bounce_subtype=None, complaint_type=None, text=None):
        shared = (kind, message_id, recipient, occurred_at, feedback_id, bounce_type, bounce_subtype, complaint_type)
        reason = ses_reason(bounce_type, bounce_subtype, text) if kind == "bounce" else None
        return FeedbackEvent(*shared, _short(text), dict(tags), fmt, reason)

    return _events(kind, make, detail, mail)


def _message_type(data: dict) -> tuple[str, str]:
    """(the event or notification type, "event" or "notification")."""
    event_type = data.get("eventType")
    notification_type = data.get("notificationType")
    if event_type is not None:
        type_name, fmt, type_field = event_type, "event", "eventType"
    elif notification_type is not None:
        type_name, fmt, type_field = notification_type, "notification", "notificationType"
    else:
        raise FeedbackFormatError(
            "SES message has neither notificationType nor eventType "
            f"(keys: {', '.join(sorted(map(str, data))) or 'none'})"
        )
    if not isinstance(type_name, str) or not _snake(type_name):
        raise FeedbackFormatError(f"SES message {type_field} must be a non-empty string, got {type_name!r}")
    return type_name, fmt


def _mail_object(data: dict, type_name: str) -> tuple[dict, str]:
    """(mail, mail.messageId)."""
    mail = data.get("mail")
    if not isinstance(mail, dict):
        problem = "missing" if mail is None else f"{_json_type(mail)}, not an object"
        raise FeedbackFormatError(f"SES {type_name} message: mail is {problem}")
    message_id = mail.get("messageId")
    if not isinstance(message_id, str) or not message_id.strip():
        raise FeedbackFormatError(f"SES {type_name} message: mail.messageId is missing or empty")
    return mail, message_id.strip()


def _detail_object(data: dict, kind: str, type_name: str) -> tuple[str, dict]:
    """(its key, the event's own object); {} for a kind that need not have one."""
    detail_key = _DETAIL_KEYS.get(kind) or _lower_camel(type_name)
    detail = data.get(detail_key)
    if detail is None:
        if kind in ("bounce", "complaint", "delivery"):
            raise FeedbackFormatError(f"SES {type_name} message has no {detail_key} object")
        detail = {}
    elif not isinstance(detail, dict):
        raise FeedbackFormatError(f"SES {type_name} message: {detail_key} must be an object, got {_json_type(detail)}")
    return detail_key, detail


def _occurred_at(detail: dict, detail_key: str, mail: dict, type_name: str) -> datetime:
    if "timestamp" in detail:
        return _parse_time(detail["timestamp"], f"{detail_key}.timestamp")
    if "timestamp" in mail:
        return _parse_time(mail["timestamp"], "mail.timestamp")
    raise FeedbackFormatError(f"SES {type_name} message has neither {detail_key}.timestamp nor mail.timestamp")


def _events(kind: str, make: Callable[..., FeedbackEvent], detail: dict, mail: dict) -> list[FeedbackEvent]:
    """One event per recipient the kind's own object names (or, failing that, per destination)."""
    if kind == "bounce":
        bounce_type = _optional_str(detail.get("bounceType"), "bounce.bounceType")
        bounce_subtype = _optional_str(detail.get("bounceSubType"), "bounce.bounceSubType")
        return [
            make(address, bounce_type=bounce_type, bounce_subtype=bounce_subtype, text=entry.get("diagnosticCode"))
            for address, entry in _recipient_objects(detail, "bouncedRecipients", "bounce")
        ]
    if kind == "complaint":
        complaint_type = _optional_str(detail.get("complaintFeedbackType"), "complaint.complaintFeedbackType")
        sub_type = detail.get("complaintSubType")
        return [
            make(address, complaint_type=complaint_type, text=sub_type)
            for address, _entry in _recipient_objects(detail, "complainedRecipients", "complaint")
        ]
    if kind == "delivery":
        recipients = _address_list(detail.get("recipients"), "delivery.recipients", required=True)
        if not recipients:
            raise FeedbackFormatError("delivery.recipients is empty: it names no recipient")
        return [make(address, text=detail.get("smtpResponse")) for address in recipients]
    if kind == "delivery_delay" and detail.get("delayedRecipients") is not None:
        return [
            make(address, text=detail.get("delayType"))
            for address, _entry in _recipient_objects(detail, "delayedRecipients", "deliveryDelay")
        ]
    return _destination_events(kind, make, detail, mail)


# the text each kind without recipients of its own keeps, from its own object
_DESTINATION_TEXT = {
    "reject": "reason",
    "delivery_delay": "delayType",
    "rendering_failure": "errorMessage",
    "click": "link",
}


def _destination_events(kind: str, make: Callable[..., FeedbackEvent], detail: dict, mail: dict) -> list[FeedbackEvent]:
    """Send, Reject, Subscription, Open, Click, Rendering Failure and event types not yet known:
    the event names no recipient of its own, so it applies to each of mail.destination."""
    field_name = _DESTINATION_TEXT.get(kind)
    text = detail.get(field_name) if field_name else None
    destination = _address_list(mail.get("destination"), "mail.destination", required=False)
    if not destination:
        return [make(None, text=text)]
    return [make(address, text=text) for address in destination]


# ---------------------------------------------------------------------------------------------
# SNS envelopes


def parse_envelope(body: str | bytes | dict) -> dict:
    """An SNS envelope (HTTP POST body, or SQS message body) as a dict.

    When SQS raw message delivery is on, the body is the SES message itself: it is wrapped in a
    synthetic envelope {"Type": "Notification", "Message": <JSON text>, "MessageId": None, "raw": True}.
    """
    data, text = _load_object(body, "SNS envelope")
    if "notificationType" in data or "eventType" in data:
        return {
            "Type": "Notification",
            "Message": text if text is not None else json.dumps(data),
            "MessageId": None,
            "raw": True,
        }
    kind = data.get("Type")
    if not isinstance(kind, str) or not kind:
        problem = "missing" if kind is None else f"{_json_type(kind)}, not a non-empty string"
        raise FeedbackFormatError(f"SNS envelope: Type is {problem}")
    message = data.get("Message")
    if not isinstance(message, str):
        problem = "missing" if message is None else f"{_json_type(message)}, not a string"
        raise FeedbackFormatError(f"SNS envelope ({kind}): Message is {problem}")
    return data


def events_from_envelope(envelope: dict) -> list[FeedbackEvent]:
    """The SES events in a Notification envelope; [] for SubscriptionConfirmation and the like."""
    if not isinstance(envelope, dict):
        raise FeedbackFormatError(f"SNS envelope must be an object, got {_json_type(envelope)}")
    if envelope.get("Type") != "Notification":
        return []
    if "Message" not in envelope:
        raise FeedbackFormatError("SNS Notification envelope has no Message")
    return parse_ses_message(envelope["Message"])
