"""Keeping runs of the other script in order inside right-to-left and left-to-right text.

Unwrapped, `+966 11 234 5678` inside Arabic displays as `5678 234 11 966+` and a URL's
trailing slash jumps to its front. `<bdi>` is unsupported in Gmail, Outlook and Yahoo, so
runs are wrapped in `<span dir="…">`; plain text gets Unicode marks instead.
"""

from __future__ import annotations

import re
from html import escape

_URL = r"(?:https?://|www\.)[^\s<>\"]*[^\s<>\".,;:!?،؛)\]}'»”]"
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
_PHONE = r"(?:\+|00)\d[\d \-.()]{5,}\d"
_LATIN_WORD = r"[A-Za-z][A-Za-z0-9'’&/+_-]*"
_LATIN_RUN = rf"{_LATIN_WORD}(?:[ .,:&-]+(?:{_LATIN_WORD}|\d+\b))*"

LATIN_RUN = re.compile(f"{_URL}|{_EMAIL}|{_PHONE}|{_LATIN_RUN}")

_ARABIC_LETTERS = "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff"
_ARABIC_WORD = rf"[{_ARABIC_LETTERS}][{_ARABIC_LETTERS}\u064B-\u065F]*"
ARABIC_RUN = re.compile(rf"{_ARABIC_WORD}(?:[\s،]+{_ARABIC_WORD})*")
HAS_ARABIC = re.compile(f"[{_ARABIC_LETTERS}]")

LRM = "\u200e"
RLM = "\u200f"


def _pattern_for(direction: str) -> re.Pattern[str]:
    return LATIN_RUN if direction == "rtl" else ARABIC_RUN


def wrap_html(text: str, direction: str) -> str:
    """Escape `text` for HTML, wrapping runs of the opposite direction in a dir span."""
    other = "ltr" if direction == "rtl" else "rtl"
    out: list[str] = []
    pos = 0
    for match in _pattern_for(direction).finditer(text):
        out.append(escape(text[pos : match.start()], quote=False))
        out.append(f'<span dir="{other}">{escape(match.group(), quote=False)}</span>')
        pos = match.end()
    out.append(escape(text[pos:], quote=False))
    return "".join(out)


def mark_text(text: str, direction: str) -> str:
    """Plain-text counterpart of wrap_html: strong marks on both sides of each foreign run."""
    if direction != "rtl":
        return text
    return _pattern_for(direction).sub(lambda m: f"{LRM}{m.group()}{LRM}", text)


def is_foreign(text: str, direction: str) -> bool:
    """True when `text` is entirely a run of the other direction (e.g. a Latin link label in Arabic)."""
    text = text.strip()
    if not text:
        return False
    match = _pattern_for(direction).fullmatch(text)
    return match is not None
