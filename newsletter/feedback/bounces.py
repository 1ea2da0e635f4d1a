"""Mail that comes back to the bounce mailbox, read: pure, no database, no network.

One message becomes one `Reading`: what kind of message it is, the feedback events it
carries (in the words of the SES path, so the same rules in newsletter.feedback.policy apply)
and the delivery tokens found where that kind of message carries them. In this order:

- a DSN (RFC 3464, multipart/report; report-type=delivery-status): one event per recipient
  block. `failed` is a bounce whose Status and Diagnostic-Code newsletter.feedback.diagnosis
  reads (a 5.x.x address fault hard; 4.x.x, a full mailbox, policy and the sender's problems
  soft); `delayed` is a delay notice, never a bounce;
- an ARF report (RFC 5965, report-type=feedback-report): a complaint of its Feedback-Type
  (`not-spam` changes nothing; `auth-failure` is a DMARC report, not a complaint);
- a read receipt or other report: nothing;
- mail to `unsubscribe+<token>@`: an unsubscribe, whatever its subject and body;
- an auto-reply (Auto-Submitted, X-Autoreply, Precedence: auto_reply, an out-of-office
  subject) that does not come from a mail system: nothing;
- a free-form bounce (Postfix's older form, Exim, Sendmail, qmail, Exchange, Gmail and others)
  recognised by flufl.bounce, GNU Mailman's detectors, and only from a mail system
  (MAILER-DAEMON, postmaster, X-Failed-Recipients): each failed recipient's own lines are read
  by newsletter.feedback.diagnosis (codes first, words second), then the lines before the
  first recipient ("This is a permanent error");
- anything else: nothing.

Only a token acts on a person: the poller verifies the tokens found and acts on the delivery
they name; a message without one is counted, never acted on. The Message-ID a report quotes is
kept for the record only: it travels in every reply and forwarded letter, so anyone can quote it.

Limits: the first SIZE_LIMIT bytes of a message are read (the reports and the mail system's
text come first; what is cut is the returned copy of our letter), and at most RECIPIENT_LIMIT
recipients of one message become events, the rest only counted. Every pattern runs in time
linear in the text.
"""

from __future__ import annotations

import datetime as dt
import email
import email.utils
import logging
import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message

from newsletter.feedback.diagnosis import diagnose
from newsletter.feedback.policy import UNDETERMINED
from newsletter.keys import tag_of

# flufl.bounce logs a detector's exception with its traceback: never shown, the message is
# simply not recognised
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())
logging.getLogger("flufl.bounce").propagate = False

SIZE_LIMIT = 1 << 20  # bytes of a message read
RECIPIENT_LIMIT = 100  # recipients of one message that become events
_SECTION_LINES, _SECTION_CHARS = 40, 4000  # what is read of one recipient's part of a free-form bounce

_MESSAGE_ID = re.compile(r"^Message-ID:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_MAIL_SYSTEM = re.compile(r"^(mailer-?daemon|mail-?daemon|maildaemon|postmaster|mdaemon)$", re.IGNORECASE)
_OUT_OF_OFFICE = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|autoreply|abwesenheit|absence|"
    r"vacation|on leave|\u0631\u062f \u062a\u0644\u0642\u0627\u0626\u064a)",  # رد تلقائي
    re.IGNORECASE,
)
_RECIPIENT_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to", "cc")
_COMPLAINT_TYPES = ("abuse", "fraud", "virus", "other", "not-spam")
# "--" then ".*": no run of dashes that the dot could also take, so no line backtracks twice
_RETURNED = re.compile(r"^(?:--.*(?:copy of|original message|returned|undelivered)|.*below this line)", re.I | re.M)
_ADDRESS_CHARS = r"[\w.!#$%&*+/=?^`{|}~-]"
# an address starts only where a run of its characters starts: each run is scanned once
_ADDRESS = re.compile(rf"(?<!{_ADDRESS_CHARS}){_ADDRESS_CHARS}+@[\w-]+(?:\.[\w-]+)+")


@dataclass(frozen=True)
class Addresses:
    """The project's own addresses that tokens are tagged onto (newsletter.toml)."""

    bounces: str | None
    unsubscribe: str | None
    delimiter: str = "+"


