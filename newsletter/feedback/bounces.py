"""Mail that comes back to the bounce mailbox, read: pure, no database, no network.

One message becomes one `Reading`: what kind of message it is, the feedback events it
carries (in the words of the SES path, so the same rules in newsletter.feedback.policy apply)
and the delivery tokens found where that kind of message carries them. In this order:

- a DSN (RFC 3464, newsletter.feedback.dsn): one event per failed or delayed recipient; a
  report that only says the message was delivered or relayed is a delivery report; a
  multipart/report without a usable status part is read as prose, below;
- an ARF report (RFC 5965, newsletter.feedback.arf), multipart/report or not, or an abuse
  desk's report in words: a complaint of its Feedback-Type (`not-spam` and `auth-failure`, a
  DMARC report, are none);
- a read receipt or other report: nothing;
- mail to `unsubscribe+<token>@`: an unsubscribe, whatever its subject and body;
- an auto-reply (Auto-Submitted, X-Autoreply, Precedence: auto_reply, an out-of-office
  subject) that does not come from a mail system: nothing;
- DSN fields in a text part, then a bounce written as prose (newsletter.feedback.free_form),
  read only from a mail system: MAILER-DAEMON, postmaster and the like, an empty From address
  (`MAILER-DAEMON <>`), a mail system's name, X-Failed-Recipients, a bounce's subject;
- anything else: nothing.

Each failed recipient's bounce gets its reason and type from newsletter.feedback.diagnosis
(codes first, then words; hard only for the address's own reasons).

Only a token acts on a person: the poller verifies the tokens found and acts on the delivery
they name; a message without one is counted, never acted on. The Message-ID a report quotes is
kept for the record only: it travels in every reply and forwarded letter, so anyone can quote it.

Limits: the first SIZE_LIMIT bytes of a message are read (the reports and the mail system's
text come first; what is cut is the returned copy of our letter), and at most RECIPIENT_LIMIT
recipients of one message become events, the rest only counted. Every pattern runs in time
linear in the text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.utils
import re
from email.message import Message

from newsletter.feedback.arf import COMPLAINT_TYPES, Complaint, complaint
from newsletter.feedback.diagnosis import diagnose
from newsletter.feedback.dsn import delivery_report
from newsletter.feedback.free_form import free_form_failures
from newsletter.feedback.parts import header, notification_text, original_id, sent_at
from newsletter.feedback.policy import UNDETERMINED
from newsletter.feedback.reading import RECIPIENT_LIMIT, SIZE_LIMIT, Addresses, Failure, MailEvent, Reading
from newsletter.feedback.recipients import MAIL_SYSTEM_LOCAL, failed_recipients, sections
from newsletter.keys import tag_of

__all__ = ["RECIPIENT_LIMIT", "SIZE_LIMIT", "Addresses", "MailEvent", "Reading", "read_message"]

_MAIL_SYSTEM = re.compile(rf"^(?:{MAIL_SYSTEM_LOCAL})$", re.IGNORECASE)
_MAIL_SYSTEM_NAME = re.compile(
    r"\b(?:mailer[-_]?daemon|mail delivery (?:sub)?system|mail delivery service|postmaster|mail administrator|"
    r"mail system|delivery status notification|microsoft outlook|mail ?delivery|mail router|internet mail delivery|"
    r"system administrator|interscan|mail ?marshal|mail gateway)\b",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:\[[^\]]{0,40}\]\s*)?(?:undeliver|undelivered|returned mail|mail delivery (?:failed|failure|problem)|"
    r"delivery (?:status notification|failure|failed|notification|has failed|problem)|failure notice|"
    r"non[- ]?deliver|nondeliverable|message (?:not delivered|delivery failed|could not be delivered|undeliverable)|"
    r"could not send message|mail system error|returned to sender|mail could not be delivered|"
    r"warning: could not send|mail failure|failed delivery|delivery report|unzustellbar|non remis|"
    r"notification d.(?:e|\u00e9)tat de la remise|no se puede entregar|niet bezorgbaar|onbestelbaar|"
    r"non recapitabile|n\u00e3o (?:\u00e9 poss\u00edvel|foi poss\u00edvel) entregar|entrega fallida|"
    r"unable to deliver|permanent delivery failure|notice: mail delivery status|mail not delivered|"
    r"your message (?:couldn.t|could not|was not|wasn.t) (?:be )?delivered|there was an error sending|"
    r"benachrichtigung zum \u00fcbermittlungsstatus|"
    r"\u914d\u4fe1\u30a8\u30e9\u30fc|\u30e1\u30fc\u30eb\u30a8\u30e9\u30fc|\u9001\u4fe1\u30a8\u30e9\u30fc|\u4e0d\u9054)",  # 配信エラー, メールエラー, 送信エラー, 不達
    re.IGNORECASE,
)
# what only a mail system writes, for one whose sender and subject do not say so
_BOUNCE_TEXT = re.compile(
    r"(?:could not be delivered to:|your mail sent on:|this is the mail system at host|"
    r"delivery has failed to these recipients|had permanent fatal errors|created automatically by mail delivery software|"
    r"wasn't able to deliver your message|delivery to the following recipients? failed)",
    re.IGNORECASE,
)
_OUT_OF_OFFICE = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|autoreply|abwesenheit|absence|"
    r"vacation|on leave|\u0631\u062f \u062a\u0644\u0642\u0627\u0626\u064a)",  # رد تلقائي
    re.IGNORECASE,
)
_RECIPIENT_HEADERS = ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to", "to", "cc")


def read_message(raw: bytes, addresses: Addresses, now: dt.datetime) -> Reading:
    """What one message in the bounce mailbox is, and what it asks for."""
    try:
        msg = email.message_from_bytes(raw[:SIZE_LIMIT])
        return _read(msg, addresses, sent_at(msg, now))
    except Exception as exc:  # noqa: BLE001 - mail from anywhere: a parser failure is a message not understood
        return Reading("unreadable", now, note=f"{type(exc).__name__}: {exc}"[:200])


def _read(msg: Message, addresses: Addresses, when: dt.datetime) -> Reading:
    report_type = str(msg.get_param("report-type", header="content-type") or "").lower() if msg.is_multipart() else ""
    is_report = msg.get_content_type() == "multipart/report"
    if is_report and report_type not in ("delivery-status", "global-delivery-status", "feedback-report", ""):
        kind = "auto-reply" if report_type == "disposition-notification" else "unrecognised"
        return Reading(kind, when, note=f"report-type={report_type}")
    unsubscribe = _tokens(_top_recipients(msg), addresses.unsubscribe, addresses.delimiter, "unsubscribe")
    if unsubscribe and not is_report:
        return Reading("unsubscribe", when, (MailEvent("unsubscribe"),), unsubscribe)
    from_system = is_report or _from_mail_system(msg)
    if report_type != "delivery-status" or not is_report:
        reported = complaint(msg, prose=not from_system)
        if reported is not None:
            return _complaint(msg, reported, addresses, when)
    if not from_system and _auto_reply(msg):
        return Reading("auto-reply", when)
    text = notification_text(msg)
    from_system = from_system or bool(_BOUNCE_TEXT.search(text[:5_000]))
    return _bounce(msg, text, addresses, when, from_system) or Reading("unrecognised", when)


def _bounce(msg: Message, text: str, addresses: Addresses, when: dt.datetime, from_system: bool) -> Reading | None:
    """A DSN (its status parts, or its fields in the text), else a prose bounce from a mail system."""
    report = delivery_report(msg, text)
    if report is not None and report.failures:
        failures, beyond = _with_context(_named(report.failures, msg, text, addresses), text), report.beyond_limit
    elif report is not None and report.delivered:
        return Reading("delivered", when)
    elif from_system:
        found = free_form_failures(msg, text, _ours(addresses))
        if found is None:
            return None
        failures, beyond = found
    else:
        return None
    original = original_id(msg)
    events = tuple(_event(failure, original) for failure in failures[:RECIPIENT_LIMIT])
    tokens = _tokens(_top_recipients(msg), addresses.bounces, addresses.delimiter, "bounce")
    kind = "bounce" if any(e.kind == "bounce" for e in events) else "delay"
    return Reading(kind, when, events, tokens, beyond_limit=beyond)


def _named(failures: list[Failure], msg: Message, text: str, addresses: Addresses) -> list[Failure]:
    """A DSN's failures, those whose block names no recipient given the ones its text names."""
    if all(f.recipient for f in failures):
        return failures
    given = {f.recipient for f in failures}
    named = iter(r for r in failed_recipients(msg, text, _ours(addresses))[:RECIPIENT_LIMIT] if r not in given)
    return [f if f.recipient else dataclasses.replace(f, recipient=next(named, None)) for f in failures]


