"""The bounce mailbox's messages read without a server: DSNs, free-form bounces, ARF reports,
auto-replies and mailed unsubscribes (newsletter.feedback.bounces, pure); its limits (size,
recipients, time); the delivery tokens they carry (newsletter.keys); the envelope sender and
mailto the composer writes; and the [bounces] and [mailbox] settings. How codes and words are
classed: tests/test_diagnosis.py; the free-form table of six mail systems: tests/test_free_form.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import statistics
import time

import bounce_samples as samples
import free_form_samples as free_form
import pytest
from conftest import ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.config.mail import BounceSettings
from newsletter.feedback.bounces import RECIPIENT_LIMIT, SIZE_LIMIT, Addresses, read_message
from newsletter.feedback.reasons import HARD_REASONS, REASONS
from newsletter.keys import DeliveryTokens, TokenSigner, tag_of, tagged

KEY = b"k" * 16 + b"ey-for-the-bounce-tests-0123"
TOKENS = DeliveryTokens(KEY)
ADDRESSES = Addresses("bounces@news.cssrweb.org", "unsubscribe@news.cssrweb.org", "+")
NOW = dt.datetime(2024, 1, 10, 12, 0, tzinfo=dt.UTC)
READER = "jane.reader@example.org"
VERP = tagged("bounces@news.cssrweb.org", TOKENS.make(41, "bounce"))
MAILTO = tagged("unsubscribe@news.cssrweb.org", TOKENS.make(41, "unsubscribe"))
ORIGINAL_ID = "<7.41.0011223344556677@news.cssrweb.org>"
ORIGINAL = samples.original_head(READER, ORIGINAL_ID, envelope=VERP, mailto=MAILTO)


def read(raw: bytes):
    return read_message(raw, ADDRESSES, NOW)


# --- what each kind of message becomes ------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "bounce"),
    [("5.1.1", "bounce", "Permanent"), ("4.2.2", "bounce", "Transient"), ("5.2.2", "bounce", "Transient")],
)
def test_rfc3464_dsn(status, kind, bounce):
    reading = read(samples.dsn(VERP, READER, status, f"550 {status} <{READER}>: no", ORIGINAL))
    assert reading.kind == kind
    (event,) = reading.events
    assert (event.kind, event.recipient, event.bounce_type) == ("bounce", READER, bounce)
    assert event.detail.startswith(status) and event.original_id == ORIGINAL_ID
    assert reading.tokens == (("bounce", TOKENS.make(41, "bounce")),)
    assert TOKENS.read(reading.tokens[0][1], "bounce") == 41


def test_a_dsn_block_that_names_no_recipient_takes_the_one_its_text_names():
    raw = samples.dsn(VERP, READER, "5.1.1", "550 5.1.1 User unknown", ORIGINAL)
    raw = raw.replace(f"Final-Recipient: rfc822; {READER}\r\nOriginal-Recipient: rfc822;{READER}\r\n".encode(), b"")
    assert b"Final-Recipient" not in raw and f"<{READER}>: 550".encode() in raw
    (event,) = read(raw).events
    assert (event.recipient, event.reason, event.bounce_type) == (READER, "user-unknown", "Permanent")


def test_an_empty_mailer_daemon_address_is_a_mail_system():
    """DragonFly's dma writes `From: MAILER-DAEMON <>`: no address, yet a mail system."""
    raw = (
        f"From: MAILER-DAEMON <>\r\nTo: {VERP}\r\nSubject: Mail delivery failed\r\n\r\n"
        f"This is the DragonFly Mail Agent v0.13 at relay.example.net.\r\n\r\n"
        f"There was an error delivering your mail to <{READER}>.\r\n\r\n"
        f"mx.example.org [192.0.2.25] did not like our RCPT TO:\r\n552 5.2.2 <{READER}>: Mailbox full\r\n\r\n"
        f"Original message follows.\r\n\r\n{ORIGINAL}"
    ).encode()
    reading = read(raw)
    assert [(e.recipient, e.reason) for e in reading.events] == [(READER, "mailbox-full")]
    assert reading.tokens == (("bounce", TOKENS.make(41, "bounce")),)
    person = raw.replace(b"From: MAILER-DAEMON <>", b"From: Jane <jane@example.net>").replace(b"Mail delivery failed", b"Hello")
    assert read(person).kind == "unrecognised"  # a person's mail is never read as a bounce


