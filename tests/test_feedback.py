"""SES feedback parsing against the fixtures in tests/fixtures/ses/, written in the formats AWS documents."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import datetime, timedelta, timezone

import pytest
from ses_samples import SAMPLES

from newsletter.errors import NewsletterError
from newsletter.feedback.ses_events import (
    FeedbackEvent,
    FeedbackFormatError,
    events_from_envelope,
    parse_envelope,
    parse_ses_message,
)

SES_SAMPLES = [
    "ses_event_bounce.json",
    "ses_event_complaint.json",
    "ses_event_delivery.json",
    "ses_event_delivery_delay.json",
    "ses_event_reject.json",
    "ses_event_send.json",
    "ses_event_subscription.json",
    "ses_notification_bounce_permanent_no_dsn.json",
    "ses_notification_bounce_permanent_with_dsn.json",
    "ses_notification_complaint_abuse_with_feedback.json",
    "ses_notification_complaint_no_feedback.json",
    "ses_notification_delivery.json",
]
RECIPIENT = "recipient@example.org"
ENVELOPE_ID = "5e0c3b7a-9d14-4f62-8a3e-1b7d2c9f4e05"


def text(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def sample(name: str) -> dict:
    return json.loads(text(name))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def only(events: list[FeedbackEvent]) -> FeedbackEvent:
    assert len(events) == 1, events
    return events[0]


def test_every_fixture_is_covered():
    assert SAMPLES.is_dir(), SAMPLES
    present = {p.name for p in SAMPLES.glob("ses_*.json")}
    assert present == set(SES_SAMPLES), "a fixture was added or removed: cover it here"


@pytest.mark.parametrize("name", SES_SAMPLES)
def test_every_sample_parses_with_message_id_and_aware_utc_timestamps(name):
    data = sample(name)
    from_text = parse_ses_message(text(name))
    assert from_text, "every SES fixture names at least one event"
    assert parse_ses_message(text(name).encode("utf-8")) == from_text
    assert parse_ses_message(data) == from_text
    expected_format = "event" if "eventType" in data else "notification"
    for event in from_text:
        assert event.ses_message_id == data["mail"]["messageId"]
        assert event.format == expected_format
        assert event.occurred_at.tzinfo is not None
        assert event.occurred_at.utcoffset() == timedelta(0)
        assert len(event.key) == 64 and int(event.key, 16) >= 0
        if expected_format == "notification":
            assert event.tags == {}


# --- notification format ---------------------------------------------------------------------


def test_permanent_bounce_with_dsn_is_one_hard_bounce_with_diagnostic_code():
    event = only(parse_ses_message(text("ses_notification_bounce_permanent_with_dsn.json")))
    assert event.kind == "bounce"
    assert event.recipient == RECIPIENT
    assert event.ses_message_id == "0102018e0c6a4f1d-5b7e2c90-3a41-4d8f-b6e2-91c07d3f5a28-000000"
    assert event.feedback_id == "0102018e0c6a5a07-8d2f4b1e-6c93-4a70-a5d1-3e8b2f9c7d64-000000"
    assert event.bounce_type == "Permanent"
    assert event.bounce_subtype == "General"
    assert event.detail == "smtp; 550 5.1.1 <recipient@example.org>: Recipient address rejected: User unknown"
    assert event.occurred_at == utc(2024, 3, 4, 9, 15, 4, 532000)  # bounce.timestamp, not mail.timestamp
    assert event.hard_bounce is True
    assert event.soft_bounce is False
    assert event.is_complaint is False
    assert event.complaint_type is None
    assert event.format == "notification"
    assert event.tags == {}


def test_permanent_bounce_without_dsn_names_two_recipients_not_the_whole_destination():
    events = parse_ses_message(text("ses_notification_bounce_permanent_no_dsn.json"))
    assert [e.recipient for e in events] == [RECIPIENT, "friend@example.org"]
    for event in events:
        assert event.kind == "bounce"
        assert event.hard_bounce
        assert event.detail is None
        assert event.feedback_id == "0102018e0c6b2c5a-e71d9a36-2f84-4c05-9b7a-0d6e3c8f1a52-000000"
        assert event.ses_message_id == "0102018e0c6b11e4-a3c58f02-7d16-4b9e-8f20-5c4d1e7a9b33-000000"


@pytest.mark.parametrize(
    ("bounce_type", "subtype"),
    [("Transient", "MailboxFull"), ("Transient", "General"), ("Undetermined", "Undetermined")],
)
def test_transient_and_undetermined_bounces_are_soft(bounce_type, subtype):
    data = sample("ses_notification_bounce_permanent_with_dsn.json")
    data["bounce"]["bounceType"] = bounce_type
    data["bounce"]["bounceSubType"] = subtype
    event = only(parse_ses_message(json.dumps(data)))
    assert (event.bounce_type, event.bounce_subtype) == (bounce_type, subtype)
    assert event.soft_bounce is True
    assert event.hard_bounce is False
    assert event.recipient == RECIPIENT


def test_complaint_with_feedback_report_is_abuse():
    event = only(parse_ses_message(text("ses_notification_complaint_abuse_with_feedback.json")))
    assert event.kind == "complaint"
    assert event.recipient == "friend@example.org"
    assert event.complaint_type == "abuse"
    assert event.is_complaint is True
    assert event.feedback_id == "0102018e0d1f3e26-c9a07b54-1d68-4e2f-b3c9-7f5a2d0e8b41-000000"
    assert event.ses_message_id == "0102018e0c6c7b90-41f6d2a8-9e35-4f1c-8a07-b2d94e6c3f15-000000"
    assert event.occurred_at == utc(2024, 3, 5, 7, 42, 19, 860000)  # complaint.timestamp, not arrivalDate
    assert event.bounce_type is None and not event.hard_bounce and not event.soft_bounce
    # Only a bounce is ever a hard or soft bounce, whatever else the event carries.
    assert not dataclasses.replace(event, bounce_type="Permanent").hard_bounce
    assert not dataclasses.replace(event, bounce_type="Transient").soft_bounce


def test_complaint_without_feedback_report_still_counts():
    event = only(parse_ses_message(text("ses_notification_complaint_no_feedback.json")))
    assert event.kind == "complaint"
    assert event.recipient == "friend@example.org"
    assert event.complaint_type is None
    assert event.is_complaint is True
    assert event.feedback_id == "0102018e0d2a9c18-2b5f8e03-a7c4-4d91-86e5-1c3b9f7d0a26-000000"


def test_not_spam_complaint_is_not_a_complaint():
    data = sample("ses_notification_complaint_abuse_with_feedback.json")
    data["complaint"]["complaintFeedbackType"] = "not-spam"
    event = only(parse_ses_message(data))
    assert event.kind == "complaint"
    assert event.complaint_type == "not-spam"
    assert event.is_complaint is False


def test_notification_format_ignores_mail_tags():
    data = sample("ses_notification_bounce_permanent_no_dsn.json")
    data["mail"]["tags"] = {"campaign": ["2022-12"]}
    assert [e.tags for e in parse_ses_message(data)] == [{}, {}]
    data["eventType"] = data.pop("notificationType")
    assert [e.tags for e in parse_ses_message(data)] == [{"campaign": ["2022-12"]}] * 2


def test_delivery_gives_one_event_per_delivered_recipient():
    event = only(parse_ses_message(text("ses_notification_delivery.json")))
    assert event.kind == "delivery"
    assert event.recipient == RECIPIENT
    assert event.detail == "250 2.0.0 Ok: queued as 4TpQ7v0Xk2z9sVt"  # whitespace collapsed
    assert event.occurred_at == utc(2024, 3, 4, 9, 15, 4, 701000)
    assert event.feedback_id is None
    assert not event.hard_bounce and not event.soft_bounce and not event.is_complaint

    data = sample("ses_notification_delivery.json")
    data["delivery"]["recipients"] = [RECIPIENT, "Reader@Example.net"]
    data["mail"]["destination"] = [RECIPIENT, "Reader@Example.net", "friend@example.org"]
    events = parse_ses_message(data)
    assert [e.recipient for e in events] == [RECIPIENT, "Reader@Example.net"]  # original case kept


# --- event-publishing format ------------------------------------------------------------------


CONFIG_SET_TAGS = {
    "ses:configuration-set": ["newsletter"],
    "ses:source-ip": ["192.0.2.10"],
    "ses:from-domain": ["news.example.org"],
    "ses:caller-identity": ["newsletter-sender"],
}


def test_event_bounce():
    event = only(parse_ses_message(text("ses_event_bounce.json")))
    assert event.format == "event"
    assert (event.kind, event.recipient) == ("bounce", RECIPIENT)
    assert event.ses_message_id == "0102018f3a7b6c21-7d0e5f94-2c83-4b1a-9e6d-4a8f2b1c3d57-000000"
    assert event.feedback_id == "0102018f3a7c0e4b-b8d1a2f6-5e37-4c09-8b4e-6f2a9d1c7e30-000000"
    assert event.hard_bounce
    assert event.detail == "smtp; 550 5.1.1 mailbox unavailable"
    assert event.occurred_at == utc(2024, 6, 11, 8, 30, 2, 905000)  # bounce.timestamp, not mail.timestamp
    assert event.tags == CONFIG_SET_TAGS


def test_event_complaint():
    event = only(parse_ses_message(text("ses_event_complaint.json")))
    assert (event.kind, event.recipient, event.complaint_type) == ("complaint", RECIPIENT, "abuse")
    assert event.is_complaint
    assert event.ses_message_id == "0102018f3a7d4a8e-1c6b9e25-7f40-4d3a-a2c8-5b9e0f7d1a63-000000"
    assert event.feedback_id == "0102018f3b02f7c5-d4e8a1b0-3c6f-4a92-9d57-2e0b8c4f6a19-000000"
    assert event.occurred_at == utc(2024, 6, 12, 19, 4, 51, 127000)
    assert event.tags == CONFIG_SET_TAGS


def test_event_delivery_with_custom_tags():
    event = only(parse_ses_message(text("ses_event_delivery.json")))
    assert (event.kind, event.recipient) == ("delivery", RECIPIENT)
    assert event.detail == "250 2.0.0 OK accepted for delivery"
    assert event.occurred_at == utc(2024, 6, 11, 8, 30, 1, 874000)
    assert event.tags["campaign"] == ["2022-12-year-end"]
    assert event.tags["ses:outgoing-ip"] == ["203.0.113.40"]
    assert len(event.tags) == 7


def test_event_send_uses_destination_and_falls_back_to_mail_timestamp():
    event = only(parse_ses_message(text("ses_event_send.json")))
    assert (event.kind, event.recipient) == ("send", RECIPIENT)
    assert event.occurred_at == utc(2024, 6, 11, 8, 30, 1, 988000)  # send is {}: mail.timestamp
    assert event.feedback_id is None
    assert event.tags["language"] == ["en"]

    data = sample("ses_event_send.json")
    data["mail"]["destination"] = ["a@example.org", "b@example.net"]
    assert [e.recipient for e in parse_ses_message(data)] == ["a@example.org", "b@example.net"]


def test_event_reject_carries_the_reason():
    event = only(parse_ses_message(text("ses_event_reject.json")))
    assert event.kind == "reject"
    assert event.recipient == RECIPIENT  # mail.destination: a reject names no recipient of its own
    assert event.detail == "Bad content"
    assert event.occurred_at == utc(2024, 6, 11, 8, 30, 1, 602000)


def test_event_without_destination_has_no_recipient():
    data = sample("ses_event_reject.json")
    del data["mail"]["destination"]
    event = only(parse_ses_message(data))
    assert event.kind == "reject"
    assert event.recipient is None
    assert event.detail == "Bad content"


def test_event_delivery_delay():
    event = only(parse_ses_message(text("ses_event_delivery_delay.json")))
    assert (event.kind, event.recipient) == ("delivery_delay", RECIPIENT)
    assert event.detail == "MailboxFull"
    assert event.occurred_at == utc(2024, 6, 11, 8, 45, 12, 640000)
    assert event.tags == {"ses:configuration-set": ["newsletter"]}
    assert not event.soft_bounce and not event.hard_bounce

    data = sample("ses_event_delivery_delay.json")
    data["mail"]["destination"] = ["a@example.org", "b@example.net", "c@example.org"]
    data["deliveryDelay"]["delayedRecipients"] = [{"emailAddress": "b@example.net", "status": "4.4.1"}]
    assert [e.recipient for e in parse_ses_message(data)] == ["b@example.net"]  # only the delayed one


def test_event_subscription():
    event = only(parse_ses_message(text("ses_event_subscription.json")))
    assert (event.kind, event.recipient) == ("subscription", RECIPIENT)
    assert event.ses_message_id == "0102018f3a82f0d4-2e9c5b71-c83a-4d6e-b7f1-0a4d9e3c6b58-000000"
    assert event.occurred_at == utc(2024, 6, 13, 6, 58, 33, 415000)
    assert event.tags["ses:operation"] == ["SendEmail"]


@pytest.mark.parametrize(
    ("event_type", "body_key", "body", "kind", "detail"),
    [
        ("Open", "open", {"timestamp": "2017-08-09T22:00:19.652Z", "ipAddress": "192.0.2.1"}, "open", None),
        ("Click", "click", {"timestamp": "2017-08-09T23:51:25.570Z", "link": "https://example.com/x"}, "click", "https://example.com/x"),
        ("Rendering Failure", "failure", {"errorMessage": "Attribute 'name' is not present"}, "rendering_failure", "Attribute 'name' is not present"),
        ("BrandNewThing", "brandNewThing", {"timestamp": "2030-01-01T00:00:00Z", "surprise": 1}, "brand_new_thing", None),
    ],
)
def test_other_and_unknown_event_types_are_tolerated(event_type, body_key, body, kind, detail):
    data = sample("ses_event_send.json")
    del data["send"]
    data["eventType"] = event_type
    data[body_key] = body
    data["someFieldAddedIn2030"] = {"whatever": True}
    event = only(parse_ses_message(data))
    assert event.kind == kind
    assert event.detail == detail
    assert event.recipient == RECIPIENT
    expected = body.get("timestamp", data["mail"]["timestamp"]).replace("Z", "+00:00")
    assert event.occurred_at == datetime.fromisoformat(expected)


def test_subscription_succeeded_notice_gives_no_events():
    notice = {
        "notificationType": "AmazonSnsSubscriptionSucceeded",
        "message": "You have successfully subscribed your Amazon SNS topic "
        "'arn:aws:sns:us-east-1:123456789012:ses-feedback' to receive 'Bounce' notifications from Amazon SES "
        "for identity 'news.example.org'.",
    }
    assert parse_ses_message(json.dumps(notice)) == []


def test_long_diagnostic_codes_are_shortened_to_one_line():
    data = sample("ses_notification_bounce_permanent_with_dsn.json")
    data["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = "smtp; 550\n   " + "x" * 5000
    event = only(parse_ses_message(data))
    assert event.detail.startswith("smtp; 550 xxx")
    assert "\n" not in event.detail
    assert len(event.detail) <= 500


# --- idempotency key --------------------------------------------------------------------------


def test_key_is_stable_across_parses_and_differs_between_recipients():
    first = parse_ses_message(text("ses_notification_bounce_permanent_no_dsn.json"))
    second = parse_ses_message(text("ses_notification_bounce_permanent_no_dsn.json"))
    assert [e.key for e in first] == [e.key for e in second]
    assert first[0].key != first[1].key


def test_key_ignores_recipient_case_but_not_kind_or_feedback_id():
    event = only(parse_ses_message(text("ses_notification_bounce_permanent_with_dsn.json")))
    assert dataclasses.replace(event, recipient="RECIPIENT@Example.ORG").key == event.key
    assert dataclasses.replace(event, kind="complaint").key != event.key
    assert dataclasses.replace(event, feedback_id="other").key != event.key
    # With a feedbackId the event is already unique: the timestamp does not enter the key.
    assert dataclasses.replace(event, occurred_at=event.occurred_at + timedelta(hours=1)).key == event.key


def test_key_without_feedback_id_uses_the_time():
    event = only(parse_ses_message(text("ses_event_delivery_delay.json")))
    later = dataclasses.replace(event, occurred_at=event.occurred_at + timedelta(minutes=5))
    assert event.feedback_id is None
    assert later.key != event.key


def test_events_are_hashable_and_comparable():
    events = parse_ses_message(text("ses_event_delivery.json"))
    assert len({*events, *parse_ses_message(text("ses_event_delivery.json"))}) == 1


# --- SNS envelopes ----------------------------------------------------------------------------


def envelope_around(message: str) -> dict:
    envelope = json.loads(text("sns_envelope_notification.json"))
    envelope["Message"] = message
    return envelope


def test_notification_envelope_with_plain_text_is_not_ses_json():
    envelope = parse_envelope(text("sns_envelope_notification.json"))
    assert envelope["Type"] == "Notification"
    assert envelope["MessageId"] == ENVELOPE_ID
    with pytest.raises(FeedbackFormatError, match="not JSON") as caught:
        events_from_envelope(envelope)
    assert "Hello from ses-feedback!" in str(caught.value)


@pytest.mark.parametrize("name", ["ses_notification_bounce_permanent_no_dsn.json", "ses_event_complaint.json"])
def test_ses_message_inside_an_sns_envelope(name):
    body = json.dumps(envelope_around(json.dumps(sample(name))))
    for given in (body, body.encode("utf-8"), json.loads(body)):
        envelope = parse_envelope(given)
        assert envelope["MessageId"] == ENVELOPE_ID
        assert "raw" not in envelope
        assert events_from_envelope(envelope) == parse_ses_message(text(name))


@pytest.mark.parametrize("given", ["text", "bytes", "dict"])
def test_raw_message_delivery_body_gets_a_synthetic_envelope(given):
    raw = text("ses_notification_delivery.json")
    body = {"text": raw, "bytes": raw.encode("utf-8"), "dict": json.loads(raw)}[given]
    envelope = parse_envelope(body)
    assert envelope["Type"] == "Notification"
    assert envelope["MessageId"] is None
    assert envelope["raw"] is True
    assert isinstance(envelope["Message"], str)
    assert json.loads(envelope["Message"]) == json.loads(raw)
    if given != "dict":
        assert envelope["Message"] == raw
    event = only(events_from_envelope(envelope))
    assert (event.kind, event.recipient) == ("delivery", RECIPIENT)


@pytest.mark.parametrize(
    ("name", "kind", "token"),
    [
        ("sns_envelope_subscription_confirmation.json", "SubscriptionConfirmation", "2b6e0f4d9a1c7e3b"),
        ("sns_envelope_unsubscribe_confirmation.json", "UnsubscribeConfirmation", "7d3a9f1c5e2b8d4a"),
    ],
)
def test_confirmation_envelopes_give_no_events(name, kind, token):
    envelope = parse_envelope(text(name))
    assert envelope["Type"] == kind
    assert envelope["Token"].startswith(token)
    assert events_from_envelope(envelope) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<html>502</html>", "SNS envelope is not JSON"),
        (b"\xff\xfe{", "SNS envelope is not UTF-8"),
        ("[1, 2]", "SNS envelope must be a JSON object, got an array"),
        ('{"Message": "x"}', "Type is missing"),
        ('{"Type": "Notification"}', "Message is missing"),
        ('{"Type": "Notification", "Message": {"notificationType": "Bounce"}}', "Message is an object, not a string"),
        (42, "got int"),
    ],
)
def test_malformed_envelopes(body, message):
    with pytest.raises(FeedbackFormatError) as caught:
        parse_envelope(body)
    assert message in str(caught.value)


def test_envelope_without_message_key_is_an_error_not_a_keyerror():
    with pytest.raises(FeedbackFormatError, match="has no Message"):
        events_from_envelope({"Type": "Notification"})


# --- malformed SES messages -------------------------------------------------------------------


def broken(name: str, change) -> dict:
    data = copy.deepcopy(sample(name))
    change(data)
    return data


BOUNCE = "ses_notification_bounce_permanent_with_dsn.json"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("not json at all", "SES message is not JSON"),
        ("", "SES message is not JSON"),
        ("[]", "must be a JSON object, got an array"),
        ('"Bounce"', "must be a JSON object, got a string"),
        (["notificationType"], "got list"),
        ({"mail": {"messageId": "m"}}, "neither notificationType nor eventType"),
        ({"notificationType": 7, "mail": {"messageId": "m"}}, "notificationType must be a non-empty string"),
        (broken(BOUNCE, lambda d: d.pop("mail")), "mail is missing"),
        (broken(BOUNCE, lambda d: d.update(mail=[])), "mail is an array (list), not an object"),
        (broken(BOUNCE, lambda d: d["mail"].pop("messageId")), "mail.messageId is missing"),
        (broken(BOUNCE, lambda d: d["mail"].update(messageId="  ")), "mail.messageId is missing or empty"),
        (broken(BOUNCE, lambda d: d.pop("bounce")), "has no bounce object"),
        (broken(BOUNCE, lambda d: d["bounce"].pop("bouncedRecipients")), "bounce.bouncedRecipients is missing"),
        (broken(BOUNCE, lambda d: d["bounce"].update(bouncedRecipients=RECIPIENT)), "bouncedRecipients is a string, not a list"),
        (broken(BOUNCE, lambda d: d["bounce"].update(bouncedRecipients=[])), "bouncedRecipients is empty"),
        (broken(BOUNCE, lambda d: d["bounce"].update(bouncedRecipients=[{"status": "5.1.1"}])), "bouncedRecipients[0] has no emailAddress"),
        (broken(BOUNCE, lambda d: d["bounce"].update(timestamp="yesterday")), "bounce.timestamp is not an ISO 8601 timestamp"),
        (broken(BOUNCE, lambda d: [d["bounce"].pop("timestamp"), d["mail"].pop("timestamp")]), "neither bounce.timestamp nor mail.timestamp"),
        (broken("ses_notification_complaint_no_feedback.json", lambda d: d["complaint"].pop("complainedRecipients")), "complaint.complainedRecipients is missing"),
        (broken("ses_notification_delivery.json", lambda d: d["delivery"].pop("recipients")), "delivery.recipients is missing"),
        (broken("ses_notification_delivery.json", lambda d: d["delivery"].update(recipients=[None])), "delivery.recipients[0] must be an email address"),
        (broken("ses_event_send.json", lambda d: d["mail"].update(destination=RECIPIENT)), "mail.destination is a string, not a list"),
    ],
)
def test_malformed_ses_messages_say_what_is_wrong(message, expected):
    with pytest.raises(FeedbackFormatError) as caught:
        parse_ses_message(message)
    assert expected in str(caught.value)


def test_format_error_is_a_newsletter_error():
    assert issubclass(FeedbackFormatError, NewsletterError)
    with pytest.raises(NewsletterError):
        parse_ses_message("{")


def test_missing_event_timestamp_falls_back_to_mail_timestamp():
    data = broken(BOUNCE, lambda d: d["bounce"].pop("timestamp"))
    data["mail"]["timestamp"] = "2024-03-04T11:15:02.118+02:00"
    event = only(parse_ses_message(data))
    assert event.occurred_at == utc(2024, 3, 4, 9, 15, 2, 118000)
    assert event.occurred_at.tzinfo == timezone.utc
