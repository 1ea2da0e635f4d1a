"""Why a bounce's recipient was refused, from its codes and words: one reason of the fixed
vocabulary of newsletter.feedback.reasons, and the bounce type that goes with it. Pure, and
driven by tables: a new form met in the wild is a new row, not a new rule.

Every signal, in order of trust:

1. an enhanced status code (RFC 3463, `5.2.2`), the DSN's Status field or the first one the
   diagnostic text quotes, whichever is more specific (Exchange's `#5.0.0 smtp;550 5.1.1`, a
   Status of 5.0.0 over `550-5.2.2 … Mailbox Full`). CODES says, by the code's longest listed
   prefix, what it means and whether it decides alone: a full mailbox (x.2.2), a message too big
   (x.3.4), a rejected sender (x.1.7, x.1.8), an authentication failure (x.7.20-x.7.26) do; a
   generic code (x.0.0, 5.7.1, 5.5.x) or one that servers also use loosely (5.1.1 for a full
   mailbox, 5.2.1 for a block) only when the words say nothing more;
2. the MTA's words (newsletter.feedback.phrases, the first group that matches);
3. the basic SMTP reply code (RFC 5321, `550`) and the command it answered (a refused MAIL FROM
   is our sender refused; a refused HELO or connection, our server blocked);
4. with none of these, undetermined.

Hard is decided by the reason, never by a `5` alone: only an address that does not exist, a
domain that does not exist or takes no mail, and a mailbox that has moved are hard. A 4xx code
or words that say "try again" make the rest transient; everything else is undetermined (both
soft).

Every pattern runs in time linear in the text: no quantified group can match what its
neighbour matches, so a hostile message cannot make a search backtrack for ever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsletter.feedback import reasons as r
from newsletter.feedback.phrases import BLOCKED_WORDS, PHRASES
from newsletter.feedback.policy import PERMANENT, TRANSIENT, UNDETERMINED

# enhanced status codes (RFC 3463, the IANA registry, and the vendors' own: Microsoft's 5.7.5xx,
# 5.7.6xx) by prefix: (reason, whether the code decides alone). The longest listed prefix wins; a
# reason of None says nothing beyond its class, so the words or the reply code decide.
CODES: dict[str, tuple[str | None, bool]] = {
    "4": (None, False), "5": (None, False),
    "4.1.6": (r.HAS_MOVED, False), "4.1.7": (r.SENDER_REJECTED, True), "4.1.8": (r.SENDER_REJECTED, True),
    "4.2.1": (r.SUSPENDED, False), "4.2.2": (r.MAILBOX_FULL, True), "4.2.3": (r.MESSAGE_TOO_BIG, True),
    "4.3": (r.SYSTEM_ERROR, False), "4.3.4": (r.MESSAGE_TOO_BIG, True),
    "4.4": (r.SYSTEM_ERROR, False), "4.4.1": (r.EXPIRED, True), "4.4.7": (r.EXPIRED, False),
    "4.5.3": (r.RATE_LIMITED, False), "4.6": (r.CONTENT_REJECTED, False),
    "4.7": (r.BLOCKED, False), "4.7.0": (None, False), "4.7.500": (r.SYSTEM_ERROR, False),
    "4.7.24": (r.AUTHENTICATION, True), "4.7.25": (r.AUTHENTICATION, True), "4.7.26": (r.AUTHENTICATION, True),
    "5.0.0": (None, False),
    "5.1": (r.USER_UNKNOWN, False), "5.1.2": (r.HOST_UNKNOWN, False), "5.1.4": (r.SYSTEM_ERROR, False),
    "5.1.6": (r.HAS_MOVED, True), "5.1.7": (r.SENDER_REJECTED, True), "5.1.8": (r.SENDER_REJECTED, True),
    "5.1.9": (r.SYSTEM_ERROR, False), "5.1.10": (r.HOST_UNKNOWN, False),  # null MX (Office 365: not found)
    "5.2": (None, False), "5.2.1": (r.SUSPENDED, False), "5.2.2": (r.MAILBOX_FULL, True),
    "5.2.3": (r.MESSAGE_TOO_BIG, True), "5.2.121": (r.RATE_LIMITED, True), "5.2.122": (r.RATE_LIMITED, True),
    "5.3": (r.SYSTEM_ERROR, False), "5.3.4": (r.MESSAGE_TOO_BIG, True),
    "5.4": (r.SYSTEM_ERROR, False), "5.4.4": (r.HOST_UNKNOWN, False), "5.4.6": (r.SYSTEM_ERROR, True),
    "5.4.7": (r.EXPIRED, False), "5.4.14": (r.SYSTEM_ERROR, True), "5.4.300": (r.EXPIRED, True),
    "5.4.310": (r.HOST_UNKNOWN, True), "5.4.316": (r.EXPIRED, True),
    "5.5": (None, False), "5.5.3": (r.RATE_LIMITED, False),
    "5.6": (r.CONTENT_REJECTED, False),
    "5.7": (r.BLOCKED, False), "5.7.0": (None, False), "5.7.1": (None, False),
    "5.7.13": (r.SUSPENDED, True), "5.7.17": (r.HAS_MOVED, True), "5.7.18": (r.HAS_MOVED, True),
    "5.7.20": (r.AUTHENTICATION, True), "5.7.21": (r.AUTHENTICATION, True), "5.7.22": (r.AUTHENTICATION, True),
    "5.7.23": (r.AUTHENTICATION, True), "5.7.24": (r.AUTHENTICATION, True), "5.7.25": (r.AUTHENTICATION, True),
    "5.7.26": (r.AUTHENTICATION, True), "5.7.27": (r.SENDER_REJECTED, True), "5.7.28": (r.CONTENT_REJECTED, True),
    "5.7.29": (r.AUTHENTICATION, True), "5.7.30": (r.AUTHENTICATION, True),
    "5.7.509": (r.AUTHENTICATION, True), "5.7.510": (r.AUTHENTICATION, True), "5.7.515": (r.AUTHENTICATION, True),
    "5.7.606": (r.BLOCKED, True), "5.7.708": (r.BLOCKED, True), "5.7.750": (r.BLOCKED, True),
}  # fmt: skip

# words that say the server will take the message later: a soft bounce's type is Transient
_TRYING = re.compile(r"\b(?:temporar|try again|try later|retry later|please retry|greylist|graylist|deferred|too busy)")

TEXT_LIMIT = 10_000  # characters read: what a mail system says of one recipient fits in far less

_ENHANCED = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?!\d|\.\d)", re.ASCII)
# a reply code where replies are quoted: at the start of a line (after spaces, `>>>`, `#`, a
# quote) or after "said:", "returned '", "reason:", a DSN's "smtp;" and the like; never inside a number
_REPLY = re.compile(
    r"(?:^[ \t>#<'\"(\[]*|\b(?:said|reply|replied|error|returned|reason|response|status|code|smtp)\W{0,3})"
    r"([45][0-5]\d)(?=[ \-]|$)",
    re.IGNORECASE | re.MULTILINE | re.ASCII,
)
# the command a refusal answered (the last one named): Postfix's "(in reply to MAIL FROM
# command)", Exim's "after RCPT TO:<…>", a transcript's ">>> DATA", "did not like our MAIL FROM"
_COMMAND = re.compile(
    r"(?:\b(?:in reply to|after|our)[ \t]{1,3}(?:the[ \t])?|^[ \t]{0,8}>>>[ \t]{0,3}|\bsent <<<[ \t]{0,3})"
    r"(mail from|helo|ehlo|connect|initial|greeting|rcpt|data|end of data)",
    re.IGNORECASE | re.MULTILINE,
)
# what a refusal of each command says when nothing else does
_COMMAND_REASONS = {
    "mail from": r.SENDER_REJECTED,
    "helo": r.BLOCKED,
    "ehlo": r.BLOCKED,
    "connect": r.BLOCKED,
    "initial": r.BLOCKED,
    "greeting": r.BLOCKED,
}


def _phrases(group: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern for a group: a phrase in Latin letters starts at the start of a word; one in
    another script (Japanese has no spaces between words) anywhere."""
    latin = [re.escape(p).replace(r"\.", ".") for p in group if p[:1].isascii()]
    other = [re.escape(p) for p in group if not p[:1].isascii()]
    alternatives = [r"\b(?:" + "|".join(latin) + ")"] if latin else []
    return re.compile("|".join([*alternatives, *other]))


