"""Free-form bounces of Postfix, Exim, Sendmail, qmail, Exchange and Gmail (tests/free_form_samples.py,
written from their documented forms) read whole by newsletter.feedback.bounces: recognised, the
failed recipient found, and given the reason its codes and words say (hard only for the address's
own reasons)."""

from __future__ import annotations

import datetime as dt
import email

import bounce_samples
import free_form_samples as samples
import pytest

from newsletter.feedback.bounces import Addresses, read_message
from newsletter.feedback.diagnosis import diagnose
from newsletter.feedback.parts import notification_text
from newsletter.feedback.reasons import HARD_REASONS
from newsletter.feedback.recipients import sections
from newsletter.keys import DeliveryTokens, tagged

KEY = b"free-form-bounce-tests-key-0123456789"
TOKENS = DeliveryTokens(KEY)
ADDRESSES = Addresses("bounces@news.cssrweb.org", "unsubscribe@news.cssrweb.org", "+")
NOW = dt.datetime(2024, 1, 10, 12, 0, tzinfo=dt.UTC)
READER = "jane.reader@example.org"
VERP = tagged("bounces@news.cssrweb.org", TOKENS.make(41, "bounce"))
ORIGINAL = bounce_samples.original_head(READER, "<7.41.0011223344556677@news.cssrweb.org>", envelope=VERP)


def read_case(make) -> tuple[str, str | None, str | None, str | None, str | None]:
    """(kind, recipient, reason, bounce type, detail) of the one event the sample gives."""
    reading = read_message(make(VERP, READER, ORIGINAL), ADDRESSES, NOW)
    assert [TOKENS.read(token, role) for role, token in reading.tokens] == [41]
    assert len(reading.events) == 1, reading
    (event,) = reading.events
    return reading.kind, event.recipient, event.reason, event.bounce_type, event.detail


@pytest.mark.parametrize(
    ("mta", "case", "make", "expected"),
    samples.CASES,
    ids=[f"{mta}: {case}" for mta, case, _, _ in samples.CASES],
)
def test_free_form_bounces_are_classed_as_their_codes_say(mta, case, make, expected):
    kind, recipient, reason, bounce_type, detail = read_case(make)
    assert (kind, recipient, reason) == ("bounce", READER, expected), detail
    assert (bounce_type == "Permanent") == (expected in HARD_REASONS)
    assert detail and READER in detail  # the recipient's own lines (the store removes the address)


def test_the_table_covers_each_mail_system_hard_and_soft():
    by_mta: dict[str, set[bool]] = {}
    for mta, _, _, expected in samples.CASES:
        by_mta.setdefault(mta, set()).add(expected in HARD_REASONS)
    assert sorted(by_mta) == ["Exchange", "Exim", "Gmail", "Postfix", "Sendmail", "qmail"]
    for mta, hard in by_mta.items():
        assert hard == {True, False}, mta
    assert all(sum(1 for row in samples.CASES if row[0] == mta) >= 3 for mta in by_mta)


def test_a_warning_that_it_is_still_trying_is_no_bounce():
    reading = read_message(samples.gmail_delayed(VERP, READER, ORIGINAL), ADDRESSES, NOW)
    assert reading.kind == "delay" and [e.kind for e in reading.events] == ["delivery_delay"]


def test_each_recipient_is_classed_by_its_own_lines():
    """One Exim bounce, three recipients: each one's reason, not the first one's for all."""
    people = ["a.full@example.org", "b.gone@example.org", "c.blocked@example.org"]
    reasons = {
        people[0]: "    452 4.2.2 <{r}>: Mailbox full",
        people[1]: "    550 5.1.1 <{r}>: User unknown",
        people[2]: "    550 5.7.1 <{r}>: Message rejected as spam",
    }
    raw = samples.exim(VERP, people[0], ORIGINAL, reasons[people[0]])
    rest = "".join(f"  {p}\r\n    SMTP error from remote mail server after RCPT TO:<{p}>:\r\n{reasons[p].format(r=p)}\r\n" for p in people[1:])
    raw = raw.replace(b"\r\n\r\n------ This is a copy", ("\r\n" + rest + "\r\n------ This is a copy").encode(), 1)
    raw = raw.replace(f"X-Failed-Recipients: {people[0]}".encode(), f"X-Failed-Recipients: {', '.join(people)}".encode())
    reading = read_message(raw, ADDRESSES, NOW)
    assert {e.recipient: (e.reason, e.bounce_type) for e in reading.events} == {
        people[0]: ("mailbox-full", "Transient"),
        people[1]: ("user-unknown", "Permanent"),
        people[2]: ("content-rejected", "Undetermined"),
    }


def decided_by(make) -> str:
    """What decided, found again as the reader finds it (its private steps: for the table only)."""
    msg = email.message_from_bytes(make(VERP, READER, ORIGINAL))
    text = notification_text(msg)
    preamble, own_lines = sections(text, [READER], [READER])
    found = diagnose(own_lines[READER])
    return found.by if found.by != "nothing" else f"the text before: {diagnose(preamble).by}"


def table() -> str:
    """The table as text: `python tests/test_free_form.py` prints it."""
    rows = [("mail system", "case", "expected", "read as", "decided by")]
    for mta, case, make, expected in samples.CASES:
        _, _, reason, _, _ = read_case(make)
        rows.append((mta, case, expected, str(reason), decided_by(make)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)


if __name__ == "__main__":
    print(table())
