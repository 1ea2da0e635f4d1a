"""Per-recipient values in a rendered variant, filled in without rendering it again.

The templates emit markers such as `__NL_UNSUBSCRIBE_URL__` (ASCII letters and underscores
survive MJML, premailer and lxml's URL escaping); the personal fields of an issue's text
(`{{ name | default("…") }}`) are markers of their own: two private-use characters around the
field's number, which Markdown, MJML, premailer and the text renderer all carry through as
text (the issue folder's loader puts them in place of the fields). A variant is split once at
its markers; each recipient then costs one join. The message composer is the only one that
fills them, escaped, with the person's value, cleaned and isolated, or the fallback written
beside the field (in the file's language). No template is run per recipient.

The other placeholders are the editor's: `[[…]]`, which `newsletter init` and `newsletter new`
leave for text still to be written, and which `check` and a send refuse.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from html import escape

from newsletter.languages import loose

PLACEHOLDERS = ("unsubscribe_url", "name", "email")
_MARKER = re.compile("__NL_([A-Z_]+?)__|\ue000([0-9]+)\ue001")
OPEN, CLOSE = "\ue000", "\ue001"  # around a personal field's number
_FIELD_MARKER = re.compile(f"{OPEN}([0-9]+){CLOSE}")
_ENCODED_FIELD_MARKER = re.compile(r"%EE%80%80[0-9]+%EE%80%81", re.IGNORECASE)
# what a value may not bring into a letter: controls, and the direction characters that would
# turn the text around it (the value is isolated instead)
_UNWANTED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


# What a long real name looks like in each language (the longest lines are the ones that break):
# `check` and `build` show each field with one.
LONG_NAMES = {
    "ar": "عبد الرحمن بن عبد الله بن محمد آل عبد اللطيف الحسيني",
    "en": "Maria-Fernanda Alexandrovna Castellanos de la Cruz-Montgomery",
}
UNWRITTEN = re.compile(r"\[\[[^\]\n]{1,200}\]\]")


@dataclass(frozen=True)
class Field:
    name: str  # as written: "name", "organisation"
    fallback: str
    path: str = ""  # where it is written, for messages
    line: int = 0
    column: str = ""  # the spreadsheet column it is filled from (newsletter.toml's `fields`); "" for its name

    @cached_property
    def key(self) -> str:
        """Where a person's value is, matched loosely: the field's column (its name by default)."""
        return loose(self.column or self.name)


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


def in_attribute(html: str) -> bool:
    """Whether a marker ended up inside a link's address (percent-encoded) or another attribute."""
    if _ENCODED_FIELD_MARKER.search(html):
        return True
    return any(_FIELD_MARKER.search(tag) for tag in re.findall(r"<[^>]*>", html))


def to_slots(rendered: str, marker: Callable[[int], str]) -> str:
    """The markers as the composer's placeholder slots: `marker(number)` gives a slot's text."""
    return _FIELD_MARKER.sub(lambda m: marker(int(m.group(1))), rendered)


def markers_in(rendered: str) -> set[int]:
    """The numbers of the markers in `rendered`, percent-encoded ones (in a link's address) included."""
    encoded = re.findall(r"%EE%80%80([0-9]+)%EE%80%81", rendered, re.IGNORECASE)
    return {int(n) for n in [*_FIELD_MARKER.findall(rendered), *encoded]}


def plain(value: str) -> str:
    """A person's value as it may go into a letter: no control or direction character, spaces collapsed."""
    return " ".join(_UNWANTED.sub(" ", unicodedata.normalize("NFC", value)).split())


def person_values(fields: tuple[Field, ...], person: dict[str, str]) -> dict[str, str]:
    """Slot name → the person's value of each field they have one for (their name, or the attribute
    of the field's column, matched loosely), cleaned and isolated (U+2068 … U+2069), so that no
    value can turn the text around it; the fields they have none for keep their fallback."""
    if not fields:
        return {}
    by_key = {_attribute_key(k): v for k, v in person.items()}
    out = {}
    for number, field in enumerate(fields):
        value = plain(by_key.get(field.key) or "")
        if value:
            out[field_slot(number)] = f"\u2068{value}\u2069"
    return out


@lru_cache(maxsize=1024)
def _attribute_key(name: str) -> str:
    """An attribute's name matched loosely: the same few columns for every person of a send."""
    return loose(name)
