"""What a bounce's own words say about the recipient's address: permanent, transient or
undetermined (as SES says it). Pure, and driven by the tables below: a new form met in the
wild is a new row, not a new rule.

Codes first, words second:

1. an enhanced status code (RFC 3463, `5.1.1`) decides, through ENHANCED_CODES (the longest
   prefix listed wins): an address that does not exist is permanent; a full mailbox (5.2.2) and
   every 4.x.x transient; the mail system's, the message's, policy's and the sender's own
   problems (5.1.7, 5.1.8, 5.3, 5.4.7, 5.5, 5.6, 5.7) undetermined;
2. without one, the basic SMTP reply code (RFC 5321, `550`): 4xx transient; 5xx permanent
   unless the words say otherwise;
3. with neither, the words alone (WORDING, the first group that matches); with no words either,
   undetermined.

Whatever the code, words that say the mailbox is full (transient), that the message was blocked
as spam or by policy, that the sender is at fault or that the server gave up after retrying
(undetermined) make a permanent verdict soft: a person is never suppressed for good for a full
mailbox or for a fault that is not their address's.

Every pattern runs in time linear in the text: no quantified group can match what its
neighbour matches, so a hostile message cannot make a search backtrack for ever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsletter.feedback.policy import PERMANENT, TRANSIENT, UNDETERMINED

# enhanced status codes (RFC 3463, the IANA registry) by prefix: the longest listed prefix of a
# code decides; None is a success, which is no bounce
ENHANCED_CODES: dict[str, str | None] = {
    "2": None,
    "4": TRANSIENT,
    "5": UNDETERMINED,  # a subject not listed below: not shown to be the address's fault
    "5.0": PERMANENT,  # other or undefined status: the server refused the address for good
    "5.1": PERMANENT,  # addressing: no such user (5.1.1), no such domain (5.1.2), null MX (5.1.10)
    "5.1.7": UNDETERMINED,  # our sender address is malformed: the sender's problem
    "5.1.8": UNDETERMINED,  # our sender address's domain is refused: the sender's problem
    "5.2": UNDETERMINED,  # mailbox status, other
    "5.2.1": PERMANENT,  # mailbox disabled, not accepting messages
    "5.2.2": TRANSIENT,  # mailbox full: it empties again
    "5.2.3": UNDETERMINED,  # message longer than the mailbox takes
    "5.3": UNDETERMINED,  # the receiving mail system
    "5.4": PERMANENT,  # routing: no route to the domain (5.4.4)
    "5.4.7": UNDETERMINED,  # delivery time expired: the server could not be reached for days
    "5.5": UNDETERMINED,  # protocol
    "5.6": UNDETERMINED,  # the message's content
    "5.7": UNDETERMINED,  # security and policy: spam blocks, DMARC, relaying refused
}


@dataclass(frozen=True)
class Wording:
    """Phrases (lower case, matched at the start of a word) that say what kind of failure it is."""

    bounce_type: str
    phrases: tuple[str, ...]
    overrules_codes: bool  # also when a code says permanent


FULL_MAILBOX = Wording(
    TRANSIENT,
    (
        "mailbox full", "mailbox is full", "mailbox has exceeded", "mailbox size", "inbox is full", "inbox full",
        "quota", "overquota", "storage allocation", "insufficient storage", "out of storage", "disk full",
    ),
    overrules_codes=True,
)  # fmt: skip
NOT_THE_ADDRESS = Wording(
    UNDETERMINED,
    (
        # spam and policy blocks
        "spam", "blocked", "block list", "blocklist", "blacklist", "denylist", "deny list", "dnsbl", "rbl",
        "policy", "policies", "reputation", "unsolicited", "bulk mail", "junk", "virus", "malware",
        "rate limit", "rate-limit", "ratelimit", "throttl", "too many",
        # the sender's own problems
        "dmarc", "spf", "dkim", "authentication", "unauthenticated", "reverse dns", "ptr record",
        "sender address rejected", "sender rejected", "sender verify", "sender domain", "sender address domain",
        "relay access denied", "relaying denied", "relay not permitted", "unable to relay", "relaying not allowed",
        # the message, not the address
        "message too large", "message too big", "message size", "size limit", "content rejected",
        # gave up after retrying: the server could not be reached, which says nothing of the address
        "retry timeout exceeded", "delivery time expired", "message expired", "could not be delivered for",
        "could not be delivered within", "in the queue too long",
    ),
    overrules_codes=True,
)  # fmt: skip
TEMPORARY = Wording(
    TRANSIENT,
    (
        "temporarily", "temporary", "try again later", "try later", "retry later", "please retry", "try again",
        "greylist", "graylist", "deferred", "timed out", "connection refused", "too busy",
    ),
    overrules_codes=False,
)  # fmt: skip
NO_SUCH_ADDRESS = Wording(
    PERMANENT,
    (
        "permanent error", "permanent failure", "permanent fatal", "failed permanently", "permanently",
        "user unknown", "unknown user", "unknown recipient", "unknown local", "unknown address",
        "no such user", "no such recipient", "no such mailbox", "no such address", "no such person", "no such domain",
        "no mailbox", "mailbox unavailable", "mailbox not found", "mailbox disabled", "mailbox is disabled",
        "does not exist", "doesn't exist", "recipient not found", "recipnotfound", "recipientnotfound",
        "user not found", "address not found", "not found by smtp address lookup", "invalid recipient",
        "invalid mailbox", "invalid address", "address rejected", "recipient rejected", "account disabled",
        "account has been disabled", "account is disabled", "account closed", "unrouteable", "unroutable",
        "host unknown", "domain not found", "host not found", "not our customer",
    ),
    overrules_codes=False,
)  # fmt: skip
# in this order: the first group that matches says what the words say
WORDING: tuple[Wording, ...] = (FULL_MAILBOX, NOT_THE_ADDRESS, TEMPORARY, NO_SUCH_ADDRESS)

TEXT_LIMIT = 10_000  # characters read: what a mail system says of one recipient fits in far less

_ENHANCED = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?!\d|\.\d)", re.ASCII)
# a reply code where replies are quoted: at the start of a line (after spaces, `>>>`, `#`, a
# quote) or after "said:", "returned '", "reason:", a DSN's "smtp;" and the like; never inside a number
_REPLY = re.compile(
    r"(?:^[ \t>#<'\"(\[]*|\b(?:said|reply|replied|error|returned|reason|response|status|code|smtp)\W{0,3})"
    r"([45][0-5]\d)(?=[ \-]|$)",
    re.IGNORECASE | re.MULTILINE | re.ASCII,
)


def _phrases(group: Wording) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(re.escape(p) for p in group.phrases) + ")")


_WORDING = tuple((group, _phrases(group)) for group in WORDING)


@dataclass(frozen=True)
class Diagnosis:
    """What the text says (None: a success, no bounce) and what said it."""

    bounce_type: str | None
    by: str  # "5.1.1", "550", "words: 'mailbox full'", "nothing"


def enhanced_type(code: str | None) -> str | None:
    """The bounce type of an enhanced status code alone (None for a success); anything that is
    not a code is undetermined."""
    found = _ENHANCED.fullmatch(code.strip()) if code else None
    if not found:
        return UNDETERMINED
    parts = found.groups()
    prefixes = (".".join(parts[:n]) for n in (3, 2, 1))
    return next(ENHANCED_CODES[prefix] for prefix in prefixes if prefix in ENHANCED_CODES)


def wording(text: str) -> tuple[Wording, str] | None:
    """The first group of WORDING whose phrase the text uses, and the phrase."""
    lowered = text[:TEXT_LIMIT].lower().replace("\u2019", "'")
    for group, pattern in _WORDING:
        found = pattern.search(lowered)
        if found:
            return group, found.group(0)
    return None


def diagnose(text: str, status: str | None = None) -> Diagnosis:
    """What `text` (a diagnostic, or one recipient's part of a bounce) says; `status` is an
    enhanced code given apart from it (a DSN's Status field), used unless it is the unspecific
    x.0.0 and the text names a more specific one of the same class."""
    text = text[:TEXT_LIMIT]
    code = _enhanced_code(text, status)
    words = wording(text)
    said = f"words: {words[1]!r}" if words else ""
    if code is not None:
        kind = enhanced_type(code)
        if kind == PERMANENT and words and words[0].overrules_codes:
            return Diagnosis(words[0].bounce_type, f"{code}, {said}")
        return Diagnosis(kind, code)
    reply = _REPLY.search(text)
    if reply is not None:
        number = reply.group(1)
        if number.startswith("4"):
            return Diagnosis(TRANSIENT, number)
        if words and words[0].bounce_type != PERMANENT:
            return Diagnosis(words[0].bounce_type, f"{number}, {said}")
        return Diagnosis(PERMANENT, number)
    if words:
        return Diagnosis(words[0].bounce_type, said)
    return Diagnosis(UNDETERMINED, "nothing")


def _enhanced_code(text: str, status: str | None) -> str | None:
    """The enhanced code that speaks for the text: its first specific failure code (success codes
    of a quoted SMTP dialogue passed over; an unspecific x.0.0 only when there is no other, as in
    Exchange's `#5.0.0 smtp;550 5.1.1 …`), or `status`, as `diagnose` says."""
    given = status.strip() if status and _ENHANCED.fullmatch(status.strip()) else None
    found = None
    for match in _ENHANCED.finditer(text):
        if match.group(1) == "2":
            continue
        if not match.group(0).endswith(".0.0"):
            found = match.group(0)
            break
        found = found or match.group(0)
    if given is None:
        return found
    if found and given.endswith(".0.0") and found[0] == given[0] and not found.endswith(".0.0"):
        return found
    return given