@dataclass(frozen=True)
class MailEvent:
    """One thing a message says about one delivery (what newsletter.feedback.policy reads)."""

    kind: str  # "bounce", "complaint", "unsubscribe", "delivery_delay"
    recipient: str | None = None  # the address the report names, when it names one
    bounce_type: str | None = None  # "Permanent", "Transient", "Undetermined", as SES says it
    complaint_type: str | None = None
    detail: str | None = None  # status and diagnostic: the store removes addresses
    original_id: str | None = None  # our message's Message-ID, when the report quotes it


@dataclass(frozen=True)
class Reading:
    kind: str  # "bounce", "complaint", "unsubscribe", "delay", "auto-reply", "unrecognised", "unreadable"
    occurred_at: dt.datetime
    events: tuple[MailEvent, ...] = ()
    tokens: tuple[tuple[str, str], ...] = ()  # (role, token) as found; verified by the poller
    note: str = ""
    beyond_limit: int = 0  # recipients over RECIPIENT_LIMIT: counted, no event

    @property
    def acts(self) -> bool:
        return bool(self.events)


def read_message(raw: bytes, addresses: Addresses, now: dt.datetime) -> Reading:
    """What one message in the bounce mailbox is, and what it asks for."""
    try:
        msg = email.message_from_bytes(raw[:SIZE_LIMIT])
        return _read(msg, addresses, _date(msg, now))
    except Exception as exc:  # noqa: BLE001 - mail from anywhere: a parser failure is a message not understood
        return Reading("unreadable", now, note=f"{type(exc).__name__}: {exc}"[:200])


def _read(msg: Message, addresses: Addresses, when: dt.datetime) -> Reading:
    report_type = (msg.get_param("report-type", header="content-type") or "") if msg.is_multipart() else ""
    report_type = str(report_type).lower()
    if msg.get_content_type() == "multipart/report" and report_type in ("delivery-status", "global-delivery-status"):
        reading = _dsn(msg, addresses, when)
        if reading is not None:
            return reading
    if msg.get_content_type() == "multipart/report" and report_type == "feedback-report":
        return _arf(msg, addresses, when)
    if msg.get_content_type() == "multipart/report" and report_type:
        kind = "auto-reply" if report_type == "disposition-notification" else "unrecognised"
        return Reading(kind, when, note=f"report-type={report_type}")
    unsubscribe = _tokens(_top_recipients(msg), addresses.unsubscribe, addresses.delimiter, "unsubscribe")
    if unsubscribe:
        return Reading("unsubscribe", when, (MailEvent("unsubscribe"),), unsubscribe)
    from_system = _from_mail_system(msg)
    if not from_system and _auto_reply(msg):
        return Reading("auto-reply", when)
    return _free_form(msg, addresses, when, from_system) or Reading("unrecognised", when)


def _dsn(msg: Message, addresses: Addresses, when: dt.datetime) -> Reading | None:
    original = _original_id(msg)
    events: list[MailEvent] = []
    beyond = 0
    for block in _status_blocks(msg):
        action = " ".join(str(block.get("action", "")).split()).lower()
        if not action.startswith(("fail", "error", "delayed")):  # opensmtpd writes `error`
            continue
        if len(events) < RECIPIENT_LIMIT:
            events.append(_dsn_event(block, action, original))
        else:
            beyond += 1
    if not events:
        return None
    tokens = _tokens(_top_recipients(msg), addresses.bounces, addresses.delimiter, "bounce")
    kind = "bounce" if any(e.kind == "bounce" for e in events) else "delay"
    return Reading(kind, when, tuple(events), tokens, beyond_limit=beyond)


def _dsn_event(block: Message, action: str, original: str | None) -> MailEvent:
    recipient = _recipient_field(_h(block, "final-recipient")) or _recipient_field(_h(block, "original-recipient"))
    status = _h(block, "status").split(" ")[0] or None
    diagnostic = _h(block, "diagnostic-code")
    detail = " ".join(filter(None, (status, diagnostic))) or None
    if action.startswith("delayed"):
        return MailEvent("delivery_delay", recipient, detail=detail, original_id=original)
    kind = diagnose(diagnostic, status).bounce_type or UNDETERMINED  # "failed" with 2.x.x: not a success
    return MailEvent("bounce", recipient, bounce_type=kind, detail=detail, original_id=original)


