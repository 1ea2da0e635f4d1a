"""Amazon SES v2 through moto in real server mode on loopback, plus the error conversion.

The `newsletter` command talks to moto over HTTP exactly as it would to SES (boto3 with
`[ses] endpoint_url`); sent mail is read back from moto's `/moto-api/data.json`:

    {"ses": {"RawMessage": [{"id": "<MessageId returned by SendEmail>",
                             "source": "updates@news.cssrweb.org",
                             "destinations": ["<Destination.ToAddresses...>", "<To/Cc/Bcc header addresses>"],
                             "raw_data": "<the MIME message as a str>"}, ...], ...}}

moto appends the addresses of the message's To/Cc/Bcc headers (formatted with their display
names) to the SendEmail destinations, so one recipient shows up twice there. moto does not
keep ConfigurationSetName or EmailTags, and has no GetAccount.
"""

from __future__ import annotations

import email
import email.policy
import json
import urllib.request
from collections import Counter
from email.utils import getaddresses

import boto3
import pytest

from conftest import reset_moto
from botocore.exceptions import ClientError
from click.testing import CliRunner
from sqlalchemy import select

from newsletter import domain as d
from newsletter.store import tables as s
from newsletter.cli import cli
from newsletter.config.delivery import SESSettings
from newsletter.message.composer import Outgoing
from newsletter.sending.providers import ses as ses_module
from newsletter.sending.providers.ses import SESFactory, convert
from store_helpers import set_status

SENDER = "updates@news.cssrweb.org"
REGION = "us-east-1"
LIST = "ses-readers"
SUBSCRIBERS = 20


# --- moto server ------------------------------------------------------------------------------


@pytest.fixture
def moto(moto_url: str, aws_env) -> str:
    """The server's URL, reset to empty for this test."""
    reset_moto(moto_url)
    assert raw_messages(moto_url) == []
    return moto_url


def raw_messages(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=10) as response:
        data = json.load(response)
    return data.get("ses", {}).get("RawMessage", [])


def sesv2(url: str):
    return boto3.client("sesv2", endpoint_url=url, region_name=REGION)


# --- the project ------------------------------------------------------------------------------


def ses_project(project, url: str, ses_extra: str = ""):
    """The `project` fixture's throwaway project, its newsletter.toml pointed at moto."""
    return type(project)(
        project.root,
        f'[send]\nrate = 500\nthreads = 4\n\n[ses]\nregion = "{REGION}"\nendpoint_url = "{url}"\n{ses_extra}',
    )


def run(project, *args: str):
    return CliRunner().invoke(cli, [*args, "--config", str(project.config_path)], env=project.env, catch_exceptions=False)


def import_subscribers(project, count: int = SUBSCRIBERS) -> list[str]:
    result = run(project, "subscribers", "import", str(project.write_subscribers(count)), "--list", LIST)
    assert result.exit_code == 0, result.output
    assert f"{LIST}: {count} added" in result.output
    return [sub.email for sub in project.store().subscribers.all(LIST, d.ACTIVE)]


def send(project):
    return run(project, "send", str(project.issue), "--list", LIST, "--provider", "ses", "--yes")


def campaign_id(project) -> int:
    campaigns = project.store().campaigns.all()
    assert len(campaigns) == 1
    return campaigns[0].id


def deliveries(project, cid: int) -> dict[str, tuple[str, str | None]]:
    """address -> (state, provider_message_id)"""
    store = project.store()
    with store.db.engine.connect() as conn:
        rows = conn.execute(
            select(s.subscribers.c.email, s.deliveries.c.state, s.deliveries.c.provider_message_id)
            .select_from(s.deliveries.join(s.subscribers, s.deliveries.c.subscriber_id == s.subscribers.c.id))
            .where(s.deliveries.c.campaign_id == cid)
        )
        return {address: (state, message_id) for address, state, message_id in rows}


def check_one_message_each(url: str, expected: list[str]) -> dict[str, str]:
    """Every expected address got exactly one well-formed message; returns address -> moto id."""
    sent = raw_messages(url)
    by_address: dict[str, str] = {}
    for item in sent:
        assert item["source"] == SENDER
        # SendEmail named one recipient; moto adds the To header's address after it
        envelope = item["destinations"][0]
        assert {addr for _, addr in getaddresses(item["destinations"])} == {envelope}, item["destinations"]
        assert envelope not in by_address, f"{envelope} got more than one message"
        by_address[envelope] = item["id"]

        msg = email.message_from_bytes(item["raw_data"].encode("utf-8"), policy=email.policy.default)
        assert msg.get_content_type() == "multipart/alternative"
        assert [part.get_content_type() for part in msg.iter_parts()] == ["text/plain", "text/html"]
        assert [addr for _, addr in getaddresses(msg.get_all("To", []))] == [envelope]
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        targets = [t.strip() for t in str(msg["List-Unsubscribe"]).split(",")]
        assert any(t.startswith("<https://") and t.endswith(">") for t in targets), targets
    assert sorted(by_address) == sorted(expected)
    assert len(sent) == len(expected)
    return by_address