def _with_context(failures: list[Failure], text: str) -> list[Failure]:
    """A DSN's failures, each with what the text part says of its recipient."""
    named = [f.recipient for f in failures[:RECIPIENT_LIMIT] if f.recipient]
    preamble, own_lines = sections(text, named, named)
    return [dataclasses.replace(f, context=f"{own_lines.get(f.recipient or '', '')}\n{preamble}") for f in failures]


def _event(failure: Failure, original: str | None) -> MailEvent:
    detail = " ".join(filter(None, (failure.status, " ".join(failure.text.split())[:300]))) or None
    if failure.delayed:
        return MailEvent("delivery_delay", failure.recipient, detail=detail, original_id=original)
    found = diagnose(failure.text, failure.status, context=failure.context)
    kind = found.bounce_type or UNDETERMINED  # "failed" with 2.x.x: not a success
    return MailEvent("bounce", failure.recipient, kind, detail=detail, original_id=original, reason=found.reason)


def _complaint(msg: Message, reported: Complaint, addresses: Addresses, when: dt.datetime) -> Reading:
    if reported.feedback_type not in COMPLAINT_TYPES:
        return Reading("unrecognised", when, note=f"feedback-type {reported.feedback_type or 'missing'}")
    bounces, delimiter = addresses.bounces, addresses.delimiter
    found = [*_tokens(_top_recipients(msg), bounces, delimiter, "bounce")]
    found += _tokens([header(reported.fields, "original-mail-from")], bounces, delimiter, "bounce")
    original = reported.original
    if original is not None:
        found += _tokens([header(original, "return-path")], bounces, delimiter, "bounce")
        mailtos = re.findall(r"<mailto:([^>?]+)", header(original, "list-unsubscribe"))
        found += _tokens(mailtos, addresses.unsubscribe, delimiter, "unsubscribe")
    event = MailEvent(
        "complaint",
        reported.recipient,
        complaint_type=reported.feedback_type,
        detail=f"feedback-type {reported.feedback_type}",
        original_id=(header(original, "message-id") or None) if original is not None else None,
    )
    return Reading("complaint", when, (event,), tuple(dict.fromkeys(found)))


