"""Delivery status notifications (RFC 3464): the per-recipient blocks of a message/delivery-status
part, or of the same fields written into a text part (Exchange, WorkMail and gateways do), read
into failures with their Status and Diagnostic-Code. Pure.

A block's Action says what happened: `failed` (OpenSMTPD writes `error`) is a failure,
`delayed` a delay, `delivered`, `relayed` and `expanded` a delivery report. A block without an
Action is a failure when its Status is one (4.x.x or 5.x.x). What the text part says of the
same recipient is kept as its context, read when the diagnostic itself says nothing.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.message import Message

from newsletter.feedback.parts import header, leaf_bytes, own_parts, recipient_field
from newsletter.feedback.reading import RECIPIENT_LIMIT, Failure

_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
_BLANK_LINE = re.compile(rb"\r?\n[ \t]*\r?\n")
# DSN fields written into a text part: a recipient field, then an Action or Status
_TEXT_FIELDS = re.compile(r"^(?:final|original)-recipient:", re.IGNORECASE | re.MULTILINE)
_DELIVERED = ("deliver", "relay", "expand")


@dataclass(frozen=True)
class Report:
    """The recipients of a DSN: those that failed or are delayed, and whether any was delivered."""

    failures: list[Failure]  # at most RECIPIENT_LIMIT
    delivered: bool
    beyond_limit: int = 0  # failures over the limit: counted, not read


def delivery_report(msg: Message, text: str) -> Report | None:
    """The DSN blocks of `msg` (its delivery-status parts, else the fields in its text), or None
    when it has none that names a recipient or an action."""
    blocks = status_blocks(msg)
    if not blocks and _TEXT_FIELDS.search(text):
        blocks = _blocks(text.encode("utf-8", "replace"))
    if not blocks:
        return None
    failures: list[Failure] = []
    delivered, beyond = False, 0
    for block in blocks:
        action = " ".join(str(block.get("action", "")).split()).lower()
        status = str(block.get("status", "")).strip().split(" ")[0] or None
        if action.startswith(_DELIVERED) or (not action and (status or "").startswith("2")):
            delivered = True
        elif action.startswith(("fail", "error", "delayed", "expired")) or (not action and status):
            if len(failures) < RECIPIENT_LIMIT:
                failures.append(_failure(block, action, status))
            else:
                beyond += 1
    return Report(failures, delivered, beyond)


def _failure(block: Message, action: str, status: str | None) -> Failure:
    recipient = None
    for name in ("final-recipient", "original-recipient", "x-actual-recipient"):
        recipient = recipient or recipient_field(header(block, name))
    diagnostic = header(block, "diagnostic-code")
    kind, _, said = diagnostic.partition(";")
    text = said.strip() if kind.strip().lower() in ("smtp", "x-unix", "x-postfix", "x-local", "unix") else diagnostic
    return Failure(recipient, text, status, delayed=action.startswith("delayed"))


def status_blocks(msg: Message) -> list[Message]:
    """The per-recipient blocks of the delivery-status parts (the per-message block left out)."""
    blocks: list[Message] = []
    for part in own_parts(msg):
        if part.get_content_type() not in _STATUS_TYPES:
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            blocks.extend(p for p in payload if isinstance(p, Message))
        else:  # global-delivery-status, or a part the parser left as text
            blocks.extend(_blocks(leaf_bytes(part)))
    return [block for block in blocks if _per_recipient(block)]


def _blocks(text: bytes) -> list[Message]:
    found = []
    for chunk in _BLANK_LINE.split(text):
        chunk = chunk.strip()
        if chunk and b":" in chunk:
            block = email.message_from_bytes(_from_first_field(chunk) + b"\n")
            if _per_recipient(block):
                found.append(block)
    return found


def _from_first_field(chunk: bytes) -> bytes:
    """A text part's DSN fields start at the first recipient field (what comes before is prose)."""
    found = re.search(rb"^(?:final|original)-recipient:", chunk, re.IGNORECASE | re.MULTILINE)
    return chunk[found.start() :] if found else chunk


def _per_recipient(block: Message) -> bool:
    return any(block.get(name) is not None for name in ("final-recipient", "original-recipient", "action"))