# --- 1. a verified sender ---------------------------------------------------------------------


def test_send_through_ses_one_message_per_active_subscriber(moto, project):
    project = ses_project(project, moto)
    sesv2(moto).create_email_identity(EmailIdentity=SENDER)
    active = import_subscribers(project)
    assert len(active) == SUBSCRIBERS
    # one person leaves before the send: they must get nothing
    store = project.store()
    leaver = next(sub for sub in store.subscribers.all(LIST) if sub.email == active[3])
    assert set_status(store, leaver.id, d.UNSUBSCRIBED)
    active.remove(leaver.email)

    result = send(project)
    assert result.exit_code == 0, result.output

    moto_ids = check_one_message_each(moto, active)
    cid = campaign_id(project)
    counts = store.ledger.delivery_counts(cid)
    assert counts[d.SENT] == SUBSCRIBERS - 1
    assert sum(counts.values()) == counts[d.SENT], counts
    ledger = deliveries(project, cid)
    assert leaver.email not in ledger
    # the ledger keeps the MessageId SendEmail returned, the one SES's feedback will name
    assert {address: message_id for address, (_, message_id) in ledger.items()} == moto_ids
    assert {state for state, _ in ledger.values()} == {d.SENT}
    assert len(set(moto_ids.values())) == len(moto_ids)


def test_the_provider_alone_returns_moto_s_message_ids(moto):
    """The lean path (one connection, SigV4, the JSON body) as moto reads it: each MessageId
    returned is the one moto gave, and the raw message arrives byte for byte."""
    sesv2(moto).create_email_identity(EmailIdentity=SENDER)
    provider = SESFactory(SESSettings(region=REGION, endpoint_url=moto)).open()
    data = "From: updates@news.cssrweb.org\r\nTo: reader@example.org\r\nSubject: =?utf-8?b?2LPZhNin2YU=?=\r\n\r\nسلام\r\n".encode()
    try:
        ids = [provider.send(Outgoing(SENDER, f"reader{n}@example.org", f"<{n}@x>", data)) for n in range(3)]
    finally:
        provider.close()
    sent = raw_messages(moto)
    assert [item["id"] for item in sent] == ids and len(set(ids)) == 3
    assert [item["destinations"][0] for item in sent] == [f"reader{n}@example.org" for n in range(3)]
    assert all(item["raw_data"].encode("utf-8") == data for item in sent)


# --- 2. configuration set and tags --------------------------------------------------------------


def test_configuration_set_and_tags_are_sent(moto, project, monkeypatch):
    project = ses_project(project, moto, 'configuration_set = "newsletter"\ntags = { campaign = "year-end", issue = "2022-12" }\n')
    client = sesv2(moto)
    client.create_email_identity(EmailIdentity=SENDER)
    client.create_configuration_set(ConfigurationSetName="newsletter")
    active = import_subscribers(project, 5)

    # moto keeps neither field, so look at the requests as they go over the wire
    requests: list[dict] = []
    real_client = ses_module._client

    def capturing_client(settings):
        c = real_client(settings)
        c.meta.events.register("before-send.sesv2.SendEmail", lambda request, **_: requests.append(json.loads(request.body)))
        return c

    monkeypatch.setattr(ses_module, "_client", capturing_client)
    result = send(project)
    assert result.exit_code == 0, result.output

    check_one_message_each(moto, active)
    assert len(requests) == len(active)
    for body in requests:
        assert body["ConfigurationSetName"] == "newsletter"
        assert sorted(body["EmailTags"], key=lambda t: t["Name"]) == [
            {"Name": "campaign", "Value": "year-end"},
            {"Name": "issue", "Value": "2022-12"},
        ]
        assert body["FromEmailAddress"] == SENDER
        assert len(body["Destination"]["ToAddresses"]) == 1
        assert set(body["Destination"]) == {"ToAddresses"}
        # our own List-Unsubscribe: never SES's ListManagementOptions as well
        assert "ListManagementOptions" not in body
    assert sorted(body["Destination"]["ToAddresses"][0] for body in requests) == sorted(active)


# --- 3. an unverified sender ------------------------------------------------------------------


