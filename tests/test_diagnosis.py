"""A bounce's codes and words classed (newsletter.feedback.diagnosis, pure): enhanced status code
first, the basic reply code next, words last; a full mailbox, a block and the sender's own
problems never hard; and every search linear in the text, hostile text included."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.feedback import diagnosis
from newsletter.feedback.diagnosis import ENHANCED_CODES, WORDING, diagnose, enhanced_type

P, T, U = "Permanent", "Transient", "Undetermined"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("5.1.1", P),  # no such user
        ("5.1.2", P),  # no such domain
        ("5.1.10", P),  # null MX
        ("5.2.1", P),  # mailbox disabled
        ("5.4.4", P),  # unable to route
        ("5.0.0", P),
        ("5.1.7", U),  # our sender address malformed: the sender's problem
        ("5.1.8", U),  # our sender's domain refused: the sender's problem
        ("5.2.2", T),  # mailbox full: the known exception
        ("4.2.2", T),
        ("4.4.7", T),
        ("5.4.7", U),  # delivery time expired
        ("5.7.1", U),  # refused by policy, e.g. as spam: not the address's fault
        ("5.7.26", U),  # DMARC failure: the sender's fault
        ("5.3.4", U),  # message too big
        ("5.6.0", U),
        ("5.9.9", U),  # a subject nobody registered
        ("", U),
        (None, U),
        ("garbage", U),
        ("2.0.0", None),
    ],
)
def test_enhanced_codes(status, expected):
    assert enhanced_type(status) == expected


@pytest.mark.parametrize(
    ("text", "status", "expected", "by"),
    [
        # the enhanced code wins over the basic reply code
        ("550 5.2.2 mailbox full", None, T, "5.2.2"),
        ("452 5.1.1 <x@example.org>: unknown", None, P, "5.1.1"),
        ("550 4.2.1 try later", None, T, "4.2.1"),
        # a 5xx reply without one: permanent unless the words say otherwise
        ("550 Requested action not taken: mailbox unavailable", None, P, "550"),
        ("554 delivery error: dd This user doesn't have an account", None, P, "554"),
        ("552 Requested mail action aborted: exceeded storage allocation", None, T, "552, words: 'storage allocation'"),
        ("554 Message refused: listed at a DNSBL", None, U, "554, words: 'dnsbl'"),
        ("550 Please try again later", None, T, "550, words: 'try again later'"),
        ("550-Our policy does not allow this", None, U, "550, words: 'policy'"),
        ("smtp; 550 Requested action not taken", None, P, "550"),  # a DSN's Diagnostic-Code without Status
        # 4xx: transient, whatever the words
        ("421 Service not available, user unknown", None, T, "421"),
        # a full mailbox, a block, the sender's problem: never hard, whatever the code
        ("550 5.1.1 <x@example.org>: mailbox is full", None, T, "5.1.1, words: 'mailbox is full'"),
        ("550 5.1.1 user over quota", None, T, "5.1.1, words: 'quota'"),
        ("550 5.1.1 blocked: sender address rejected", None, U, "5.1.1, words: 'blocked'"),
        ("550 5.0.0 Message rejected as spam", None, U, "5.0.0, words: 'spam'"),
        ("550 5.1.1 retry timeout exceeded", None, U, "5.1.1, words: 'retry timeout exceeded'"),
        # ...but words never make a code harder than it is
        ("550 5.7.1 user unknown", None, U, "5.7.1"),
        ("452 4.2.2 permanent error", None, T, "4.2.2"),
        # the DSN's Status field decides, unless it is x.0.0 and the diagnostic says more
        ("smtp; 550 5.1.1 <x@example.org>: user unknown", "5.0.0", P, "5.1.1"),
        ("smtp; 552 5.2.2 over quota", "5.0.0", T, "5.2.2"),
        ("smtp; 550 5.7.1 blocked", "5.0.0", U, "5.7.1"),
        ("smtp; 550 5.1.1 user unknown", "5.1.1", P, "5.1.1"),
        ("smtp; 451 4.4.1 no answer from host", "4.4.1", T, "4.4.1"),
        # success codes of a quoted SMTP dialogue are passed over
        ("<<< 250 2.1.0 Ok\n<<< 550 5.1.1 <x@example.org>... User unknown", None, P, "5.1.1"),
        # Exchange's #5.0.0 with the remote server's own code
        ("<mx.example.org #5.0.0 smtp;550 5.1.1 <x@example.org>... User unknown>", None, P, "5.1.1"),
        # no code: the words alone
        ("Sorry, no mailbox here by that name.", None, P, "words: 'no mailbox'"),
        ("The recipient's mailbox is full", None, T, "words: 'mailbox is full'"),
        ("This is a permanent error; I've given up.", None, P, "words: 'permanent error'"),
        ("The recipient server did not accept our requests to connect: timed out", None, T, "words: 'timed out'"),
        ("Something went wrong.", None, U, "nothing"),
        ("", None, U, "nothing"),
        # no false codes: IP addresses, version numbers, numbers in prose
        ("host [192.0.2.25] running Postfix 3.5.1 handled 500 messages", None, U, "nothing"),
        ("\u0665.\u0661.\u0661 user", None, U, "nothing"),  # Arabic-Indic digits are no status code
    ],
)
def test_codes_first_words_second(text, status, expected, by):
    found = diagnose(text, status)
    assert (found.bounce_type, found.by) == (expected, by)


def test_a_success_is_no_bounce():
    assert diagnose("250 2.0.0 Ok: queued", "2.0.0").bounce_type is None


def test_the_tables_say_what_the_rules_say():
    assert ENHANCED_CODES["5.2.2"] == T and ENHANCED_CODES["5.1.8"] == U and ENHANCED_CODES["5.7"] == U
    overruling = [group for group in WORDING if group.overrules_codes]
    assert overruling and all(group.bounce_type != P for group in overruling)
    phrases = [phrase for group in WORDING for phrase in group.phrases]
    assert all(phrase == phrase.lower().strip() for phrase in phrases)
    for said in ("permanent error", "user unknown", "no such user", "mailbox unavailable", "does not exist"):
        assert diagnose(f"The server said: {said}.").bounce_type == P, said
    for said in ("mailbox full", "over quota", "temporarily", "try again later"):
        assert diagnose(f"The server said: {said}.").bounce_type == T, said


@settings(max_examples=300, deadline=None)
@given(st.text(), st.one_of(st.none(), st.text(max_size=12)))
def test_any_text_is_classed_without_raising(text, status):
    found = diagnose(text, status)
    assert found.bounce_type in (P, T, U, None)
    assert found.bounce_type is not None or (status or "").strip().startswith("2")


HOSTILE = {
    "dashes": "-" * 1_000_000,  # one line of dashes
    "dots": "5." * 500_000,  # almost a status code, half a million times
    "one-word": "a" * 1_000_000,
    "codes-and-blanks": ("550" + " " * 1000 + "\n") * 1000,
    "blanks": " \t" * 500_000 + "x",
    "said": ("said:" + "-" * 3) * 125_000,
    "words": "mailbox " * 125_000,  # the start of many phrases, none of them whole
}


@pytest.mark.parametrize("hostile", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_megabyte_of_hostile_text_is_searched_in_linear_time(hostile):
    """Each pattern over the whole megabyte (diagnose itself reads only the first TEXT_LIMIT
    characters). Linear, each takes a tenth of a second or so; one that backtracked over the
    text would take hours."""
    lowered = hostile.lower()
    searches = [(diagnosis._ENHANCED, hostile), (diagnosis._REPLY, hostile)]
    searches += [(pattern, lowered) for _, pattern in diagnosis._WORDING]
    for pattern, text in searches:
        started = time.perf_counter()
        list(pattern.finditer(text))
        assert time.perf_counter() - started < 2.0, pattern.pattern[:60]
    started = time.perf_counter()
    diagnose(hostile, "5.0.0")
    assert time.perf_counter() - started < 0.5
