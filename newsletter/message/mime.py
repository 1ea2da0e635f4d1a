"""MIME pieces for composed messages: single headers encoded without folding surprises, and
bodies whose unchanging beginning is encoded once per variant."""

from __future__ import annotations

import base64
import binascii
import email.policy
from email.message import EmailMessage

from newsletter.placeholders import Slots

# Python's default SMTP policy folds a long List-Unsubscribe into RFC 2047 encoded words,
# which breaks it; 998 is RFC 5322's hard limit. Used here only to encode single headers.
POLICY = email.policy.SMTP.clone(max_line_length=998, cte_type="7bit")


def header(name: str, value: str) -> bytes:
    """A header encoded the way the email package would, without its line folding surprises."""
    msg = EmailMessage(policy=POLICY)
    msg[name] = value
    return msg.as_bytes(policy=POLICY).split(b"\r\n\r\n", 1)[0] + b"\r\n"


def _base64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _qp(data: bytes) -> bytes:
    return binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


def _qp_open_end(data: bytes) -> bytes:
    """Quoted-printable for a prefix whose text goes on: ends with a soft line break
    (`=`), every line 76 characters at most, escapes never split."""
    encoded = _qp(data)
    if not data or data.endswith(b"\n"):
        return encoded
    head, newline, last = encoded.rpartition(b"\r\n")
    lines = []
    while len(last) > 75:
        cut = 75
        if b"=" in last[cut - 2 : cut]:  # do not split "=XX"
            cut = last.rindex(b"=", cut - 2, cut)
        lines.append(last[:cut] + b"=")
        last = last[cut:]
    lines.append(last + b"=")
    return head + newline + b"\r\n".join(lines) + b"\r\n"


class BodyEncoder:
    """Encodes a personalised part, reusing the encoding of its unchanging beginning.

    Base64 turns each 57 input bytes into one 76-character line and quoted-printable works
    line by line, so the text before the first placeholder, cut at such a boundary, encodes
    the same for every recipient. Placeholders sit in the footer: most of the work is done once.
    """

    def __init__(self, text: str, *, html: bool):
        self.slots = Slots(text.replace("\r\n", "\n"), html=html)
        whole = "".join(self.slots.literals).encode("utf-8")
        # Quoted-printable triples each non-ASCII byte: right for English, wasteful for Arabic.
        non_ascii = sum(1 for byte in whole if byte > 127)
        self.cte = b"quoted-printable" if non_ascii <= len(whole) // 20 else b"base64"
        # Text travels with CRLF line breaks (its canonical form); quoted-printable adds them itself.
        newline = "\r\n" if self.cte == b"base64" else "\n"
        literals = [lit.replace("\n", newline).encode("utf-8") for lit in self.slots.literals]
        head = literals[0]
        if self.cte == b"base64":
            cut = len(head) // 57 * 57
            self.head_encoded = _base64(head[:cut])
        else:
            # premailer writes the body as one long line: cut anywhere, ending the shared part
            # with a soft line break so that the rest starts a fresh encoded line
            cut = len(head)
            self.head_encoded = _qp_open_end(head)
        self.head_rest = head[cut:]
        self.literals = literals[1:]

    def _encode(self, data: bytes) -> bytes:
        return _base64(data) if self.cte == b"base64" else _qp(data)

    def encode(self, values: dict[str, str]) -> bytes:
        tail = [self.head_rest]
        for value, literal in zip(self.slots.values(values), self.literals, strict=True):
            tail.append(value.encode("utf-8"))
            tail.append(literal)
        return self.head_encoded + self._encode(b"".join(tail))
