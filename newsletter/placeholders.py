"""Per-recipient values in a rendered variant, filled in without rendering it again.

The templates emit markers such as `__NL_UNSUBSCRIBE_URL__` (ASCII letters and underscores
survive MJML, premailer and lxml's URL escaping). A variant is split once at its markers;
each recipient then costs one join. The message composer is the only one that fills them.
"""

from __future__ import annotations

import re
from html import escape

PLACEHOLDERS = ("unsubscribe_url", "name", "email")
_MARKER = re.compile(r"__NL_([A-Z_]+?)__")


def marker(name: str) -> str:
    if name not in PLACEHOLDERS:
        raise ValueError(f"unknown placeholder {name!r}; known: {', '.join(PLACEHOLDERS)}")
    return f"__NL_{name.upper()}__"


class Slots:
    """A text split at its markers: `literals[0]`, value, `literals[1]`, value, …"""

    def __init__(self, text: str, *, html: bool):
        self.html = html
        pieces = _MARKER.split(text)
        self.literals = pieces[0::2]
        self.names = [p.lower() for p in pieces[1::2]]
        unknown = sorted(set(self.names) - set(PLACEHOLDERS))
        if unknown:
            raise ValueError(f"unknown placeholder(s) in rendered text: {', '.join(unknown)}")

    def values(self, values: dict[str, str]) -> list[str]:
        """The value of each slot in order, HTML-escaped in HTML."""
        found = [values.get(name, "") for name in self.names]
        return [escape(value, quote=True) for value in found] if self.html else found

    def fill(self, values: dict[str, str]) -> str:
        out = [self.literals[0]]
        for value, literal in zip(self.values(values), self.literals[1:], strict=True):
            out.append(value)
            out.append(literal)
        return "".join(out)
