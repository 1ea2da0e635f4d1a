"""Assembling a loaded issue into one letter per language, with sections numbered 1..n, and
the bilingual letter's inbox line (subject, preheader, From name) from both languages.

And the letter on the web: where each page of the public archive lives, and what a message and
a web page say about it. The one home of the archive's layout:

    index.html              the index in the primary language (the same page as index.<code>.html)
    index.<code>.html       the index in each language, newest first
    feed.<code>.xml         an Atom feed per language
    <slug>/<variant>.html   one page per issue and variant (ar, en, bilingual), images beside it

Every page links to the others relatively, so the folder can be hosted anywhere; a message's
"view in browser" link is absolute: `[archive] url` (default `base_url`/archive, which
`newsletter serve` answers) followed by the page's path. No link holds anything personal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from markupsafe import Markup

from newsletter.config import Config
from newsletter.languages import BILINGUAL, Language, format_month, format_number
from newsletter.letter import markdown
from newsletter.letter.issue_folder import Issue, Part
from newsletter.placeholders import Field

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
    fields: tuple[Field, ...] = ()  # the issue's personal fields, by marker number (newsletter.placeholders)


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


# --- the letter on the web ---------------------------------------------------------------------


def page_path(slug: str, variant: str) -> str:
    """The page's file in the site's folder."""
    return f"{slug}/{variant}.html"


def page_href(slug: str, variant: str) -> str:
    """The page's path in a URL (a folder name with spaces or Arabic letters percent-encoded)."""
    return quote(page_path(slug, variant))


def index_name(code: str) -> str:
    return f"index.{code}.html"


def feed_name(code: str) -> str:
    return f"feed.{code}.xml"


def page_url(config: Config, slug: str, variant: str) -> str | None:
    """Where a variant's page answers (None when there is no archive URL: no base_url)."""
    return f"{config.archive.url}/{page_href(slug, variant)}" if config.archive.url and slug else None


def message_links(config: Config, slug: str, name: str, languages: list[Language]) -> dict:
    """What a message says about its web page: "view in browser" in the reader's language and,
    in a bilingual letter, the other language's page beside the jump link (in-message anchors
    do nothing in the Gmail and Outlook apps)."""
    first = languages[0]
    url = page_url(config, slug, name)
    online = {"url": url, "text": first.word("view_online"), "dir": first.dir, "lang": first.code} if url else None
    others = {
        language.code: {"url": page_url(config, slug, language.code), "text": language.word("read_in_browser")}
        for language in languages[1:]
    }
    return {"online": online, "other_pages": others}


def web_links(name: str, languages: list[Language], all_languages: tuple[Language, ...]) -> dict:
    """What a web page links to, relatively from `<slug>/<variant>.html`: the archive's index in
    the page's language, and the other pages of the issue (from the bilingual page, each
    language's by its name; from one language's, the others' "Read in …")."""
    first = languages[0]
    pages = [
        {
            "url": f"{language.code}.html",
            "text": language.name if name == BILINGUAL else language.word("read_in"),
            "dir": language.dir,
            "lang": language.code,
        }
        for language in all_languages
        if name == BILINGUAL or language.code != first.code
    ]
    return {"index": {"url": f"../{index_name(first.code)}", "text": first.word("archive_back")}, "pages": pages}


# --- views handed to the templates ------------------------------------------------------------


def block_view(letter: Letter, images: dict[str, tuple[str, int | None]]) -> dict:
    """A letter's text as the templates take it: each section's HTML and plain text."""
    language = letter.language

    def block(b: Block | None) -> dict | None:
        if b is None:
            return None
        return {
            "label": b.label,
            "title": b.title,
            "html": Markup(markdown.to_html(b.part.tokens, language, images, letter.digits)),
            "text": markdown.to_text(b.part.tokens, language, digits=letter.digits),
        }

    return {
        "lang": language.code,
        "dir": language.dir,
        "align": language.align,
        "font": language.font_stack,
        "organisation": letter.organisation,
        "title": letter.title,
        "date_label": letter.date_label,
        "opening": block(letter.opening),
        "sections": [block(s) for s in letter.sections],
        "closing": block(letter.closing),
    }


def footer_view(letter: Letter, config: Config) -> dict:
    language = letter.language
    signup = config.archive.signup_url
    return {
        "signup": {"url": signup, "text": language.word("signup"), "link": language.word("signup_link")}
        if signup
        else None,
        "lang": language.code,
        "dir": language.dir,
        "align": language.align,
        "font": language.font_stack,
        "why": language.word("why", organisation=letter.organisation),
        "contact_label": language.word("contact"),
        "contact": config.contact,
        "unsubscribe": language.word("unsubscribe"),
        "unsubscribe_text": language.word("unsubscribe_text"),
    }
