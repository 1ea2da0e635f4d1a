"""Who gets a campaign, and which variant: pure rules, no database."""

from __future__ import annotations

from collections.abc import Callable

from newsletter import domain as d
from newsletter.config import Config
from newsletter.domain import BILINGUAL, BOTH


def skip_reason(status: str, suppressed: bool) -> str | None:
    """Why a member of the list gets nothing, or None when they get the letter."""
    if status != d.ACTIVE:
        return status
    if suppressed:
        return "suppressed"
    return None


def variant_chooser(config: Config) -> Callable[[str], str]:
    """The variant a reader of `language` gets: the bilingual one under that layout or when they
    chose both languages, otherwise their language (the primary one when theirs is not configured)."""
    codes = config.codes
    if config.layout == "bilingual" and len(codes) > 1:
        return lambda language: BILINGUAL
    if len(codes) > 1:
        return lambda language: BILINGUAL if language == BOTH else language if language in codes else codes[0]
    return lambda language: language if language in codes else codes[0]
