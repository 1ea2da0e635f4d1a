"""Complaints: Abuse Reporting Format reports (RFC 5965) from mailbox providers' feedback loops,
as multipart/report or not (some providers send the report's fields in a text part, or the
complained message inline). Pure.

The Feedback-Type says what it is (`not-spam` and `auth-failure`, a DMARC report, are no
complaint); an abuse desk's report in words is a complaint of type `abuse`. The complained address is read wherever reports put it: Original-Rcpt-To,
Removal-Recipient, the returned message's To (or Hotmail's X-HmXmrOriginalRecipient). The
tokens are read from the report's envelope and the returned message's Return-Path and
List-Unsubscribe mailto, the only way a complaint acts on a person.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.message import Message

from newsletter.feedback.parts import fields, header, leaf_text, original_headers, own_parts, recipient_field

COMPLAINT_TYPES = ("abuse", "fraud", "virus", "other")
_FIELDS = re.compile(r"^feedback-type:[ \t]*[\w-]+", re.IGNORECASE | re.MULTILINE)
# a provider's own abuse report without ARF fields (Hotmail's JMRP, Yahoo's older loop)
_ABUSE_REPORT = re.compile(
    r"\b(?:abuse report|abuse complaint|complaint about a? ?message|email feedback report|feedback loop|"
    r"reported as spam|marked as spam|reported the message below)",
    re.IGNORECASE,
)
_HEADER_BLOCK = re.compile(r"^(?:return-path|received|from|to|message-id|subject|date):[ \t]", re.I | re.M)
_RECIPIENT_FIELDS = ("original-rcpt-to", "removal-recipient", "original-recipient")


@dataclass(frozen=True)
class Complaint:
    feedback_type: str  # "" when the report does not say
    recipient: str | None
    original: Message | None  # the head of the complained message
    fields: Message | None  # the report's own fields


def complaint(msg: Message, *, prose: bool = True) -> Complaint | None:
    """The complaint `msg` reports, or None when it is no feedback report; `prose`: also an abuse
    desk's report in words (not for what a mail system wrote: its bounces may quote such words)."""
    report = next((p for p in own_parts(msg) if p.get_content_type() == "message/feedback-report"), None)
    report_fields = fields(report)
    if report_fields is None:
        report_fields = _fields_in_text(msg)
    if report_fields is None and not (prose and _is_abuse_report(msg)):
        return None
    original = original_headers(msg) or _inline_original(msg)
    feedback_type = header(report_fields, "feedback-type").lower() if report_fields is not None else "abuse"
    return Complaint(feedback_type, _complained(report_fields, original), original, report_fields)


def _complained(report: Message | None, original: Message | None) -> str | None:
    """The complained address, wherever the report puts it."""
    values = [header(report, name) for name in _RECIPIENT_FIELDS]
    values += [header(original, "x-hmxmroriginalrecipient"), header(original, "to")]
    for value in values:
        found = recipient_field(value)
        if found and not found.startswith("@") and "redacted" not in found.lower():
            return found
    return None


def _fields_in_text(msg: Message) -> Message | None:
    """ARF fields written in a text part (a report that is not multipart/report)."""
    for part in own_parts(msg):
        if part.get_content_maintype() != "text":
            continue
        text = leaf_text(part)[:50_000]
        found = _FIELDS.search(text)
        if found:
            block = text[found.start() :].split("\n\n", 1)[0].replace("\r\n", "\n")
            return email.message_from_string(block.split("\n\n", 1)[0] + "\n")
    return None


def _is_abuse_report(msg: Message) -> bool:
    if _ABUSE_REPORT.search(header(msg, "subject")):
        return True
    return any(
        part.get_content_maintype() == "text" and _ABUSE_REPORT.search(leaf_text(part)[:5_000])
        for part in own_parts(msg)
        if not part.is_multipart()
    ) and (original_headers(msg) is not None or _inline_original(msg) is not None)


def _inline_original(msg: Message) -> Message | None:
    """The complained message's head quoted in a text part, after the provider's own words."""
    for part in own_parts(msg):
        if part.get_content_maintype() != "text" or part.is_multipart():
            continue
        text = leaf_text(part)[:200_000].replace("\r\n", "\n")
        found = _HEADER_BLOCK.search(text)
        if found and not _FIELDS.match(text, found.start()):
            head = email.message_from_string(text[found.start() :])
            if head.get("from") is not None or head.get("message-id") is not None:
                return head
    return None
