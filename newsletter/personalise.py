"""Filling per-recipient values into a rendered variant, without rendering it again.

The templates emit markers such as `__NL_UNSUBSCRIBE_URL__` (ASCII letters and underscores
survive MJML, premailer and lxml's URL escaping). A variant is split once at its markers;
each recipient then costs one join.
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


class Personaliser:
    """A text split at its markers; `fill(values)` returns it with the values put in."""

    def __init__(self, text: str, *, html: bool):
        self.html = html
        pieces = _MARKER.split(text)
        self.literals = pieces[0::2]
        self.names = [p.lower() for p in pieces[1::2]]
        unknown = sorted(set(self.names) - set(PLACEHOLDERS))
        if unknown:
            raise ValueError(f"unknown placeholder(s) in rendered text: {', '.join(unknown)}")

    def fill(self, values: dict[str, str]) -> str:
        out = [self.literals[0]]
        for name, literal in zip(self.names, self.literals[1:]):
            value = values.get(name, "")
            out.append(escape(value, quote=True) if self.html else value)
            out.append(literal)
        return "".join(out)
