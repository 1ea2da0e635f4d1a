"""Assembling a loaded issue into one letter per language, with sections numbered 1..n."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from newsletter.config import Config
from newsletter.languages import Language, format_month, format_number
from newsletter.letter.issue_folder import Issue, Part


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
            # Dates keep the digits the editors type in the text (the body's years are western).
            date_label=format_month(language, issue.date.year, issue.date.month, "western"),
            opening=Block("", opening.title, opening) if opening else None,
            sections=sections,
            closing=Block("", closing.title, closing) if closing else None,
        )
    return letters
