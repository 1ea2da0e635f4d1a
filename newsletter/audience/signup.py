"""Joining by oneself, the rules: the sign-up form read and checked, the honeypot, the languages a
reader may choose, a name as a form may give it. Pure: the pending sign-up and its confirmation
are sending/confirmations.py's."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from newsletter.config import Config
from newsletter.keys import normalise_email
from newsletter.languages import BOTH

MAX_NAME = 200
SOURCE = "sign-up form"

# controls, and the bidi embeddings, overrides and isolates that would turn the text around them
_UNWANTED = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def clean_name(text: str) -> str:
    """A name as given in a form: no control or direction character, spaces collapsed, at most MAX_NAME."""
    text = _UNWANTED.sub(" ", unicodedata.normalize("NFC", text))
    return " ".join(text.split())[:MAX_NAME].strip()


def choices(config: Config) -> list[str]:
    """The languages a reader may choose: each configured one, and both when there are two or more."""
    return [*config.codes, BOTH] if len(config.codes) > 1 else list(config.codes)


@dataclass(frozen=True)
class SignupForm:
    email: str  # normalised
    name: str
    language: str
    page_language: str  # the language of the form it was sent from


@dataclass(frozen=True)
class FormProblems:
    keys: tuple[str, ...]  # words keys: bad_email, no_consent
    page_language: str
    values: dict[str, str]


def read_form(fields: dict[str, str], config: Config) -> SignupForm | FormProblems:
    """The posted fields checked: an address, the consent ticked, a language offered."""
    page = fields.get("form_language", "")
    page = page if page in config.codes else config.primary.code
    language = fields.get("language", "")
    if language not in choices(config):
        language = page
    problems = []
    raw = fields.get("email", "")[:320]
    email = ""
    try:
        email = normalise_email(raw)
    except ValueError:
        problems.append("bad_email")
    if fields.get("consent") != "yes":
        problems.append("no_consent")
    name = clean_name(fields.get("name", ""))
    if problems:
        return FormProblems(tuple(problems), page, {"email": raw.strip(), "name": name, "language": language})
    return SignupForm(email, name, language, page)


def is_bot(fields: dict[str, str]) -> bool:
    """The honeypot: a field people never see, which form-filling robots fill."""
    return bool(fields.get("website", "").strip())
