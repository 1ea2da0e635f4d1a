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
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from urllib.parse import quote

from markupsafe import Markup

from newsletter.config import Config
from newsletter.languages import BILINGUAL, Language, format_month, format_number
from newsletter.letter import markdown
from newsletter.letter.images import LetterImages
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
    """What an inbox shows of a message before it is opened, beside the From name (sender_name).

    `long_subject`, `long_preheader`: what it would have said, when it had to be shortened (a
    bilingual line joined from each language's, issue.toml giving none of its own)."""

    subject: str
    preheader: str
    long_subject: str | None = None
    long_preheader: str | None = None

    @property
    def shortened(self) -> dict[str, str]:
        """Each shortened key ("subject", "preheader") → the value before it was shortened."""
        longs = {"subject": self.long_subject, "preheader": self.long_preheader}
        return {key: value for key, value in longs.items() if value is not None}


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
    to the lengths `check` asks for. A subject keeps the end of each language's (the date, the
    number), losing the organisation's name first (the From name beside it says it already);
    a preheader, a sentence, keeps its beginning."""
    first = letters[0]
    if len(letters) == 1:
        return InboxLine(first.subject, first.preheader)
    subjects = SEPARATOR.join(letter.subject for letter in letters)
    preheaders = SEPARATOR.join(letter.preheader for letter in letters)
    cuts = [partial(keep_end, drop=letter.organisation) for letter in letters]
    subject = first.bilingual_subject or joined([letter.subject for letter in letters], SUBJECT_MAX, cuts)
    preheader = first.bilingual_preheader or joined([letter.preheader for letter in letters], PREHEADER_MAX)
    return InboxLine(
        subject,
        preheader,
        long_subject=subjects if subject != subjects and not first.bilingual_subject else None,
        long_preheader=preheaders if preheader != preheaders and not first.bilingual_preheader else None,
    )


def inbox_lines(letters: Mapping[str, Letter]) -> dict[str, InboxLine]:
    """Every variant's inbox line, as it is sent: each language's, and the bilingual one."""
    lines = {code: inbox_line([letter]) for code, letter in letters.items()}
    if len(letters) > 1:
        lines[BILINGUAL] = inbox_line(list(letters.values()))
    return lines


def sender_name(config: Config, codes: Sequence[str]) -> str:
    """The From name of a letter in these languages, by the same rule: the organisation's name,
    for the bilingual letter `organisation.bilingual` or the names joined, the primary first."""
    if len(codes) == 1:
        return config.organisation.get(codes[0], "")
    names = [config.organisation.get(code, "") for code in codes]
    return config.organisation_bilingual or joined(names, SUBJECT_MAX)


Cut = Callable[[str, int], str]


def joined(parts: Sequence[str], limit: int, cuts: Sequence[Cut] | None = None) -> str:
    """`parts` joined by SEPARATOR in at most `limit` characters: a part longer than its share
    is cut by its `cuts` (default `shorten`); a shorter part leaves its room to the others."""
    cut_of = dict(enumerate(cuts or [shorten] * len(parts)))
    kept = [(part, cut_of[i]) for i, part in enumerate(parts) if part]
    text = SEPARATOR.join(part for part, _ in kept)
    if len(text) <= limit:
        return text
    room = limit - len(SEPARATOR) * (len(kept) - 1)
    short: dict[int, str] = {}
    for i in sorted(range(len(kept)), key=lambda i: len(kept[i][0])):  # the shortest first
        part, cut = kept[i]
        short[i] = cut(part, room // (len(kept) - len(short)))
        room -= len(short[i])
    return SEPARATOR.join(short[i] for i in range(len(kept)))


ELLIPSIS = "…"
_PUNCTUATION = " ,;:–-—،؛"


def shorten(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut at a word boundary and ended with "…"."""
    if len(text) <= width:
        return text
    cut = text[: max(width - 1, 0)]
    if " " in cut and not text[len(cut)].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(_PUNCTUATION) + ELLIPSIS


# What ends a subject's head before its tail ("Year-End Update – December 2022"): a dash between spaces.
_TAIL = re.compile(r"\s[–—-]\s(?=\S)")


def keep_end(text: str, width: int, *, drop: str = "") -> str:
    """`text` in at most `width` characters, keeping its end, where a subject says when or which
    (the date, the number): first without `drop` (the organisation's name, which the From name
    beside a subject says already), then with its head cut at a word boundary before the part
    after its last dash ("Year-End… – December 2022"), and last its start cut ("…December 2022").
    Words stay whole and in their order, so an Arabic half reads right to left as written."""
    if len(text) <= width:
        return text
    if drop:
        text = without_name(text, drop)
        if len(text) <= width:
            return text
    dashes = list(_TAIL.finditer(text))
    if dashes:
        head, tail = text[: dashes[-1].start()], text[dashes[-1].start() :]
        if width - len(tail) >= 4:  # room for a word of the head and "…"
            return shorten(head, width - len(tail)) + tail
    return start_cut(text, width)


def start_cut(text: str, width: int) -> str:
    """`text` in at most `width` characters, its start cut at a word boundary: "…" and its end."""
    if len(text) <= width:
        return text
    end = text[len(text) - max(width - 1, 0) :] if width > 1 else ""
    if " " in end and not text[len(text) - len(end) - 1].isspace():
        end = end.split(" ", 1)[1]
    return (ELLIPSIS + end.lstrip(_PUNCTUATION))[:width]


def without_name(text: str, name: str) -> str:
    """`text` without `name` (an Arabic prefix such as لـ or وبـ attached to it, an English 's
    after it): "…" where words before it in the same clause are left hanging, nothing at its start."""
    pattern = rf"(?<!\S)[وفبلك]{{0,2}}{re.escape(name.strip())}(?:['’]s)?(?!\w)"
    found = re.search(pattern, text, re.IGNORECASE)
    if not name.strip() or found is None:
        return text
    before, after = text[: found.start()].rstrip(), text[found.end() :].lstrip()
    if not before or before[-1] in _PUNCTUATION:
        return f"{before} {after}".strip(_PUNCTUATION)
    return f"{before}{ELLIPSIS} {after}".strip()


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


def image_sources(images: LetterImages) -> dict[str, markdown.ImageSource]:
    """Each image's Markdown src → the src the HTML gets, its width and its height as shown."""
    out: dict[str, markdown.ImageSource] = {}
    for src, (shown, width) in images.html_sources().items():
        image = images.by_src.get(src)
        height = max(1, round(image.height * width / image.width)) if image and width else None
        out[src] = (shown, width, height)
    return out


def block_view(letter: Letter, images: LetterImages) -> dict:
    """A letter's text as the templates take it: each section's HTML and plain text."""
    language = letter.language
    sources = image_sources(images)

    def block(b: Block | None) -> dict | None:
        if b is None:
            return None
        # The closing keeps its line breaks: signatures put name, role and organisation on their
        # own lines. Elsewhere a line break joins (text pasted from a message or a document comes
        # wrapped at its old width); a backslash or two spaces at the end of a line break it anywhere.
        breaks = b is letter.closing
        return {
            "label": b.label,
            "title": b.title,
            "html": Markup(markdown.to_html(b.part.tokens, language, sources, letter.digits, breaks=breaks)),
            "text": markdown.to_text(b.part.tokens, language, digits=letter.digits, breaks=breaks),
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