def test_a_report_without_a_usable_status_part_is_read_as_prose():
    raw = samples.dsn(VERP, READER, "5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found", ORIGINAL)
    head, _, tail = raw.partition(b"Final-Recipient:")
    raw = head + b"X-Nothing: here\r\n" + tail.partition(b"\r\n\r\n")[2]  # the status part keeps its per-message block only
    assert b"Action:" not in raw and b"Content-Type: message/delivery-status" in raw
    (event,) = read(raw).events
    assert (event.recipient, event.reason, event.bounce_type) == (READER, "user-unknown", "Permanent")


def test_a_bounce_forwarded_by_a_person_is_not_read():
    bounce = samples.dsn("someone@example.net", READER, "5.1.1", "550 5.1.1 User unknown", ORIGINAL)
    raw = (
        f"From: Someone <someone@example.net>\r\nTo: {VERP}\r\nSubject: Fwd: Undelivered Mail\r\n"
        f'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="fwd"\r\n\r\n--fwd\r\n'
        f"Content-Type: text/plain\r\n\r\nI got this back.\r\n--fwd\r\nContent-Type: message/rfc822\r\n\r\n"
    ).encode() + bounce + b"\r\n--fwd--\r\n"
    reading = read(raw)
    assert reading.kind == "unrecognised" and not reading.events


@pytest.mark.parametrize("field", ["Original-Rcpt-To", "Removal-Recipient"])
def test_a_complaint_in_a_text_part_names_the_complained_address_wherever_it_is(field):
    raw = (
        f"From: fbl@isp.example.net\r\nTo: fbl@news.cssrweb.org\r\nSubject: complaint\r\n\r\n"
        f"Feedback-Type: abuse\r\nVersion: 1\r\n{field}: {READER}\r\nOriginal-Mail-From: <{VERP}>\r\n\r\n"
    ).encode()
    reading = read(raw)
    assert reading.kind == "complaint" and [e.recipient for e in reading.events] == [READER]
    assert reading.tokens == (("bounce", TOKENS.make(41, "bounce")),)


def test_a_delay_notice_is_not_a_bounce():
    reading = read(samples.dsn(VERP, READER, "4.4.1", "connect to mail.example.org: timed out", ORIGINAL, action="delayed"))
    assert reading.kind == "delay"
    assert [e.kind for e in reading.events] == ["delivery_delay"]
    assert all(e.bounce_type is None for e in reading.events)


@pytest.mark.parametrize("maker", [samples.postfix_old, samples.exim, samples.qmail], ids=["postfix", "exim", "qmail"])
def test_free_form_bounces(maker):
    reading = read(maker(VERP, READER, ORIGINAL))
    assert reading.kind == "bounce"
    (event,) = reading.events
    assert (event.recipient, event.bounce_type) == (READER, "Permanent")
    assert "5.1.1" in event.detail
    assert event.original_id == ORIGINAL_ID
    assert reading.tokens == (("bounce", TOKENS.make(41, "bounce")),)


def test_free_form_bounce_without_a_code_is_classed_by_its_words():
    raw = samples.qmail(VERP, READER, ORIGINAL).replace(b"(#5.1.1)", b"")
    (event,) = read(raw).events
    assert event.bounce_type == "Permanent"  # "no mailbox here by that name"
    says_nothing = free_form.postfix(VERP, READER, ORIGINAL, "host mx.example.org[192.0.2.25] said: something odd")
    (event,) = read(says_nothing).events
    assert event.bounce_type == "Undetermined"


def test_arf_abuse_report_is_a_complaint_of_the_delivery_its_envelope_names():
    reading = read(samples.arf("fbl@news.cssrweb.org", ORIGINAL, original_mail_from=VERP))
    assert reading.kind == "complaint"
    (event,) = reading.events
    assert (event.kind, event.complaint_type) == ("complaint", "abuse")
    assert {TOKENS.read(token, role) for role, token in reading.tokens} == {41}
    assert {role for role, _ in reading.tokens} == {"bounce", "unsubscribe"}


