"""The SES feedback fixtures in tests/fixtures/ses, pointed at our own deliveries."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent / "fixtures" / "ses"
# the addresses the fixtures use, replaced by ours
SAMPLE_ADDRESSES = ("recipient@example.org", "reader@example.net", "friend@example.org")
# event type -> (its own object, the field naming its recipients)
RECIPIENT_FIELDS = {
    "Bounce": ("bounce", "bouncedRecipients"),
    "Complaint": ("complaint", "complainedRecipients"),
    "Delivery": ("delivery", "recipients"),
    "DeliveryDelay": ("deliveryDelay", "delayedRecipients"),
}


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def ses_message(sample: str, message_id: str, recipient: str, when: dt.datetime | None = None, **changes) -> dict:
    """The fixture `sample`, about one recipient of one of our messages.

    With `when`, the event happens then and gets a new feedbackId (as SES gives every event
    its own; feedback_id= fixes it); without, the fixture's own times and ids stay.
    `changes` are set on the event's own object (bounceType=..., complaintFeedbackType=...).
    """
    data = json.loads((SAMPLES / sample).read_text(encoding="utf-8"))
    event_type = data.get("eventType") or data["notificationType"]
    mail = data["mail"]
    mail["messageId"] = message_id
    mail["destination"] = [recipient]
    feedback_id = changes.pop("feedback_id", None)
    if when is not None:
        mail["timestamp"] = iso(when)
    if event_type in RECIPIENT_FIELDS:
        key, field = RECIPIENT_FIELDS[event_type]
        detail = data[key]
        if field == "recipients":
            detail[field] = [recipient]
        else:
            entry = copy.deepcopy(detail[field][0])
            entry["emailAddress"] = recipient
            detail[field] = [entry]
        if when is not None:
            detail["timestamp"] = iso(when)
            if "feedbackId" in detail:
                detail["feedbackId"] = feedback_id or f"{uuid.uuid4()}-000000"
        detail.update(changes)
    else:
        assert not changes, changes
    text = json.dumps(data)
    for address in SAMPLE_ADDRESSES:
        text = text.replace(address, recipient)
    return json.loads(text)
