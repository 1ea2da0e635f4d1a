"""The Subject and From headers, written by hand as RFC 2047 and RFC 5322 say.

The email package, told to fold at 998 characters (so that List-Unsubscribe stays whole),
writes an Arabic subject as one encoded-word of up to 140 characters; RFC 2047 allows 75, and
76 on a line that holds one. Here a non-ASCII value becomes encoded-words of at most 75
characters, cut between characters (never inside one's UTF-8 bytes), one per folded line;
an ASCII value is folded at its spaces. Whichever of B and Q is shorter is used (Q with the
characters RFC 2047 allows in a phrase). Every result is read back with the email package and
must decode to exactly the value given, or the value is refused.
"""

from __future__ import annotations

import base64
import email
import email.errors
import email.policy
import re
from email.utils import formataddr

ENCODED_WORD_MAX = 75
LINE_MAX = 76  # a line holding an encoded-word (RFC 2047 section 2); other lines are kept to it too

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# text shaped like an encoded-word: some programs decode it wherever it stands
_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_PREFIX = {"b": "=?utf-8?b?", "q": "=?utf-8?q?"}


class ComposeError(ValueError):
    """A value that cannot go into a header (a line break, a non-ASCII address)."""

    def __init__(self, header: str, problem: str):
        super().__init__(f"{header}: {problem}")
        self.header = header


def _q(data: bytes) -> str:
    return "".join("_" if byte == 0x20 else chr(byte) if byte in _Q_SAFE else f"={byte:02X}" for byte in data)


def _size(data: bytes, kind: str) -> int:
    body = (len(data) + 2) // 3 * 4 if kind == "b" else len(_q(data))
    return len(_PREFIX[kind]) + body + 2


def _word(data: bytes, kind: str) -> str:
    body = base64.b64encode(data).decode("ascii") if kind == "b" else _q(data)
    return f"{_PREFIX[kind]}{body}?="


def _kind(text: str) -> str:
    data = text.encode("utf-8")
    return "b" if _size(data, "b") <= _size(data, "q") else "q"


def _take(text: str, room: int, kind: str) -> tuple[str, str]:
    """The longest beginning of `text` whose encoded-word fits in `room` (whole characters, at
    least one), and the rest."""
    end = 1
    while end < len(text) and _size(text[: end + 1].encode("utf-8"), kind) <= room:
        end += 1
    return text[:end], text[end:]


def _runs(value: str) -> list[tuple[str, bool]]:
    """`value` cut at its spaces into runs: ASCII words as they are, each stretch of words with
    non-ASCII characters (and the spaces between them) to be encoded as a whole."""
    runs: list[tuple[str, bool]] = []
    for word in value.split(" "):
        encode = not word.isascii()
        if runs and (word == "" or (encode and runs[-1][1])):
            runs[-1] = (f"{runs[-1][0]} {word}", runs[-1][1] or encode)
        else:
            runs.append((word, encode))
    return runs


class _Lines:
    """A header's lines, folded before a piece that would pass LINE_MAX."""

    def __init__(self, name: str):
        self.lines = [f"{name}:"]

    def room(self) -> int:
        return LINE_MAX - len(self.lines[-1]) - 1

    def add(self, piece: str) -> None:
        if len(piece) > self.room() and len(self.lines[-1]) > 1:
            self.lines.append("")
        self.lines[-1] += " " + piece

    def raw(self) -> bytes:
        return ("\r\n".join(self.lines) + "\r\n").encode("ascii")


def _encode_run(lines: _Lines, text: str, *, at_spaces: bool) -> None:
    """`text` as encoded-words of at most 75 characters, filling the current line first. In a
    phrase (`at_spaces`) the words are cut after a space where they can be: Python's parser
    keeps the folding whitespace between two encoded-words of a display name."""
    kind = _kind(text)
    whole = _size(text.encode("utf-8"), kind)
    while text:
        room = lines.room() if lines.room() >= 20 else ENCODED_WORD_MAX
        if at_spaces and lines.room() < whole <= ENCODED_WORD_MAX:
            room = ENCODED_WORD_MAX  # one encoded-word on a line of its own rather than two
        room = min(room, ENCODED_WORD_MAX)
        head, rest = _take(text, room, kind)
        if at_spaces and rest and " " in head[1:]:
            cut = head.rindex(" ") + 1
            head, rest = head[:cut], head[cut:] + rest
        lines.add(_word(head.encode("utf-8"), kind))
        text = rest


def _checked(name: str, value: str) -> None:
    if _CONTROL.search(value):
        raise ComposeError(name, f"a control character or line break in {value!r}")
    if _ENCODED_WORD.search(value) and not value.isascii():
        raise ComposeError(
            name, f"{value!r} holds text shaped like an RFC 2047 encoded-word, which mail programs decode"
        )


def _read_back(raw: bytes, name: str) -> object:
    """The header as the email package reads it back; ComposeError when it cannot."""
    try:
        return email.message_from_bytes(raw + b"\r\n", policy=email.policy.default)[name]
    except (ValueError, TypeError, email.errors.MessageError) as exc:
        raise ComposeError(name, f"{raw!r} cannot be read back: {exc}") from None


def subject_header(value: str, name: str = "Subject") -> bytes:
    """The Subject header for `value`, which it decodes to exactly; ComposeError otherwise."""
    _checked(name, value)
    lines = _Lines(name)
    for text, encode in _runs(value):
        if encode:
            _encode_run(lines, text, at_spaces=False)
        else:
            lines.add(text)
    raw = lines.raw()
    found = str(_read_back(raw, name))
    if found != value:
        raise ComposeError(name, f"{value!r} would be read back as {found!r}")
    return raw


_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')


def from_header(display_name: str, address: str, name: str = "From") -> bytes:
    """`Display Name <address>`: ASCII words as they are (quoted where they hold a special), the
    others in encoded-words, the address as it is."""
    _checked(name, display_name)
    lines = _Lines(name)
    if display_name.isascii():
        lines.add(formataddr((display_name, address)))
    else:
        for text, encode in _runs(display_name):
            if encode:
                _encode_run(lines, text, at_spaces=True)
            elif text:
                quoted = text.replace("\\", "\\\\").replace('"', '\\"')
                lines.add(f'"{quoted}"' if _SPECIALS.search(text) else text)
        lines.add(f"<{address}>")
    raw = lines.raw()
    found = _read_back(raw, name)
    addresses: tuple = getattr(found, "addresses", ())
    shown = addresses[0].display_name if len(addresses) == 1 else None
    if shown is None or " ".join(shown.split()) != " ".join(display_name.split()) or addresses[0].addr_spec != address:
        raise ComposeError(name, f"{display_name!r} <{address}> would be read back as {str(found)!r}")
    return raw