def _status_blocks(msg: Message) -> list[Message]:
    blocks: list[Message] = []
    for part in msg.walk():
        if part.get_content_type() not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            blocks.extend(p for p in payload if isinstance(p, Message))
        else:  # global-delivery-status, or a part the parser left as text
            text = _bytes(part)
            for chunk in re.split(rb"\r?\n[ \t]*\r?\n", text):
                if chunk.strip():
                    blocks.append(email.message_from_bytes(chunk.strip() + b"\n"))
    return blocks[1:] if blocks and not _h(blocks[0], "action") else blocks  # the first is per-message


def _arf(msg: Message, addresses: Addresses, when: dt.datetime) -> Reading:
    report = next((p for p in msg.walk() if p.get_content_type() == "message/feedback-report"), None)
    fields = _fields(report)
    feedback_type = _h(fields, "feedback-type").lower() if fields is not None else ""
    if feedback_type not in _COMPLAINT_TYPES:
        return Reading("unrecognised", when, note=f"feedback-type {feedback_type or 'missing'}")
    original = _original_headers(msg)
    found = [*_tokens(_top_recipients(msg), addresses.bounces, addresses.delimiter, "bounce")]
    if fields is not None:
        found += _tokens([_h(fields, "original-mail-from")], addresses.bounces, addresses.delimiter, "bounce")
    if original is not None:
        found += _tokens([_h(original, "return-path")], addresses.bounces, addresses.delimiter, "bounce")
        mailtos = re.findall(r"<mailto:([^>?]+)", _h(original, "list-unsubscribe"))
        found += _tokens(mailtos, addresses.unsubscribe, addresses.delimiter, "unsubscribe")
    recipient = _recipient_field(_h(fields, "original-rcpt-to")) if fields is not None else None
    event = MailEvent(
        "complaint",
        recipient,
        complaint_type=feedback_type,
        detail=f"feedback-type {feedback_type}",
        original_id=(_h(original, "message-id") or None) if original is not None else None,
    )
    return Reading("complaint", when, (event,), tuple(dict.fromkeys(found)))


def _free_form(msg: Message, addresses: Addresses, when: dt.datetime, from_system: bool) -> Reading | None:
    from flufl.bounce import all_failures  # imported here: the store reads MailEvent without it

    if not from_system:
        return None
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001 - a detector tripping over odd mail: not recognised, that is all
        return None
    if not (temporary or permanent):
        return None
    tokens = _tokens(_top_recipients(msg), addresses.bounces, addresses.delimiter, "bounce")
    failed = sorted(a.decode("ascii", "replace") for a in (permanent or temporary))
    kept, beyond = failed[:RECIPIENT_LIMIT], max(len(failed) - RECIPIENT_LIMIT, 0)
    if not permanent:  # flufl's warnings: "still trying", not a bounce
        return Reading("delay", when, tuple(MailEvent("delivery_delay", a) for a in kept), tokens, beyond_limit=beyond)
    text = _notification_text(msg)
    preamble, sections = _sections(text, failed, kept)
    original = _original_id(msg)
    events = []
    for address in kept:
        section = sections.get(address) or text[:_SECTION_CHARS]
        found = diagnose(section)
        if found.by == "nothing":  # the recipient's own lines say nothing: what the mail system says of all
            found = diagnose(preamble)
        kind = found.bounce_type or UNDETERMINED
        detail = " ".join(section.split())[:300] or None
        events.append(MailEvent("bounce", address, bounce_type=kind, detail=detail, original_id=original))
    return Reading("bounce", when, tuple(events), tokens, beyond_limit=beyond)