_WORDING = tuple((reason, _phrases(group)) for reason, group in PHRASES)
_BLOCKED_WORDS = _phrases(BLOCKED_WORDS)


@dataclass(frozen=True)
class Diagnosis:
    """Why (a reason of newsletter.feedback.reasons), the bounce type it gives (None: a success,
    no bounce) and what said it."""

    reason: str
    bounce_type: str | None
    by: str  # "5.1.1", "550", "5.0.0, words: 'mailbox full'", "nothing"


def code_meaning(code: str | None) -> tuple[str | None, bool]:
    """(reason, decides alone) of an enhanced status code by its longest listed prefix; (None,
    False) for anything that is not a code."""
    found = _ENHANCED.fullmatch(code.strip()) if code else None
    if not found:
        return None, False
    parts = found.groups()
    prefixes = (".".join(parts[:n]) for n in (3, 2, 1))
    return next((CODES[prefix] for prefix in prefixes if prefix in CODES), (None, False))


def wording(text: str, *, weak: bool = False) -> tuple[str, str] | None:
    """The reason of the first group of phrases the text uses, and the phrase; `weak`: the
    catch-all words of a block (BLOCKED_WORDS) instead."""
    lowered = text[:TEXT_LIMIT].lower().replace("\u2019", "'")
    for reason, pattern in ((r.BLOCKED, _BLOCKED_WORDS),) if weak else _WORDING:
        found = pattern.search(lowered)
        if found:
            return reason, found.group(0)
    return None


