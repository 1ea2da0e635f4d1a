"""Personal fields in an issue's text: `{{ name | default("الأصدقاء والصديقات الأعزاء") }}`.

A field is taken out of the Markdown before it is rendered and a marker left in its place: two
private-use characters around its number, which Markdown, MJML, premailer and the text renderer
all carry through as text. After rendering, each marker becomes a placeholder slot that the
message composer fills per recipient, escaped, with the person's value or the fallback written
beside the field (in the file's language). No template is run per recipient.

Fields: `name`, and the attributes `newsletter.toml` lists under `fields` (the other columns of
the subscribers' spreadsheets, matched as loosely as their headers: `organisation` is the
`Organisation` column). Anything else is a build error naming the file and line.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from newsletter.languages import loose

OPEN, CLOSE = "\ue000", "\ue001"
# What a long real name looks like in each language (the longest lines are the ones that break):
# `check` and `build` show each field with one.
LONG_NAMES = {
    "ar": "عبد الرحمن بن عبد الله بن محمد آل عبد اللطيف الحسيني",
    "en": "Maria-Fernanda Alexandrovna Castellanos de la Cruz-Montgomery",
}
BUILT_IN = ("name",)
_FIELD = re.compile(
    r"\{\{\s*(?P<field>[^\s|}]*)\s*"
    r"(?:\|\s*default\s*\(\s*(?:\"(?P<dq>(?:[^\"\\\n]|\\.)*)\"|'(?P<sq>(?:[^'\\\n]|\\.)*)')\s*\)\s*)?\}\}"
)
_LOOKS_LIKE_A_FIELD = re.compile(r"\{\{.*?\}\}|\{\{")
_MARKER = re.compile(f"{OPEN}([0-9]+){CLOSE}")
_ENCODED_MARKER = re.compile(r"%EE%80%80[0-9]+%EE%80%81", re.IGNORECASE)
# what a value may not bring into a letter: controls, and the direction characters that would
# turn the text around it (the value is isolated instead)
_UNWANTED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


@dataclass(frozen=True)
class Field:
    name: str  # as written: "name", "organisation"
    fallback: str
    path: str = ""  # where it is written, for messages
    line: int = 0


class FieldError(ValueError):
    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def take_fields(text: str, fields: list[Field], known: tuple[str, ...], *, first_line: int = 1, path: str = "") -> str:
    """`text` with each field replaced by a marker numbered after those already in `fields`
    (which it extends). Raises FieldError for an unknown field or a `{{` that is not a field."""

    def line_of(position: int) -> int:
        return first_line + text.count("\n", 0, position)

    out: list[str] = []
    last = 0
    for match in _LOOKS_LIKE_A_FIELD.finditer(text):
        found = _FIELD.fullmatch(match.group())
        line = line_of(match.start())
        if found is None:
            raise FieldError(
                f'{match.group()[:60]!r} is not a personal field: write {{{{ name | default("…") }}}}', line
            )
        name = found.group("field")
        if loose(name) not in {loose(k) for k in known} or not name.isidentifier():
            listed = ", ".join(known)
            raise FieldError(
                f"unknown field {name!r} in {match.group()!r}; known: {listed} (add others to fields in newsletter.toml)",
                line,
            )
        fallback = _unescape(found.group("dq") or found.group("sq") or "")
        out.append(text[last : match.start()])
        out.append(f"{OPEN}{len(fields)}{CLOSE}")
        fields.append(Field(name, fallback, path, line))
        last = match.end()
    out.append(text[last:])
    return "".join(out)


def in_attribute(html: str) -> bool:
    """Whether a marker ended up inside a link's address (percent-encoded) or another attribute."""
    if _ENCODED_MARKER.search(html):
        return True
    return any(_MARKER.search(tag) for tag in re.findall(r"<[^>]*>", html))


def to_slots(rendered: str, marker: Callable[[int], str]) -> str:
    """The markers as the composer's placeholder slots: `marker(number)` gives a slot's text."""
    return _MARKER.sub(lambda m: marker(int(m.group(1))), rendered)


def markers_in(rendered: str) -> set[int]:
    """The numbers of the markers in `rendered`, percent-encoded ones (in a link's address) included."""
    encoded = re.findall(r"%EE%80%80([0-9]+)%EE%80%81", rendered, re.IGNORECASE)
    return {int(n) for n in [*_MARKER.findall(rendered), *encoded]}


def plain(value: str) -> str:
    """A person's value as it may go into a letter: no control or direction character, spaces collapsed."""
    return " ".join(_UNWANTED.sub(" ", unicodedata.normalize("NFC", value)).split())


def person_values(fields: tuple[Field, ...], person: dict[str, str]) -> dict[str, str]:
    """Slot name → the person's value of each field they have one for (their name, or the attribute
    matched loosely), cleaned and isolated (U+2068 … U+2069), so that no value can turn the text
    around it; the fields they have none for keep their fallback."""
    if not fields:
        return {}
    by_key = {loose(k): plain(v) for k, v in person.items()}
    out = {}
    for number, field in enumerate(fields):
        value = by_key.get(loose(field.name))
        if value:
            out[f"field:{number}"] = f"\u2068{value}\u2069"
    return out
