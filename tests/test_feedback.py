"""SES feedback parsing against the real AWS documentation samples in shared/samples/ses/."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from newsletter.errors import NewsletterError
from newsletter.feedback.ses_events import (
    FeedbackEvent,
    FeedbackFormatError,
    events_from_envelope,
    parse_envelope,
    parse_ses_message,
)

# CI clones the repository into some folder with shared/ beside it, as /work/main and /work/shared are here.
SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples" / "ses"

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
EVENT_MESSAGE_ID = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"
EVENT_FEEDBACK_ID = "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000"


def text(name: str) -> str:
    return (SAMPLES / name).read_text(encoding="utf-8")


def sample(name: str) -> dict:
    return json.loads(text(name))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def only(events: list[FeedbackEvent]) -> FeedbackEvent:
    assert len(events) == 1, events
    return events[0]


def test_samples_folder_resolves_beside_the_repository():
    assert SAMPLES.is_dir(), SAMPLES
    assert SAMPLES.parent.parent.name == "shared"
    present = {p.name for p in SAMPLES.glob("ses_*.json")}
    assert present == set(SES_SAMPLES), "a sample was added or removed: cover it here"


@pytest.mark.parametrize("name", SES_SAMPLES)
def test_every_sample_parses_with_message_id_and_aware_utc_timestamps(name):
    data = sample(name)
    from_text = parse_ses_message(text(name))
    assert from_text, "every SES sample names at least one event"
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
    assert event.recipient == "jane@example.com"
    assert event.ses_message_id == "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000"
    assert event.feedback_id == "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000"
    assert event.bounce_type == "Permanent"
    assert event.bounce_subtype == "General"
    assert event.detail == "smtp; 550 5.1.1 <jane@example.com>... User"
    assert event.occurred_at == utc(2016, 1, 27, 14, 59, 38, 237000)
    assert event.hard_bounce is True
    assert event.soft_bounce is False
    assert event.is_complaint is False
    assert event.complaint_type is None
    assert event.format == "notification"
    assert event.tags == {}


def test_permanent_bounce_without_dsn_names_two_recipients_not_the_whole_destination():
    events = parse_ses_message(text("ses_notification_bounce_permanent_no_dsn.json"))
    assert [e.recipient for e in events] == ["jane@example.com", "richard@example.com"]
    for event in events:
        assert event.kind == "bounce"
        assert event.hard_bounce
        assert event.detail is None
        assert event.feedback_id == "00000137860315fd-869464a4-8680-4114-98d3-716fe35851f9-000000"
        assert event.ses_message_id == "00000137860315fd-34208509-5b74-41f3-95c5-22c1edc3c924-000000"


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
    assert event.recipient == "jane@example.com"


def test_complaint_with_feedback_report_is_abuse():
    event = only(parse_ses_message(text("ses_notification_complaint_abuse_with_feedback.json")))
    assert event.kind == "complaint"
    assert event.recipient == "richard@example.com"
    assert event.complaint_type == "abuse"
    assert event.is_complaint is True
    assert event.feedback_id == "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000"
    assert event.ses_message_id == "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000"
    assert event.bounce_type is None and not event.hard_bounce and not event.soft_bounce
    # Only a bounce is ever a hard or soft bounce, whatever else the event carries.
    assert not dataclasses.replace(event, bounce_type="Permanent").hard_bounce
    assert not dataclasses.replace(event, bounce_type="Transient").soft_bounce


def test_complaint_without_feedback_report_still_counts():
    event = only(parse_ses_message(text("ses_notification_complaint_no_feedback.json")))
    assert event.kind == "complaint"
    assert event.recipient == "richard@example.com"
    assert event.complaint_type is None
    assert event.is_complaint is True
    assert event.feedback_id == "0000013786031775-fea503bc-7497-49e1-881b-a0379bb037d3-000000"


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
    assert event.recipient == "jane@example.com"
    assert event.detail == "250 ok: Message 64111812 accepted"
    assert event.feedback_id is None
    assert not event.hard_bounce and not event.soft_bounce and not event.is_complaint

    data = sample("ses_notification_delivery.json")
    data["delivery"]["recipients"] = ["jane@example.com", "Mary@Example.com"]
    data["mail"]["destination"] = ["jane@example.com", "Mary@Example.com", "richard@example.com"]
    events = parse_ses_message(data)
    assert [e.recipient for e in events] == ["jane@example.com", "Mary@Example.com"]  # original case kept


# --- event-publishing format ------------------------------------------------------------------


CONFIG_SET_TAGS = {
    "ses:configuration-set": ["ConfigSet"],
    "ses:source-ip": ["192.0.2.0"],
    "ses:from-domain": ["example.com"],
    "ses:caller-identity": ["ses_user"],
}


def test_event_bounce():
    event = only(parse_ses_message(text("ses_event_bounce.json")))
    assert event.format == "event"
    assert (event.kind, event.recipient) == ("bounce", "recipient@example.com")
    assert event.ses_message_id == EVENT_MESSAGE_ID
    assert event.feedback_id == EVENT_FEEDBACK_ID
    assert event.hard_bounce
    assert event.detail == "smtp; 550 5.1.1 user unknown"
    assert event.occurred_at == utc(2017, 8, 5, 0, 41, 2, 669000)  # bounce.timestamp, not mail.timestamp
    assert event.tags == CONFIG_SET_TAGS


def test_event_complaint():
    event = only(parse_ses_message(text("ses_event_complaint.json")))
    assert (event.kind, event.recipient, event.complaint_type) == ("complaint", "recipient@example.com", "abuse")
    assert event.is_complaint
    assert event.feedback_id == EVENT_FEEDBACK_ID
    assert event.tags == CONFIG_SET_TAGS


def test_event_delivery_with_custom_tags():
    event = only(parse_ses_message(text("ses_event_delivery.json")))
    assert (event.kind, event.recipient) == ("delivery", "recipient@example.com")
    assert event.detail == "250 2.6.0 Message received"
    assert event.occurred_at == utc(2016, 10, 19, 23, 21, 4, 133000)
    assert event.tags["myCustomTag1"] == ["myCustomTagValue1"]
    assert event.tags["ses:outgoing-ip"] == ["192.0.2.0"]
    assert len(event.tags) == 7


def test_event_send_uses_destination_and_falls_back_to_mail_timestamp():
    event = only(parse_ses_message(text("ses_event_send.json")))
    assert (event.kind, event.recipient) == ("send", "recipient@example.com")
    assert event.occurred_at == utc(2016, 10, 14, 5, 2, 16, 645000)  # send is {}: mail.timestamp
    assert event.feedback_id is None
    assert event.tags["myCustomTag2"] == ["myCustomTagValue2"]

    data = sample("ses_event_send.json")
    data["mail"]["destination"] = ["a@example.com", "b@example.com"]
    assert [e.recipient for e in parse_ses_message(data)] == ["a@example.com", "b@example.com"]


def test_event_reject_carries_the_reason():
    event = only(parse_ses_message(text("ses_event_reject.json")))
    assert event.kind == "reject"
    assert event.recipient == "sender@example.com"  # this sample's mail.destination
    assert event.detail == "Bad content"
    assert event.occurred_at == utc(2016, 10, 14, 17, 38, 15, 211000)


def test_event_without_destination_has_no_recipient():
    data = sample("ses_event_reject.json")
    del data["mail"]["destination"]
    event = only(parse_ses_message(data))
    assert event.kind == "reject"
    assert event.recipient is None
    assert event.detail == "Bad content"


def test_event_delivery_delay():
    event = only(parse_ses_message(text("ses_event_delivery_delay.json")))
    assert (event.kind, event.recipient) == ("delivery_delay", "recipient@example.com")
    assert event.detail == "TransientCommunicationFailure"
    assert event.occurred_at == utc(2020, 6, 16, 0, 25, 40, 95000)
    assert event.tags == {"ses:configuration-set": ["ConfigSet"]}
    assert not event.soft_bounce and not event.hard_bounce

    data = sample("ses_event_delivery_delay.json")
    data["mail"]["destination"] = ["a@example.com", "b@example.com", "c@example.com"]
    data["deliveryDelay"]["delayedRecipients"] = [{"emailAddress": "b@example.com", "status": "4.4.1"}]
    assert [e.recipient for e in parse_ses_message(data)] == ["b@example.com"]  # only the delayed one


def test_event_subscription():
    event = only(parse_ses_message(text("ses_event_subscription.json")))
    assert (event.kind, event.recipient) == ("subscription", "recipient@example.com")
    assert event.ses_message_id == "EXAMPLEe4bccb684-777bc8de-afa7-4970-92b0-f515137b1497-000000"
    assert event.occurred_at == utc(2022, 1, 12, 1, 0, 17, 910000)
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
    assert event.recipient == "recipient@example.com"
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
    assert dataclasses.replace(event, recipient="JANE@Example.COM").key == event.key
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


def test_documentation_envelope_carries_hello_world_which_is_not_ses_json():
    envelope = parse_envelope(text("sns_envelope_notification.json"))
    assert envelope["Type"] == "Notification"
    assert envelope["MessageId"] == "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
    with pytest.raises(FeedbackFormatError, match="not JSON") as caught:
        events_from_envelope(envelope)
    assert "Hello world!" in str(caught.value)


@pytest.mark.parametrize("name", ["ses_notification_bounce_permanent_no_dsn.json", "ses_event_complaint.json"])
def test_ses_message_inside_an_sns_envelope(name):
    body = json.dumps(envelope_around(json.dumps(sample(name))))
    for given in (body, body.encode("utf-8"), json.loads(body)):
        envelope = parse_envelope(given)
        assert envelope["MessageId"] == "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
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
    assert (event.kind, event.recipient) == ("delivery", "jane@example.com")


@pytest.mark.parametrize(
    "name", ["sns_envelope_subscription_confirmation.json", "sns_envelope_unsubscribe_confirmation.json"]
)
def test_confirmation_envelopes_give_no_events(name):
    envelope = parse_envelope(text(name))
    assert envelope["Type"] in ("SubscriptionConfirmation", "UnsubscribeConfirmation")
    assert envelope["Token"] == "2336412f37..."
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
        (broken(BOUNCE, lambda d: d["bounce"].update(bouncedRecipients="jane@example.com")), "bouncedRecipients is a string, not a list"),
        (broken(BOUNCE, lambda d: d["bounce"].update(bouncedRecipients=[])), "bouncedRecipients is empty"),
        (broken(BOUNCE, lambda d: d["bounce"].update(bouncedRecipients=[{"status": "5.1.1"}])), "bouncedRecipients[0] has no emailAddress"),
        (broken(BOUNCE, lambda d: d["bounce"].update(timestamp="yesterday")), "bounce.timestamp is not an ISO 8601 timestamp"),
        (broken(BOUNCE, lambda d: [d["bounce"].pop("timestamp"), d["mail"].pop("timestamp")]), "neither bounce.timestamp nor mail.timestamp"),
        (broken("ses_notification_complaint_no_feedback.json", lambda d: d["complaint"].pop("complainedRecipients")), "complaint.complainedRecipients is missing"),
        (broken("ses_notification_delivery.json", lambda d: d["delivery"].pop("recipients")), "delivery.recipients is missing"),
        (broken("ses_notification_delivery.json", lambda d: d["delivery"].update(recipients=[None])), "delivery.recipients[0] must be an email address"),
        (broken("ses_event_send.json", lambda d: d["mail"].update(destination="x@example.com")), "mail.destination is a string, not a list"),
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
    data["mail"]["timestamp"] = "2016-01-27T16:59:38.237+02:00"
    event = only(parse_ses_message(data))
    assert event.occurred_at == utc(2016, 1, 27, 14, 59, 38, 237000)
    assert event.occurred_at.tzinfo == timezone.utc