def test_unverified_sender_stops_the_campaign_then_resumes(moto, project):
    project = ses_project(project, moto)
    active = import_subscribers(project)

    result = send(project)
    assert result.exit_code == 1, result.output
    assert "MessageRejected" in result.output
    assert SENDER in result.output  # moto: "Did not have authority to send from email …"
    assert "run the same send again to resume" in result.output
    assert raw_messages(moto) == []

    cid = campaign_id(project)
    store = project.store()
    counts = store.ledger.delivery_counts(cid)
    assert counts[d.SENT] == 0
    assert counts[d.PENDING] == SUBSCRIBERS, counts  # none failed, uncertain or left claimed
    assert {state for state, _ in deliveries(project, cid).values()} == {d.PENDING}
    campaign = store.campaigns.get(cid)
    assert campaign.state == d.CAMPAIGN_PAUSED
    assert "MessageRejected" in (campaign.stop_reason or "")

    sesv2(moto).create_email_identity(EmailIdentity=SENDER)
    result = send(project)
    assert result.exit_code == 0, result.output
    assert "resumed" in result.output

    moto_ids = check_one_message_each(moto, active)
    counts = store.ledger.delivery_counts(cid)
    assert counts[d.SENT] == SUBSCRIBERS and sum(counts.values()) == SUBSCRIBERS, counts
    assert {address: message_id for address, (_, message_id) in deliveries(project, cid).items()} == moto_ids
    assert store.campaigns.get(cid).state == d.CAMPAIGN_DONE


# --- 4. converting SES errors -----------------------------------------------------------------


def client_error(code: str, message: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "SendEmail"
    )


def kind(exc) -> str:
    flags = [name for name in ("retryable", "uncertain", "fatal") if getattr(exc, name)]
    assert len(flags) <= 1, flags
    return flags[0] if flags else "failed"


@pytest.mark.parametrize(
    ("code", "message", "status", "expected"),
    [
        ("TooManyRequestsException", "Maximum sending rate exceeded.", 429, "retryable"),
        ("Throttling", "Maximum sending rate exceeded.", 400, "retryable"),
        ("ThrottlingException", "Rate exceeded", 400, "retryable"),
        ("LimitExceededException", "Limit exceeded", 400, "retryable"),
        ("SomethingNew", "Slow down", 429, "retryable"),
        # a daily quota does not come back within a backoff: stop, resumable, whatever the code
        ("Throttling", "Daily message quota exceeded.", 400, "fatal"),
        ("ThrottlingException", "Daily message quota exceeded.", 400, "fatal"),
        ("TooManyRequestsException", "Daily message quota exceeded.", 429, "fatal"),
        ("SendingPausedException", "Sending is paused for this account.", 400, "fatal"),
        ("AccountSuspendedException", "The account has been suspended.", 400, "fatal"),
        ("MessageRejected", "Email address is not verified.", 400, "fatal"),
        ("MailFromDomainNotVerifiedException", "MAIL FROM domain not verified.", 400, "fatal"),
        ("NotFoundException", "Configuration set <newsletter> does not exist.", 404, "fatal"),
        ("BadRequestException", "Invalid tag value.", 400, "fatal"),
        ("UnrecognizedClientException", "The security token included in the request is invalid.", 403, "fatal"),
        # a 5xx not known as transient: the message may have gone out; never repeated on its own
        ("InternalServerError", "Internal error", 500, "uncertain"),
        ("", "", 502, "uncertain"),
        # some other 4xx: this one recipient failed for good
        ("InvalidParameterValue", "Missing final '@domain'", 400, "failed"),
    ],
)
def test_convert(code, message, status, expected):
    exc = convert(client_error(code, message, status))
    assert kind(exc) == expected, str(exc)
    if code:
        assert code in str(exc)


def test_convert_internal_failure_is_uncertain():
    """SendEmail is not idempotent: after a 500 the message may have gone out, so it is
    neither retried automatically nor failed for good; --resend-uncertain sends it again."""
    exc = convert(client_error("InternalFailure", "An internal error occurred.", 500))
    assert kind(exc) == "uncertain"


# --- 5. the provider's own rate ---------------------------------------------------------------


def test_max_rate_without_get_account_is_none(moto):
    settings = SESSettings(region=REGION, endpoint_url=moto)
    factory = SESFactory(settings)
    with pytest.raises(ClientError):  # moto really lacks GetAccount: the None below is the fallback
        factory.client().get_account()
    assert factory.max_rate() is None


class StubClient:
    def __init__(self, answer):
        self.answer = answer
        self.calls = 0

    def get_account(self):
        self.calls += 1
        return self.answer


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 12.0}}, 14.0),
        ({"SendQuota": {"MaxSendRate": 1}}, 1.0),
        ({"SendQuota": {"MaxSendRate": 0.0}}, None),
        ({"SendQuota": {"MaxSendRate": -1.0}}, None),
        ({}, None),
    ],
)
def test_max_rate_from_get_account(answer, expected):
    stub = StubClient(answer)
    rate = SESFactory(SESSettings(region=REGION), client=stub).max_rate()
    assert stub.calls == 1
    assert rate == expected
    assert rate is None or isinstance(rate, float)
