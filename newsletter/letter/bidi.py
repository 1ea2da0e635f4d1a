"""Keeping runs of the other script in order inside right-to-left and left-to-right text.

Unwrapped, `+966 11 234 5678` inside Arabic displays as `5678 234 11 966+` and a URL's
trailing slash jumps to its front. `<bdi>` is unsupported in Gmail, Outlook and Yahoo, so
runs are wrapped in `<span dir="…">`; plain text gets Unicode marks instead. Short runs with a
space or hyphen (phone numbers, codes) are kept on one line (`white-space:nowrap`, inline, so
that it holds where a client drops the `<style>` block).

In plain text a mark touching a URL breaks link detectors (they find nothing, or take the mark
into the URL), so URLs and addresses are delimited as RFC 3986 (appendix C) suggests,
`<https://…>`, with the marks outside the delimiters: `‎<https://…>‎`, `‎(https://…)‎`.
"""

from __future__ import annotations

import re
from html import escape

_URL = r"(?:https?://|www\.)[^\s<>\"]*[^\s<>\".,;:!?،؛)\]}'»”]"
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# international (+…, 00…) or local numbers in groups: 011 234 5678, 06-12-34-56
_PHONE = r"(?:\+|00)\d[\d \-.()]{5,}\d|\d{2,4}(?:[ -]\d{2,4}){2,}"
_LATIN_WORD = r"[A-Za-z][A-Za-z0-9'’&/+_-]*"
_LATIN_RUN = rf"{_LATIN_WORD}(?:[ .,:&-]+(?:{_LATIN_WORD}|\d+\b))*"

LATIN_RUN = re.compile(f"(?P<url>{_URL})|(?P<email>{_EMAIL})|(?P<phone>{_PHONE})|{_LATIN_RUN}")
# what a reader would take for a link, typos included (`http//…`, `https:/…`), for `check`
URL_LIKE = re.compile(rf"{_EMAIL}|\b(?:https?(?::/{{0,2}}|//)|www\.)[^\s<>\"]*[^\s<>\".,;:!?،؛)\]}}'»”]")

_ARABIC_LETTERS = "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff"
_ARABIC_WORD = rf"[{_ARABIC_LETTERS}][{_ARABIC_LETTERS}\u064B-\u065F]*"
ARABIC_RUN = re.compile(rf"{_ARABIC_WORD}(?:[\s،]+{_ARABIC_WORD})*")
HAS_ARABIC = re.compile(f"[{_ARABIC_LETTERS}]")

LRM = "\u200e"
RLM = "\u200f"
NOWRAP_MAX = 24  # characters: a run this short fits a 320 px phone's column on one line
_BREAKS = re.compile(r"[\s/-]")


def _pattern_for(direction: str) -> re.Pattern[str]:
    return LATIN_RUN if direction == "rtl" else ARABIC_RUN


def _keep_together(match: re.Match[str]) -> bool:
    """A short run that a line could break inside (a phone number, a code such as `COVID-19`)."""
    text = match.group()
    link = match.re is LATIN_RUN and (match.group("url") or match.group("email"))
    return not link and len(text) <= NOWRAP_MAX and bool(_BREAKS.search(text))


def wrap_html(text: str, direction: str) -> str:
    """Escape `text` for HTML, wrapping runs of the opposite direction in a dir span."""
    other = "ltr" if direction == "rtl" else "rtl"
    out: list[str] = []
    pos = 0
    for match in _pattern_for(direction).finditer(text):
        out.append(escape(text[pos : match.start()], quote=False))
        style = ' style="white-space:nowrap"' if _keep_together(match) else ""
        out.append(f'<span dir="{other}"{style}>{escape(match.group(), quote=False)}</span>')
        pos = match.end()
    out.append(escape(text[pos:], quote=False))
    return "".join(out)


def isolate_link(target: str, direction: str, *, opening: str = "<", closing: str = ">") -> str:
    """A URL or address shown in plain text of `direction`: in right-to-left text delimited
    (`<…>` or `(…)`) with the marks outside, so that no mark touches the URL."""
    if direction != "rtl":
        return target if opening == "<" else f"{opening}{target}{closing}"
    return f"{LRM}{opening}{target}{closing}{LRM}"


def mark_text(text: str, direction: str) -> str:
    """Plain-text counterpart of wrap_html: strong marks on both sides of each foreign run
    (URLs and addresses delimited first: see isolate_link)."""
    if direction != "rtl":
        return text

    def marked(match: re.Match[str]) -> str:
        if match.group("url") or match.group("email"):
            return isolate_link(match.group(), direction)
        return f"{LRM}{match.group()}{LRM}"

    return LATIN_RUN.sub(marked, text)


def is_foreign(text: str, direction: str) -> bool:
    """True when `text` is entirely a run of the other direction (e.g. a Latin link label in Arabic)."""
    text = text.strip()
    if not text:
        return False
    match = _pattern_for(direction).fullmatch(text)
    return match is not None
