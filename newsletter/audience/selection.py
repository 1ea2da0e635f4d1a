"""Who gets a campaign, which variant, and why not: pure rules, no database. The store reads
each person's standing (`Standing`) and asks `decide`, both when a campaign's recipients are
frozen into the ledger and again when a delivery is claimed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from newsletter import domain as d
from newsletter.config import Config
from newsletter.languages import BILINGUAL, BOTH

ALREADY_HAD = "already had this issue"


@dataclass(frozen=True)
class Standing:
    """What the store knows about one person for one campaign."""

    status: str | None  # None: the person was forgotten
    language: str = ""
    on_lists: bool = True  # on one of the campaign's lists
    suppressed: bool = False  # their address is among the suppressions
    had_issue: bool = False  # had this issue in another campaign of the same kind, or will in an open one
    cancelled: bool = False  # the campaign was cancelled
    variant: str | None = None  # at a claim: the variant frozen in the ledger


@dataclass(frozen=True)
class Decision:
    """Send `variant`, or skip for `reason`."""

    variant: str | None
    reason: str | None

    @property
    def send(self) -> bool:
        return self.reason is None


def decide(person: Standing, *, variant_for: Callable[[str], str] | None = None, again: bool = False) -> Decision:
    """Whether the person gets the campaign, and which variant. At a claim (`person.variant`
    set) the reason is a sentence kept with the delivery; before, a short name that is counted."""
    claimed = person.variant is not None
    reason: str | None = None
    if person.status is None:
        reason = "the person was forgotten"
    elif person.status != d.ACTIVE:
        reason = f"the person is {person.status}" if claimed else person.status
    elif not person.on_lists:
        reason = "the person was taken off the campaign's lists"
    elif person.suppressed:
        reason = "suppressed"
    elif person.had_issue and not again:
        reason = ALREADY_HAD
    elif person.cancelled:
        reason = "the campaign was cancelled"
    if reason is not None:
        return Decision(None, reason)
    if person.variant is not None:
        return Decision(person.variant, None)
    return Decision(variant_for(person.language) if variant_for else None, None)


def variant_chooser(config: Config) -> Callable[[str], str]:
    """The variant a reader of `language` gets: the bilingual one under that layout or when they
    chose both languages, otherwise their language (the primary one when theirs is not configured)."""
    codes = config.codes
    if config.layout == "bilingual" and len(codes) > 1:
        return lambda language: BILINGUAL
    if len(codes) > 1:
        return lambda language: BILINGUAL if language == BOTH else language if language in codes else codes[0]
    return lambda language: language if language in codes else codes[0]
