"""Building one MIME message: multipart/alternative, text then HTML, with list headers."""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, format_datetime, make_msgid, parseaddr

import datetime as dt

# Python's default SMTP policy folds a long List-Unsubscribe into RFC 2047 encoded words,
# which breaks it; 998 is RFC 5322's hard limit. 7bit keeps bodies safe for any relay.
POLICY = email.policy.SMTP.clone(max_line_length=998, cte_type="7bit")


class HeaderError(ValueError):
    """A header value that would inject a new header line."""


@dataclass(frozen=True)
class Envelope:
    sender: str  # "Name <address>" or an address
    to: str
    subject: str
    reply_to: str | None
    language: str
    list_id: str
    list_name: str
    unsubscribe_url: str | None
    unsubscribe_mailto: str | None
    message_id: str | None = None
    date: dt.datetime | None = None


def _clean(name: str, value: str) -> str:
    if any(ch in value for ch in "\r\n\0"):
        raise HeaderError(f"{name}: line breaks are not allowed in a header value: {value!r}")
    return value


def _address(name: str, value: str, display_name: str | None = None) -> str:
    _clean(name, value)
    parsed_name, address = parseaddr(value)
    if "@" not in address:
        raise HeaderError(f"{name}: not an email address: {value!r}")
    return formataddr((display_name or parsed_name or "", address))


def domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2]


def build_message(envelope: Envelope, text: str, html: str, *, sender_name: str | None = None) -> EmailMessage:
    """One message to one recipient. Every header value is checked for line breaks."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = _address("From", envelope.sender, sender_name)
    msg["To"] = _address("To", envelope.to)
    if envelope.reply_to:
        msg["Reply-To"] = _address("Reply-To", envelope.reply_to)
    msg["Subject"] = _clean("Subject", envelope.subject)
    msg["Date"] = format_datetime(envelope.date or dt.datetime.now(dt.timezone.utc))
    msg["Message-ID"] = envelope.message_id or make_msgid(domain=domain_of(envelope.sender))
    list_name = _clean("List-Id", envelope.list_name).replace('"', "").replace("<", "").replace(">", "")
    label = f"<{_clean('List-Id', envelope.list_id)}>"
    # A non-ASCII phrase would be turned into encoded words around the label: leave it out.
    msg["List-Id"] = f"{list_name} {label}" if list_name.isascii() and list_name else label
    targets = []
    if envelope.unsubscribe_url:
        targets.append(f"<{_clean('List-Unsubscribe', envelope.unsubscribe_url)}>")
    if envelope.unsubscribe_mailto:
        targets.append(f"<{_clean('List-Unsubscribe', envelope.unsubscribe_mailto)}>")
    if targets:
        msg["List-Unsubscribe"] = ", ".join(targets)
    if envelope.unsubscribe_url:
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    # set_content() drops every Content-* header set before it.
    msg["Content-Language"] = _clean("Content-Language", envelope.language)
    return msg