def diagnose(text: str, status: str | None = None, *, context: str = "") -> Diagnosis:
    """Why `text` (a diagnostic, or one recipient's part of a bounce) says the message failed;
    `status` is an enhanced code given apart from it (a DSN's Status field); `context` what else
    the mail system says (its other lines, a transcript), read when `text` says nothing and for
    the command the refusal answered."""
    text, context = text[:TEXT_LIMIT], context[:TEXT_LIMIT]
    code = _enhanced_code(text, status)
    if code is not None and code.startswith("2"):
        return Diagnosis(r.UNDETERMINED, None, code)
    reply = _REPLY.search(text)
    reason, by = _reason(text, code, reply.group(1) if reply else None)
    if reason == r.UNDETERMINED and context.strip():
        text = f"{text}\n{context}"
        code = _enhanced_code(text, status)
        reply = _REPLY.search(text)
        reason, by = _reason(text, code, reply.group(1) if reply else None)
    reason, by = _after_command(reason, by, answered(text) or answered(context))
    trying = (code or (reply.group(1) if reply else "5")).startswith("4") or bool(_TRYING.search(text.lower()))
    return Diagnosis(reason, bounce_type(reason, trying), by)


def answered(text: str) -> str | None:
    """The SMTP command a refusal answered, when the text says (the last one it names)."""
    found = list(_COMMAND.finditer(text))
    return " ".join(found[-1].group(1).lower().split()) if found else None


def _after_command(reason: str, by: str, command: str | None) -> tuple[str, str]:
    """What the command a refusal answered changes: no refusal of MAIL FROM is about the
    recipient's address (it names ours), and an unknown user after DATA is the recipient's filter
    refusing us, not a dead address (the address was accepted at RCPT TO)."""
    if command == "mail from" and r.is_hard(reason):
        return r.SENDER_REJECTED, f"{by}, in reply to MAIL FROM"
    if command in ("data", "end of data") and reason == r.USER_UNKNOWN:
        return r.BLOCKED, f"{by}, after DATA"
    return reason, by


def bounce_type(reason: str, temporary: bool) -> str:
    """The bounce type (as SES says it) a reason gives: hard reasons Permanent, the rest soft."""
    if r.is_hard(reason):
        return PERMANENT
    return TRANSIENT if temporary or reason == r.MAILBOX_FULL else UNDETERMINED


def _reason(text: str, code: str | None, reply: str | None) -> tuple[str, str]:
    """(reason, what said it), every signal in order of trust."""
    meaning, decides = code_meaning(code)
    if meaning is not None and decides:
        return meaning, str(code)
    words = wording(text)
    if words is None and meaning is None:
        words = wording(text, weak=True)
    if words is not None:
        said = f"words: {words[1]!r}"
        return words[0], f"{code or reply}, {said}" if code or reply else said
    if meaning is not None:
        return meaning, str(code)
    command = answered(text) or ""
    if command in _COMMAND_REASONS:
        return _COMMAND_REASONS[command], f"{code or reply or 'no code'}, in reply to {command.upper()}"
    if code or reply:
        return r.UNDETERMINED, str(code or reply)
    return r.UNDETERMINED, "nothing"


def _enhanced_code(text: str, status: str | None) -> str | None:
    """The enhanced code that speaks for the text: its first specific failure code (success codes
    of a quoted SMTP dialogue passed over; an unspecific x.0.0 only when there is no other, as in
    Exchange's `#5.0.0 smtp;550 5.1.1 …`), or `status`, unless the text names a more specific one
    of the same class."""
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
    if found and found[0] == given[0] and given.endswith(".0.0") and not found.endswith(".0.0"):
        return found
    return given


def ses_reason(bounce_type: str | None, subtype: str | None, diagnostic: object) -> str:
    """The reason of an SES bounce: its bounceSubType where that names one (NoEmail, MailboxFull,
    MessageTooLarge, ContentRejected, AttachmentRejected), else what the diagnostic code SES
    passed on says. SES's bounceType stays SES's own."""
    named = r.ses_subtype_reason(bounce_type, subtype)
    if named is not None:
        return named
    return diagnose(diagnostic if isinstance(diagnostic, str) else "").reason