def test_arf_not_spam_and_auth_failure_are_no_complaints():
    for feedback_type in ("not-spam", "auth-failure"):
        reading = read(samples.arf("fbl@news.cssrweb.org", ORIGINAL, original_mail_from=VERP, feedback_type=feedback_type))
        assert reading.kind == "unrecognised" and not reading.events, feedback_type
        assert feedback_type in reading.note


def test_mailed_unsubscribe_whatever_the_subject_and_body():
    for subject, body in [("unsubscribe", ""), ("Re: your letter", "please stop"), ("=?utf-8?b?2KXZhNi62KfYoQ==?=", "")]:
        reading = read(samples.unsubscribe_mail(MAILTO, READER, subject=subject, body=body))
        assert reading.kind == "unsubscribe" and [e.kind for e in reading.events] == ["unsubscribe"]
        assert reading.tokens == (("unsubscribe", TOKENS.make(41, "unsubscribe")),)
    # a mail system may change the case of the local part
    upper = read(samples.unsubscribe_mail(MAILTO.upper(), READER))
    assert TOKENS.read(upper.tokens[0][1], "unsubscribe") == 41


def test_auto_replies_change_nothing_even_when_a_detector_would_call_them_bounces():
    from flufl.bounce import all_failures

    ooo = samples.out_of_office(VERP, READER)
    assert read(ooo).kind == "auto-reply" and not read(ooo).events
    # the same reply without its auto-reply headers: flufl.bounce's heuristics see a bounce of
    # the colleague's address in the text; it does not come from a mail system, so it is not one
    bare = b"\r\n".join(
        line for line in ooo.split(b"\r\n") if not line.startswith((b"Auto-Submitted", b"X-Autoreply", b"Precedence"))
    ).replace(b"Subject: Out of Office: ", b"Subject: ")
    assert any(all_failures(email.message_from_bytes(bare)))
    assert read(bare).kind == "unrecognised" and not read(bare).events
    receipt = read(samples.read_receipt(VERP, READER))
    assert receipt.kind == "auto-reply" and not receipt.events


def test_an_exim_bounce_is_a_bounce_although_it_says_auto_submitted():
    raw = samples.exim(VERP, READER, ORIGINAL)
    assert b"Auto-Submitted: auto-replied" in raw
    assert read(raw).kind == "bounce"


def test_without_a_token_the_quoted_message_id_is_kept_for_the_record_only():
    """The reader finds no token; the poller then acts on nobody (tests/test_mailbox.py)."""
    raw = samples.dsn("bounces@news.cssrweb.org", READER, "5.1.1", "550 5.1.1 unknown", ORIGINAL)
    assert f"Return-Path: <{VERP}>".encode() in raw  # quoted in the returned headers: not where it came to
    reading = read(raw)
    assert reading.tokens == () and reading.acts
    assert reading.events[0].original_id == ORIGINAL_ID and reading.events[0].recipient == READER


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe\x00garbage",
        b"From: \r\n\r\n",
        b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\n",
        b"Content-Type: multipart/report; report-type=feedback-report; boundary=x\r\n\r\n--x--\r\n",
        b"From: MAILER-DAEMON@x.org\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n",
        b"Date: Thu, 99 Foo 99999 99:99:99\r\nFrom: postmaster@x.org\r\n\r\n" + b"x" * 100_000,
    ],
)
def test_odd_mail_never_raises(raw):
    reading = read(raw)
    assert reading.kind in ("unrecognised", "unreadable", "bounce", "delay")
    assert reading.occurred_at <= NOW


