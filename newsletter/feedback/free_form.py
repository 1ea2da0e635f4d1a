"""Bounces written as prose (no RFC 3464 report, or one without a usable status part): Postfix's
older form, Sendmail (v5 and v8), Exim, qmail, Exchange 2003-2019, Office 365, Gmail, Yahoo,
Domino and Notes, Courier, OpenSMTPD, DragonFly, the Japanese carriers, the spam gateways and
others. Pure.

Only mail from a mail system is read this way (newsletter.feedback.bounces decides). Its failed
recipients are found by newsletter.feedback.recipients; each one's own lines are what the mail
system says of it, and the lines before the first ("This is a permanent error") its context,
read when its own lines say nothing. A notice that it is still trying is a delay, not a bounce.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.message import Message

from newsletter.feedback.parts import header
from newsletter.feedback.reading import RECIPIENT_LIMIT, Failure
from newsletter.feedback.recipients import SECTION_CHARS, failed_recipients, sections

# a warning that delivery is still being tried: the subject, or the words of the notice
_DELAY_SUBJECT = re.compile(
    r"^\s*(?:warning:|delayed mail|delivery delayed|mail delivery delayed|delivery status notification \(delay\)|"
    r"message delayed|delivery delay|undelivered mail warning|\[?postmaster\]? ?warning)",
    re.IGNORECASE,
)
_DELAY_TEXT = re.compile(
    r"\b(?:this is a warning message only|will keep trying|will continue trying|will continue to try|"
    r"still trying|is still being retried|will be retried|will retry|not yet been delivered|"
    r"has been delayed|is delayed|was delayed|delivery is delayed|no need to resend|you do not need to resend|"
    r"no action is required on your part)",
    re.IGNORECASE,
)
_GAVE_UP = re.compile(r"\b(?:permanent|gave up|giving up|given up|could not be delivered|couldn.t be delivered)", re.I)


def free_form_failures(msg: Message, text: str, ours: Iterable[str]) -> tuple[list[Failure], int] | None:
    """The failures a prose bounce names (at most RECIPIENT_LIMIT) and how many more it names;
    None when it names nobody."""
    failed = failed_recipients(msg, text, ours)
    if not failed:
        return None
    kept, beyond = failed[:RECIPIENT_LIMIT], max(len(failed) - RECIPIENT_LIMIT, 0)
    delayed = _is_delay(msg, text)
    preamble, own_lines = sections(text, failed, kept)
    failures = [
        Failure(address, own_lines.get(address) or text[:SECTION_CHARS], delayed=delayed, context=preamble)
        for address in kept
    ]
    return failures, beyond


def _is_delay(msg: Message, text: str) -> bool:
    if _DELAY_SUBJECT.match(header(msg, "subject")):
        return True
    return bool(_DELAY_TEXT.search(text[:20_000])) and not _GAVE_UP.search(text[:20_000])
