"""Per-recipient values in a rendered variant, filled in without rendering it again.

The templates emit markers such as `__NL_UNSUBSCRIBE_URL__` (ASCII letters and underscores
survive MJML, premailer and lxml's URL escaping); the personal fields of an issue's text
(`{{ name | default("…") }}`) are markers of their own, numbered (newsletter.letter.personal).
A variant is split once at its markers; each recipient then costs one join. The message
composer is the only one that fills them; a field the recipient has no value for gets the
fallback written beside it.

The other placeholders are the editor's: `[[…]]`, which `newsletter init` and `newsletter new`
leave for text still to be written, and which `check` and a send refuse.
"""

from __future__ import annotations

import re
from html import escape

PLACEHOLDERS = ("unsubscribe_url", "name", "email")
_MARKER = re.compile("__NL_([A-Z_]+?)__|\ue000([0-9]+)\ue001")
UNWRITTEN = re.compile(r"\[\[[^\]\n]{1,200}\]\]")


def field_slot(number: int) -> str:
    """The name of the slot of the issue's personal field `number`."""
    return f"field:{number}"


def marker(name: str) -> str:
    if name not in PLACEHOLDERS:
        raise ValueError(f"unknown placeholder {name!r}; known: {', '.join(PLACEHOLDERS)}")
    return f"__NL_{name.upper()}__"


class Slots:
    """A text split at its markers: `literals[0]`, value, `literals[1]`, value, …"""

    def __init__(self, text: str, *, html: bool, fallbacks: tuple[str, ...] = ()):
        self.html = html
        pieces = _MARKER.split(text)
        self.literals = pieces[0::3]
        self.names = [
            named.lower() if named else field_slot(int(number))
            for named, number in zip(pieces[1::3], pieces[2::3], strict=True)
        ]
        self.defaults = {field_slot(n): fallback for n, fallback in enumerate(fallbacks)}
        unknown = sorted(set(self.names) - set(PLACEHOLDERS) - set(self.defaults))
        if unknown:
            raise ValueError(f"unknown placeholder(s) in rendered text: {', '.join(unknown)}")

    def values(self, values: dict[str, str]) -> list[str]:
        """The value of each slot in order (a field's fallback when it has none), HTML-escaped in HTML."""
        found = [values.get(name) or self.defaults.get(name, "") for name in self.names]
        return [escape(value, quote=True) for value in found] if self.html else found

    def fill(self, values: dict[str, str]) -> str:
        out = [self.literals[0]]
        for value, literal in zip(self.values(values), self.literals[1:], strict=True):
            out.append(value)
            out.append(literal)
        return "".join(out)


def unwritten(text: str) -> list[str]:
    """The `[[…]]` placeholders left in `text`: what the editor has still to write."""
    return UNWRITTEN.findall(text)