SEEDS = [
    samples.dsn(VERP, READER, "5.1.1", f"550 5.1.1 <{READER}>: User unknown", ORIGINAL),
    samples.dsn(VERP, READER, "4.4.1", "connect to mail.example.org: timed out", ORIGINAL, action="delayed"),
    samples.arf("fbl@news.cssrweb.org", ORIGINAL, original_mail_from=VERP),
    *(make(VERP, READER, ORIGINAL) for _, _, make, _ in free_form.CASES[::4]),
]
EDITS = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=1)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.sampled_from([b"\r\n\r\n", b"--", b"Status: 5.0.0\r\n", b"<", b"@", b"\xff\xfe", b"=?utf-8?b?"])),
    st.tuples(st.just("cut"), st.floats(0, 1), st.just(b"")),
)


@settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SEEDS), st.lists(EDITS, min_size=1, max_size=5))
def test_a_mutated_bounce_is_read_without_raising_and_its_reasons_keep_the_rules(seed, edits):
    raw = seed
    for what, where, data in edits:
        at = int(where * len(raw))
        raw = raw[:at] + data + raw[at + (1 if what == "flip" else 0) :] if what != "cut" else raw[:at]
    reading = read(raw)
    # "unreadable" is the reader's own failure, caught: no mutation may lead to it
    assert reading.kind in ("bounce", "delay", "delivered", "complaint", "unsubscribe", "auto-reply", "unrecognised"), reading.note
    assert len(reading.events) <= RECIPIENT_LIMIT
    for event in reading.events:
        if event.kind == "bounce":
            assert event.reason in REASONS
            assert (event.bounce_type == "Permanent") == (event.reason in HARD_REASONS)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"charset=us-ascii", b"charset=us-\x00ascii"),  # a charset name no codec could have
        (b"From: MAILER-DAEMON@mx.example.net", b"From: =?utf-8?b?=?utf-8?b?z MAILER-DAEMON@mx.example.net"),  # broken base64
        (b"Subject: Undelivered Mail", b"Subject: =?\xfftf-8?b?2LHYs9in2YTYqQ==?= Undelivered Mail"),  # no such charset
    ],
    ids=["nul-in-charset", "broken-encoded-word", "encoded-word-charset"],
)
def test_what_hypothesis_found_is_read_not_given_up(old, new):
    raw = samples.dsn(VERP, READER, "5.1.1", f"550 5.1.1 <{READER}>: User unknown", ORIGINAL)
    assert old in raw
    reading = read(raw.replace(old, new, 1))
    assert reading.kind == "bounce" and [e.reason for e in reading.events] == ["user-unknown"], reading.note


def test_a_date_in_the_future_counts_as_now():
    raw = samples.dsn(VERP, READER, "4.2.2", "full", ORIGINAL).replace(b"Date: ", b"Date: Fri, 1 Jan 2100 00:00:00 +0000\r\nX-Old: ", 1)
    assert read(raw).occurred_at == NOW


# --- limits -------------------------------------------------------------------------------

MANY = [f"p{n:05d}@example.org" for n in range(10_000)]


@pytest.mark.parametrize(
    "make",
    [lambda: samples.dsn_many(VERP, MANY, "5.1.1", ORIGINAL), lambda: samples.exim_many(VERP, MANY, ORIGINAL)],
    ids=["dsn", "exim"],
)
def test_a_bounce_naming_10000_recipients_gives_at_most_the_limit(make):
    raw = make()
    assert 500_000 < len(raw) < SIZE_LIMIT
    reading = read(raw)
    assert reading.kind == "bounce" and len(reading.events) == RECIPIENT_LIMIT == 100
    assert reading.beyond_limit == 10_000 - RECIPIENT_LIMIT
    assert all(e.bounce_type == "Permanent" for e in reading.events)
    assert reading.tokens == (("bounce", TOKENS.make(41, "bounce")),)


def test_only_the_first_megabyte_is_read():
    """The report comes first, the returned letter last: a bounce with a 3 MB copy of our letter
    is read as a bounce from its first megabyte, in about the time that megabyte takes."""
    letter = ORIGINAL + "\r\n" + ("The letter, with its images. " * 40 + "\r\n") * 2_800
    raw = samples.dsn(VERP, READER, "5.1.1", "550 5.1.1 User unknown", ORIGINAL).replace(
        b"Content-Type: text/rfc822-headers\r\n\r\n" + ORIGINAL.encode(),
        b"Content-Type: message/rfc822\r\n\r\n" + letter.encode(),
    )
    assert len(raw) > 3 * SIZE_LIMIT
    reading = read(raw)
    assert reading.kind == "bounce" and [e.bounce_type for e in reading.events] == ["Permanent"]
    assert TOKENS.read(reading.tokens[0][1], "bounce") == 41


