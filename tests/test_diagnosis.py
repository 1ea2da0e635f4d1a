"""A bounce's codes and words read for a reason (newsletter.feedback.diagnosis, pure): the
enhanced status code when it decides alone, then the MTA's words, then the code that says less,
the reply code and the command it answered; hard only for the address's own reasons, never for
a `5` alone; and every search linear in the text, hostile text included."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.feedback import diagnosis
from newsletter.feedback import reasons as r
from newsletter.feedback.diagnosis import CODES, code_meaning, diagnose, ses_reason
from newsletter.feedback.phrases import BLOCKED_WORDS, PHRASES

P, T, U = "Permanent", "Transient", "Undetermined"


@pytest.mark.parametrize(
    ("status", "meaning"),
    [
        ("5.1.1", (r.USER_UNKNOWN, False)),  # no such user, unless the words say more (a full mailbox)
        ("5.1.2", (r.HOST_UNKNOWN, False)),
        ("5.1.6", (r.HAS_MOVED, True)),
        ("5.1.8", (r.SENDER_REJECTED, True)),  # our sender's domain refused: about us
        ("5.2.2", (r.MAILBOX_FULL, True)),
        ("4.2.2", (r.MAILBOX_FULL, True)),
        ("5.3.4", (r.MESSAGE_TOO_BIG, True)),
        ("5.7.26", (r.AUTHENTICATION, True)),
        ("5.7.25", (r.AUTHENTICATION, True)),  # no PTR
        ("5.0.0", (None, False)),  # says nothing beyond its class
        ("5.7.1", (None, False)),
        ("5.9.9", (None, False)),  # a subject nobody registered: its class only
        ("", (None, False)),
        (None, (None, False)),
        ("garbage", (None, False)),
    ],
)
def test_what_each_code_means(status, meaning):
    assert code_meaning(status) == meaning


@pytest.mark.parametrize(
    ("text", "status", "reason", "by"),
    [
        # a code that decides alone
        ("550 5.2.2 mailbox full", None, r.MAILBOX_FULL, "5.2.2"),
        ("550 5.1.8 <bounces@news.example.org>: Sender address rejected: Domain not found", None, r.SENDER_REJECTED, "5.1.8"),
        # Status: 5.0.0 never decides alone: the diagnostic's own code, or its words
        ("smtp; 550-5.2.2 The email account that you tried to reach is over quota", "5.0.0", r.MAILBOX_FULL, "5.2.2"),
        ("smtp; 550 Message rejected as spam", "5.0.0", r.CONTENT_REJECTED, "5.0.0, words: 'rejected as'"),
        ("smtp; 550 No PTR record for 192.0.2.10", "5.0.0", r.AUTHENTICATION, "5.0.0, words: 'no ptr'"),
        ("smtp; 554 Too many recipients", "5.0.0", r.RATE_LIMITED, "5.0.0, words: 'too many recipients'"),
        ("smtp; 550 Unrouteable address", "5.0.0", r.HOST_UNKNOWN, "5.0.0, words: 'unrouteable'"),
        # a code servers use loosely: the words say more
        ("550 5.1.1 <x@example.org>: mailbox is full", None, r.MAILBOX_FULL, "5.1.1, words: 'mailbox is full'"),
        ("550 5.2.1 This account has been disabled or discontinued", None, r.SUSPENDED, "5.2.1, words: 'account has been disabled'"),
        ("550 5.7.1 <x@example.org>: Recipient address rejected: User unknown", None, r.USER_UNKNOWN, "5.7.1, words: 'recipient address rejected: user'"),
        ("550 5.5.0 Requested action not taken: mailbox unavailable", None, r.USER_UNKNOWN, "5.5.0, words: 'mailbox unavailable'"),
        ("554 5.7.1 Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org", None, r.BLOCKED, "5.7.1, words: 'blocked using'"),
        ("550 5.7.1 Unauthenticated email from example.org is not accepted due to domain's DMARC policy", None, r.AUTHENTICATION, "5.7.1, words: 'unauthenticated'"),
        # ... and when they say nothing, the code; the catch-all words of a block say less than a code
        ("550 5.1.1 <x@example.org>", None, r.USER_UNKNOWN, "5.1.1"),
        ("550 5.1.1 <x@example.org>: blocked", None, r.USER_UNKNOWN, "5.1.1"),
        ("550 5.7.1 <x@example.org>: access denied", None, r.BLOCKED, "5.7.1, words: 'access denied'"),
        ("550 access denied", None, r.BLOCKED, "550, words: 'access denied'"),
        ("<mx.example.org #5.0.0 smtp;550 5.1.1 <x@example.org>... User unknown>", None, r.USER_UNKNOWN, "5.1.1, words: 'user unknown'"),
        # no enhanced code: words, then the reply code and the command it answered
        ("550 Requested action not taken: mailbox unavailable", None, r.USER_UNKNOWN, "550, words: 'mailbox unavailable'"),
        ("552 Requested mail action aborted: exceeded storage allocation", None, r.MAILBOX_FULL, "552, words: 'exceeded storage'"),
        ("550 Sorry (in reply to MAIL FROM command)", None, r.SENDER_REJECTED, "550, in reply to MAIL FROM"),
        ("554 go away (in reply to HELO command)", None, r.BLOCKED, "554, in reply to HELO"),
        ("550 Something odd", None, r.UNDETERMINED, "550"),
        ("Sorry, no mailbox here by that name.", None, r.USER_UNKNOWN, "words: 'no mailbox'"),
        ("Something went wrong.", None, r.UNDETERMINED, "nothing"),
        ("", None, r.UNDETERMINED, "nothing"),
        # success codes of a quoted SMTP dialogue are passed over
        ("<<< 250 2.1.0 Ok\n<<< 550 5.1.1 <x@example.org>... Unknown", None, r.USER_UNKNOWN, "5.1.1"),
        # no false codes: IP addresses, version numbers, numbers in prose
        ("host [192.0.2.25] running Postfix 3.5.1 handled 500 messages", None, r.UNDETERMINED, "nothing"),
        ("\u0665.\u0661.\u0661 user", None, r.UNDETERMINED, "nothing"),  # Arabic-Indic digits are no status code
    ],
)
def test_every_signal_in_order_of_trust(text, status, reason, by):
    found = diagnose(text, status)
    assert (found.reason, found.by) == (reason, by)


@pytest.mark.parametrize(
    ("text", "status", "bounce_type"),
    [
        ("550 5.1.1 user unknown", None, P),
        ("smtp; 550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", "5.0.0", P),
        ("550 Host unknown", None, P),
        ("550 5.0.0 something odd", None, U),  # a 5 alone is never hard
        ("554 5.7.1 rejected by policy", None, U),
        ("550 5.1.1 mailbox full", None, T),
        ("452 4.2.2 over quota", None, T),
        ("421 4.7.0 Try again later", None, T),
        ("450 4.1.1 user unknown", None, P),  # the reason decides: a dead address, whatever the class
    ],
)
def test_hard_only_for_the_address_own_reasons(text, status, bounce_type):
    assert diagnose(text, status).bounce_type == bounce_type


def test_a_success_is_no_bounce():
    assert diagnose("250 2.0.0 Ok: queued", "2.0.0").bounce_type is None


def test_the_tables_use_the_vocabulary():
    assert {meaning for meaning, _ in CODES.values()} <= r.REASONS | {None}
    assert {reason for reason, _ in PHRASES} <= r.REASONS
    phrases = [phrase for _, group in PHRASES for phrase in group] + list(BLOCKED_WORDS)
    assert all(phrase == phrase.lower().strip() for phrase in phrases)
    assert not [code for code, (meaning, decides) in CODES.items() if decides and meaning in r.HARD_REASONS and code[0] == "4"]


@pytest.mark.parametrize(
    ("bounce_type", "subtype", "diagnostic", "reason"),
    [
        ("Permanent", "General", "smtp; 550 5.1.1 user unknown", r.USER_UNKNOWN),
        ("Permanent", "NoEmail", None, r.USER_UNKNOWN),
        ("Permanent", "Suppressed", "Amazon SES has suppressed sending to this address because it has a recent history of bouncing as an invalid address.", r.USER_UNKNOWN),
        ("Transient", "MailboxFull", "smtp; 552 5.2.2", r.MAILBOX_FULL),
        ("Transient", "MessageTooLarge", None, r.MESSAGE_TOO_BIG),
        ("Transient", "ContentRejected", None, r.CONTENT_REJECTED),
        ("Transient", "AttachmentRejected", None, r.CONTENT_REJECTED),
        ("Transient", "General", "smtp; 550 5.7.26 This mail is unauthenticated", r.AUTHENTICATION),
        ("Undetermined", "Undetermined", None, r.UNDETERMINED),
        ("Permanent", "General", 42, r.UNDETERMINED),  # a diagnostic that is no text
    ],
)
def test_ses_bounces_in_the_same_words(bounce_type, subtype, diagnostic, reason):
    assert ses_reason(bounce_type, subtype, diagnostic) == reason


@settings(max_examples=300, deadline=None)
@given(st.text(), st.one_of(st.none(), st.text(max_size=12)))
def test_any_text_is_classed_without_raising(text, status):
    found = diagnose(text, status)
    assert found.reason in r.REASONS
    assert found.bounce_type in (P, T, U, None)
    assert (found.bounce_type == P) == (found.reason in r.HARD_REASONS) or found.bounce_type is None
    assert found.bounce_type is not None or (status or "").strip().startswith("2") or found.by.startswith("2")


HOSTILE = {
    "dashes": "-" * 1_000_000,  # one line of dashes
    "dots": "5." * 500_000,  # almost a status code, half a million times
    "one-word": "a" * 1_000_000,
    "codes-and-blanks": ("550" + " " * 1000 + "\n") * 1000,
    "blanks": " \t" * 500_000 + "x",
    "said": ("said:" + "-" * 3) * 125_000,
    "words": "mailbox " * 125_000,  # the start of many phrases, none of them whole
    "in reply to": "in reply to " * 80_000,
}


@pytest.mark.trials  # seconds each, and bounded by time: the whole suite's
@pytest.mark.parametrize("hostile", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_megabyte_of_hostile_text_is_searched_in_linear_time(hostile):
    """Each pattern over the whole megabyte (diagnose itself reads only the first TEXT_LIMIT
    characters). Linear, each takes a tenth of a second or so; one that backtracked over the
    text would take hours."""
    lowered = hostile.lower()
    searches = [(diagnosis._ENHANCED, hostile), (diagnosis._REPLY, hostile), (diagnosis._COMMAND, hostile)]
    searches += [(pattern, lowered) for _, pattern in diagnosis._WORDING] + [(diagnosis._BLOCKED_WORDS, lowered)]
    for pattern, text in searches:
        started = time.perf_counter()
        list(pattern.finditer(text))
        assert time.perf_counter() - started < 2.0, pattern.pattern[:60]
    started = time.perf_counter()
    diagnose(hostile, "5.0.0")
    assert time.perf_counter() - started < 0.5