def _sections(text: str, failed: list[str], kept: list[str]) -> tuple[str, dict[str, str]]:
    """The text before the first failed recipient is named, and each kept one's own lines: from
    the line that first names it up to the line that first names another (both cut short).
    One pass over the lines, whatever the number of recipients."""
    lines = text.splitlines()
    wanted = {address.lower() for address in failed}
    first: dict[str, int] = {}
    for number, line in enumerate(lines):
        if "@" in line:
            for found in _ADDRESS.findall(line):
                key = found.lower()
                if key in wanted and key not in first:
                    first[key] = number
    starts = sorted(set(first.values()))
    ends = dict(zip(starts, [*starts[1:], len(lines)], strict=True))
    sections = {}
    for address in kept:
        start = first.get(address.lower())
        if start is not None:
            end = min(ends[start], start + _SECTION_LINES)
            sections[address] = "\n".join(lines[start:end])[:_SECTION_CHARS]
    preamble = "\n".join(lines[: starts[0] if starts else _SECTION_LINES][:_SECTION_LINES])[:_SECTION_CHARS]
    return preamble, sections


def _notification_text(msg: Message) -> str:
    """The text the mail system wrote, without the returned message."""
    parts = []
    for part in msg.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers"):
            break
        if part.get_content_maintype() == "text":
            payload = _bytes(part)
            parts.append(payload.decode(part.get_content_charset() or "utf-8", "replace"))
    text = "\n".join(parts)
    cut = _RETURNED.search(text)
    return text[: cut.start()] if cut else text


def _original_headers(msg: Message) -> Message | None:
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if part.get_content_type() == "text/rfc822-headers":
            return email.message_from_bytes(_bytes(part).lstrip())
    return None


def _original_id(msg: Message) -> str | None:
    original = _original_headers(msg)
    if original is not None and _h(original, "message-id"):
        return _h(original, "message-id")
    for part in msg.walk():  # quoted inline after the notification: the bodies as they are, not written out again
        body = part.get_payload()
        found = _MESSAGE_ID.search(body) if isinstance(body, str) else None
        if found:
            return found.group(1)
    return None


def _fields(part: Message | None) -> Message | None:
    if part is None:
        return None
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload[0] if payload and isinstance(payload[0], Message) else None
    return email.message_from_bytes(_bytes(part).lstrip())


def _top_recipients(msg: Message) -> list[str]:
    values = [str(v) for name in _RECIPIENT_HEADERS for v in (msg.get_all(name) or [])]
    return [address for _, address in email.utils.getaddresses(values) if address]


def _tokens(candidates: list[str], address: str | None, delimiter: str, role: str) -> tuple[tuple[str, str], ...]:
    if not address:
        return ()
    found = [tag_of(email.utils.parseaddr(c)[1] or c, address, delimiter) for c in candidates]
    return tuple(dict.fromkeys((role, token) for token in found if token))


def _from_mail_system(msg: Message) -> bool:
    sender = email.utils.parseaddr(_h(msg, "from"))[1]
    return bool(_MAIL_SYSTEM.match(sender.partition("@")[0])) or msg.get("x-failed-recipients") is not None


def _auto_reply(msg: Message) -> bool:
    submitted = _h(msg, "auto-submitted").lower()
    return (
        bool(submitted and submitted != "no")
        or any(msg.get(name) is not None for name in ("x-autoreply", "x-autorespond", "x-autoresponder"))
        or _h(msg, "precedence").lower() in ("auto_reply", "auto-reply")
        or bool(_OUT_OF_OFFICE.match(_h(msg, "subject")))
    )


def _recipient_field(value: str) -> str | None:
    """`rfc822; jane@example.org` → the address."""
    address = value.partition(";")[2].strip() if ";" in value else value.strip()
    address = address.strip("<>").strip()
    return address if "@" in address else None


def _bytes(part: Message) -> bytes:
    """A leaf part's decoded bytes (b"" for anything else)."""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _h(msg: Message | None, name: str) -> str:
    """A header as text (RFC 2047 decoded), "" when missing or unreadable."""
    value = msg.get(name) if msg is not None else None
    if value is None:
        return ""
    try:
        return " ".join(str(make_header(decode_header(str(value)))).split())
    except (ValueError, LookupError, UnicodeError):
        return " ".join(str(value).split())


def _date(msg: Message, now: dt.datetime) -> dt.datetime:
    """When it was sent, never later than now (a date in the future would count for ever)."""
    try:
        when = email.utils.parsedate_to_datetime(_h(msg, "date"))
    except (TypeError, ValueError, IndexError):
        return now
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return min(when, now)