HOSTILE_BODIES = {
    "dashes": b"-" * 1_000_000,
    "one word": b"a" * 1_000_000,
    "at signs": b"a@" * 500_000,
    "addresses": b"<a@b.c>: " * 110_000,
    "dots": b"5." * 500_000,
    "blank lines": b"\r\n" * 500_000,
    "below this line": (b"x" * 1000 + b"\r\n") * 1000,
}


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_a_hostile_megabyte_from_a_mail_system_is_read_in_time(body):
    head = (
        b"From: MAILER-DAEMON@mx.example.net\r\nTo: " + VERP.encode() + b"\r\n"
        b"X-Failed-Recipients: " + READER.encode() + b"\r\nSubject: failure notice\r\n\r\n"
        b"This is a permanent error. The following address(es) failed:\r\n\r\n  " + READER.encode() + b"\r\n"
    )
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        reading = read(head + body)
        timings.append(time.perf_counter() - started)
    assert reading.kind in ("bounce", "unrecognised", "unreadable")
    assert statistics.median(timings) < 1.5, timings


# --- delivery tokens ------------------------------------------------------------------------


def test_delivery_tokens():
    token = TOKENS.make(123456, "bounce")
    assert len(token) == 32 and token == token.lower() and token.isalnum()
    assert TOKENS.read(token, "bounce") == 123456
    assert TOKENS.read(token.upper(), "bounce") == 123456
    assert TOKENS.read(token, "unsubscribe") is None  # a bounce token unsubscribes nobody
    assert DeliveryTokens(b"another-key-0123456789-abcdefghijk").read(token, "bounce") is None
    assert TOKENS.read(TOKENS.make(0, "bounce"), "bounce") is None  # names no delivery
    assert "123456" not in token and "@" not in token
    for i in range(len(token)):  # any change of a character is refused
        for other in "a7":
            changed = token[:i] + other + token[i + 1 :]
            if changed != token:
                assert TOKENS.read(changed, "bounce") is None, changed
    for bad in ("", token[:-1], token + "a", token[:-1] + "=", token[:-1] + "é", "x" * 32):
        assert TOKENS.read(bad, "bounce") is None
    # the unsubscribe signer carries them, with keys of their own
    assert TokenSigner(KEY).deliveries.read(token, "bounce") == 123456


def test_tagged_addresses():
    token = TOKENS.make(9, "bounce")
    address = tagged("bounces@news.cssrweb.org", token)
    assert address == f"bounces+{token}@news.cssrweb.org"
    assert tag_of(address, "bounces@news.cssrweb.org") == token
    assert tag_of(address.upper(), "Bounces@News.cssrweb.org") == token.upper()
    assert tag_of(f"bounces-{token}@news.cssrweb.org", "bounces@news.cssrweb.org", "-") == token
    for other in (f"bounces+{token}@elsewhere.org", "bounces@news.cssrweb.org", "bounces+@news.cssrweb.org",
                  f"xbounces+{token}@news.cssrweb.org", f"unsubscribe+{token}@news.cssrweb.org"):
        assert tag_of(other, "bounces@news.cssrweb.org") is None, other


# --- what the composer writes ---------------------------------------------------------------


def _compose(build, config, signer, delivery_id=77):
    from newsletter.message.composer import Recipient, VariantComposer

    variant = build.variants["en"]
    recipient = Recipient("nour@example.net", "Nour", "ab" * 16, delivery_id)
    return VariantComposer(variant, config).compose(recipient, signer=signer, campaign_id=3, now=NOW)


def _list_unsubscribe(data: bytes) -> str:
    return email.message_from_bytes(data)["List-Unsubscribe"]