def _ours(addresses: Addresses) -> list[str]:
    return [a for a in (addresses.bounces, addresses.unsubscribe) if a]


def _top_recipients(msg: Message) -> list[str]:
    values = [str(v) for name in _RECIPIENT_HEADERS for v in (msg.get_all(name) or [])]
    return [address for _, address in email.utils.getaddresses(values) if address]


def _tokens(candidates: list[str], address: str | None, delimiter: str, role: str) -> tuple[tuple[str, str], ...]:
    if not address:
        return ()
    found = [tag_of(email.utils.parseaddr(c)[1] or c, address, delimiter) for c in candidates]
    return tuple(dict.fromkeys((role, token) for token in found if token))


def _from_mail_system(msg: Message) -> bool:
    """Whether a mail system wrote it: its sender's name or address, or what it says it is."""
    name, sender = email.utils.parseaddr(header(msg, "from"))
    if _MAIL_SYSTEM.match(sender.partition("@")[0]) or msg.get("x-failed-recipients") is not None:
        return True
    if msg.get("from") is not None and not sender.strip("<> "):  # From: MAILER-DAEMON <>
        return True
    return bool(_MAIL_SYSTEM_NAME.search(name)) or bool(_BOUNCE_SUBJECT.match(header(msg, "subject")))


def _auto_reply(msg: Message) -> bool:
    submitted = header(msg, "auto-submitted").lower()
    return (
        bool(submitted and submitted != "no")
        or any(msg.get(name) is not None for name in ("x-autoreply", "x-autorespond", "x-autoresponder"))
        or header(msg, "precedence").lower() in ("auto_reply", "auto-reply")
        or bool(_OUT_OF_OFFICE.match(header(msg, "subject")))
    )
