"""The parts of a message the bounce readers look at: headers as text, a part's bytes, the text
the mail system wrote, the head of the returned message. Pure; nothing here raises on odd mail
but what the caller of newsletter.feedback.bounces catches."""

from __future__ import annotations

import datetime as dt
import email
import email.utils
import re
from collections.abc import Iterator
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message

TEXT_CHARS = 200_000  # characters of the mail system's own text read

_MESSAGE_ID = re.compile(r"^Message-ID:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
# where the returned message starts in a bounce that does not put it in a part of its own: "--"
# then ".*", no run of dashes that the dot could also take, so no line backtracks twice
_RETURNED = re.compile(
    r"^(?:[ \t]*-{2,}[ \t]*(?:original message|unsent message|returned message|message headers|"
    r"headers of the original|forwarded message)"
    r"|--.*(?:copy of|original message|returned|undelivered)|.*below this line|original message follows"
    r"|message headers follow"
    r"|[ \t]*-+ ?(?:the )?original message ?-+"
    r"|[ \t]*(?:received|return-path|x-original-to|message-id|dkim-signature|mime-version):[ \t]*\S[^\n]*\n"
    r"(?:[ \t]+\S[^\n]*\n){0,20}?(?:received|from|to|subject|date|message-id|return-path|mime-version):)",
    re.IGNORECASE | re.MULTILINE,
)


def header(msg: Message | None, name: str) -> str:
    """A header as text (RFC 2047 decoded), "" when missing or unreadable."""
    value = msg.get(name) if msg is not None else None
    if value is None:
        return ""
    try:
        return " ".join(str(make_header(decode_header(str(value)))).split())
    except (ValueError, LookupError, UnicodeError, MessageError):  # MessageError: a broken encoded-word or charset
        return " ".join(str(value).split())


def own_parts(msg: Message) -> Iterator[Message]:
    """The message and its parts, as `walk` gives them, but not the parts of a message it
    carries (a returned or forwarded message is not the report itself)."""
    yield msg
    if msg.is_multipart() and msg.get_content_maintype() != "message":
        for part in msg.get_payload():
            if isinstance(part, Message):
                yield from own_parts(part)


def leaf_bytes(part: Message) -> bytes:
    """A leaf part's decoded bytes (b"" for anything else)."""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def leaf_text(part: Message) -> str:
    """A leaf part as text, in its charset (or UTF-8, or Latin-1 when that fails)."""
    payload = leaf_bytes(part)
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except (LookupError, ValueError):  # a charset no codec has, or a name no codec could have
        return payload.decode("utf-8", "replace")


def notification_text(msg: Message) -> str:
    """The text the mail system wrote, without the returned message (HTML as text when that is
    all there is)."""
    parts: list[str] = []
    html: list[str] = []
    for part in own_parts(msg):
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            break
        if part.get_content_type() == "text/html":
            html.append(_html_as_text(leaf_text(part)))
        elif part.get_content_maintype() == "text" or part is msg and not msg.is_multipart():
            parts.append(leaf_text(part))
    text = "\n".join(parts or html)[:TEXT_CHARS].replace("\r\n", "\n").replace("\r", "\n")
    cut = _RETURNED.search(text)
    return text[: cut.start()] if cut else text


_TAGS = re.compile(r"<[^<>]{0,2000}>")
_BREAKS = re.compile(r"<(?:br|/p|/div|/tr|/li|/h\d)[^<>]{0,200}>", re.IGNORECASE)
_ENTITIES = {"&nbsp;": " ", "&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&#39;": "'"}


def _html_as_text(html: str) -> str:
    text = _TAGS.sub("", _BREAKS.sub("\n", html[:TEXT_CHARS]))
    for entity, char in _ENTITIES.items():
        text = text.replace(entity, char)
    return text


def original_headers(msg: Message) -> Message | None:
    """The head of the message that came back, when the bounce returns it in a part of its own."""
    for part in own_parts(msg):
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if part.get_content_type() in ("text/rfc822-headers", "message/rfc822-headers"):
            return email.message_from_bytes(leaf_bytes(part).lstrip())
    return None


def original_id(msg: Message) -> str | None:
    """Our message's Message-ID as the bounce quotes it (kept for the record only)."""
    original = original_headers(msg)
    if original is not None and header(original, "message-id"):
        return header(original, "message-id")
    for part in msg.walk():  # quoted inline after the notification: the bodies as they are, not written out again
        body = part.get_payload()
        found = _MESSAGE_ID.search(body) if isinstance(body, str) else None
        if found:
            return found.group(1)
    return None


def fields(part: Message | None) -> Message | None:
    """The header fields a report part carries (message/feedback-report and the like)."""
    if part is None:
        return None
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload[0] if payload and isinstance(payload[0], Message) else None
    return email.message_from_bytes(leaf_bytes(part).lstrip())


def recipient_field(value: str) -> str | None:
    """`rfc822; jane@example.org` → the address."""
    address = value.partition(";")[2].strip() if ";" in value else value.strip()
    address = email.utils.parseaddr(address)[1] or address.strip("<>").strip()
    return address if "@" in address and " " not in address else None


def sent_at(msg: Message, now: dt.datetime) -> dt.datetime:
    """When it was sent, never later than now (a date in the future would count for ever)."""
    try:
        when = email.utils.parsedate_to_datetime(header(msg, "date"))
    except (TypeError, ValueError, IndexError):
        return now
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return min(when, now)