def test_composer_tags_envelope_sender_and_mailto_with_bounces_set(year_end_build):
    config = dataclasses.replace(
        year_end_build.config,
        unsubscribe_mailto="unsubscribe@news.example.org",
        bounces=BounceSettings("bounces@news.example.org"),
    )
    signer = TokenSigner(KEY)
    out = _compose(year_end_build, config, signer)
    assert out.sender == "updates@news.example.org"  # From, and SES's sender, unchanged
    local, _, domain = out.return_path.partition("@")
    assert domain == "news.example.org" and local.startswith("bounces+")
    assert signer.deliveries.read(local.removeprefix("bounces+"), "bounce") == 77
    mailto = [t for t in _list_unsubscribe(out.data).replace(" ", "").split(",") if t.startswith("<mailto:")]
    (target,) = mailto
    address = target.removeprefix("<mailto:").split("?")[0]
    token = tag_of(address, "unsubscribe@news.example.org")
    assert signer.deliveries.read(token, "unsubscribe") == 77
    assert "nour" not in out.return_path and "nour" not in address
    # a test copy names no delivery
    copy = _compose(year_end_build, config, None, delivery_id=0)
    assert copy.return_path == "bounces@news.example.org"
    assert "<mailto:unsubscribe@news.example.org?subject=unsubscribe>" in _list_unsubscribe(copy.data)


def test_composer_without_bounces_keeps_from_as_envelope_sender(year_end_build):
    config = dataclasses.replace(year_end_build.config, unsubscribe_mailto="unsubscribe@news.example.org")
    out = _compose(year_end_build, config, TokenSigner(KEY))
    assert out.return_path is None
    assert "<mailto:unsubscribe@news.example.org?subject=unsubscribe-" in _list_unsubscribe(out.data)


# --- settings -------------------------------------------------------------------------------


def _config(tmp_path, extra: str):
    from newsletter.config import load_config

    path = tmp_path / "newsletter.toml"
    path.write_text((ROOT / "newsletter.toml").read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")
    return load_config(path)


def test_bounces_and_mailbox_settings(tmp_path):
    config = _config(
        tmp_path,
        '[bounces]\naddress = "bounces@news.example.org"\n\n'
        '[mailbox]\nhost = "imap.example.org"\nuser = "bounces"\nsecurity = "starttls"\n',
    )
    assert config.bounces == BounceSettings("bounces@news.example.org", "+")
    box = config.mailbox
    assert (box.host, box.port, box.security, box.user, box.folder, box.processed_folder) == (
        "imap.example.org", 143, "starttls", "bounces", "INBOX", "processed",
    )
    (tmp_path / "none").mkdir()
    plain = _config(tmp_path / "none", "")
    assert plain.mailbox is None and plain.bounces is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[bounces]\naddress = "not an address"\n', "bounces.address: not an email address"),
        ('[bounces]\naddress = "b@x.org"\ndelimiter = "#"\n', "bounces.delimiter: expected one of + - ="),
        ('[bounces]\naddress = "b+x@x.org"\n', "bounces.address: the local part must not contain the delimiter"),
        ('[bounces]\naddres = "b@x.org"\n', "bounces.addres: unknown key"),
        ('[mailbox]\nuser = "u"\n', "mailbox.host: missing"),
        ('[mailbox]\nhost = "h.org"\nuser = "u"\nsecurity = "none"\n', "mailbox.security: expected one of tls, starttls"),
        ('[mailbox]\nhost = "h.org"\nuser = "u"\nport = 0\n', "mailbox.port: expected a whole number from 1 to 65535"),
        ('[mailbox]\nhost = "h.org"\nuser = "u"\nprocessed_folder = "INBOX"\n', "mailbox.processed_folder: must differ"),
        ('[mailbox]\nhost = "h.org"\nuser = "u"\nfolder = "Boîte"\n', "mailbox.folder: expected a folder name"),
        ('[mailbox]\nhost = "h.org"\nuser = "u"\npassword = "x"\n', "mailbox.password: unknown key"),
    ],
)
def test_bad_settings_name_their_key(tmp_path, extra, message):
    from newsletter.errors import BadInput

    with pytest.raises(BadInput) as caught:
        _config(tmp_path, extra)
    assert message in str(caught.value), str(caught.value)
