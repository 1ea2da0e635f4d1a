"""Assembling a loaded issue into one letter per language, with sections numbered 1..n, and
the bilingual letter's inbox line (subject, preheader, From name) from both languages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from newsletter.config import Config
from newsletter.domain import BILINGUAL
from newsletter.languages import Language, format_month, format_number
from newsletter.letter.issue_folder import Issue, Part
from newsletter.letter.personal import Field

SUBJECT_MAX = 70  # characters most inboxes show before cutting
PREHEADER_MIN, PREHEADER_MAX = 40, 110
SEPARATOR = " | "  # between the languages of a bilingual inbox line, the primary first


@dataclass(frozen=True)
class Block:
    """A titled piece of the letter; `label` is the rendered number, or "" when unnumbered."""

    label: str
    title: str | None
    part: Part


@dataclass(frozen=True)
class Letter:
    language: Language
    organisation: str
    title: str
    subject: str
    preheader: str
    date: dt.date
    date_label: str
    opening: Block | None
    sections: tuple[Block, ...]
    closing: Block | None
    slug: str = ""
    digits: str = "western"  # how numbers are written: the sections' and the ordered lists'
    # issue.toml's `subject.bilingual` and `preheader.bilingual`, when given
    bilingual_subject: str | None = None
    bilingual_preheader: str | None = None
    fields: tuple[Field, ...] = ()  # the issue's personal fields, by marker number (letter.personal)


@dataclass(frozen=True)
class InboxLine:
    """What an inbox shows of a message before it is opened, beside the From name (sender_name)."""

    subject: str
    preheader: str


def assemble(issue: Issue, config: Config) -> dict[str, Letter]:
    """One Letter per configured language, sections numbered consecutively in file order.

    The number is derived from position, never from the file name or the editor's text,
    so gaps in file numbers (01, 02, 05) still read 1, 2, 3.
    """
    letters: dict[str, Letter] = {}
    for language in config.languages:
        code = language.code
        digits = config.numbering[code]
        sections = tuple(
            Block(label=f"{format_number(n, digits)}.", title=s.parts[code].title, part=s.parts[code])
            for n, s in enumerate(issue.sections, start=1)
        )
        opening = issue.opening.get(code)
        closing = issue.closing.get(code)
        letters[code] = Letter(
            language=language,
            organisation=config.organisation[code],
            title=issue.title.get(code) or issue.subject[code],
            subject=issue.subject[code],
            preheader=issue.preheader[code],
            date=issue.date,
            # Dates keep the digits the editors type in the text (the body's years are western),
            # and the month names of [dates] (default: both Arabic names, as the letters write them).
            date_label=format_month(language, issue.date.year, issue.date.month, "western", config.dates.style(code)),
            opening=Block("", opening.title, opening) if opening else None,
            sections=sections,
            closing=Block("", closing.title, closing) if closing else None,
            slug=issue.slug,
            digits=digits,
            bilingual_subject=issue.subject.get(BILINGUAL),
            bilingual_preheader=issue.preheader.get(BILINGUAL),
            fields=issue.fields,
        )
    return letters


def inbox_line(letters: Sequence[Letter]) -> InboxLine:
    """The inbox line of a letter in these languages: one language's own, or for the bilingual
    letter the one issue.toml gives, else every language's joined, the primary first, shortened
    at word boundaries to the lengths `check` asks for."""
    first = letters[0]
    if len(letters) == 1:
        return InboxLine(first.subject, first.preheader)
    return InboxLine(
        subject=first.bilingual_subject or joined([letter.subject for letter in letters], SUBJECT_MAX),
        preheader=first.bilingual_preheader or joined([letter.preheader for letter in letters], PREHEADER_MAX),
    )


def sender_name(config: Config, codes: Sequence[str]) -> str:
    """The From name of a letter in these languages, by the same rule: the organisation's name,
    for the bilingual letter `organisation.bilingual` or the names joined, the primary first."""
    if len(codes) == 1:
        return config.organisation.get(codes[0], "")
    names = [config.organisation.get(code, "") for code in codes]
    return config.organisation_bilingual or joined(names, SUBJECT_MAX)


def joined(parts: Sequence[str], limit: int) -> str:
    """`parts` joined by SEPARATOR in at most `limit` characters: a part longer than its share
    is cut at a word boundary, with "…"; a shorter part leaves its room to the others."""
    parts = [part for part in parts if part]
    text = SEPARATOR.join(parts)
    if len(text) <= limit:
        return text
    room = limit - len(SEPARATOR) * (len(parts) - 1)
    short: dict[int, str] = {}
    for i in sorted(range(len(parts)), key=lambda i: len(parts[i])):  # the shortest first
        short[i] = shorten(parts[i], room // (len(parts) - len(short)))
        room -= len(short[i])
    return SEPARATOR.join(short[i] for i in range(len(parts)))


def shorten(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut at a word boundary and ended with "…"."""
    if len(text) <= width:
        return text
    cut = text[: max(width - 1, 0)]
    if " " in cut and not text[len(cut)].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:–-—،؛") + "…"
