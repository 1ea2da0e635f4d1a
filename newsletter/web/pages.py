"""The public pages as they are written: blocks of text and small forms, each block in its own
language and direction, through the project's page.html.j2 (autoescaped), and the security
headers every public answer carries. The forms' fields, the sign-up form's included, are made here.
Only HTML comes out (no response), so `newsletter signup-form` writes its form without Starlette."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jinja2
from markupsafe import Markup, escape

from newsletter.audience.selection import variant_chooser
from newsletter.config import Config
from newsletter.languages import BILINGUAL, BOTH, LANGUAGES, Language, word

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def received(config: Config, chosen: str | None) -> str:
    """What a reader whose language is `chosen` receives, as a choice of language: a code, or
    BOTH for the bilingual letter (everyone's under the bilingual layout). The reader's page and
    the confirmation page both say it."""
    variant = variant_chooser(config)(chosen or "")
    return BOTH if variant == BILINGUAL else variant


def mask(address: str) -> str:
    """`nour@example.org` → `n•••@example.org`: enough to recognise, not to harvest."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}•••@{domain}"


def shown_address(address: str) -> Markup:
    return Markup('<span class="address" dir="ltr">{}</span>').format(mask(address))


@dataclass
class Block:
    language: Language
    title: str
    paragraphs: list[Any] = field(default_factory=list)  # str (escaped) or Markup, or {"text", "error"}
    forms: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "lang": self.language.code,
            "dir": self.language.dir,
            "font": self.language.font_stack,
            "title": self.title,
            "paragraphs": self.paragraphs,
            "forms": self.forms,
        }


class Pages:
    def __init__(self, config: Config):
        self.config = config
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(config.templates)), autoescape=True)
        self.template = env.get_template("page.html.j2")

    def language(self, code: str | None) -> Language:
        return LANGUAGES[code] if code in self.config.codes and code is not None else self.config.primary

    def organisation(self, language: Language) -> str:
        return self.config.organisation.get(language.code) or next(iter(self.config.organisation.values()), "")

    def say(self, language: Language, key: str, **values: Any) -> Markup:
        """A sentence of the sign-up words, escaped, with its values (escaped unless markup)."""
        values.setdefault("organisation", self.organisation(language))
        return Markup(escape(word(language.code, key))).format(**values)

    def in_choice(self, language: Language, choice: str) -> str:
        """`بالعربية`, `in English`, `in Arabic and English`: how a reader's language choice reads."""
        return word(language.code, f"in_{choice}") if choice in (*self.config.codes, BOTH) else ""

    def html(self, blocks: list[Block]) -> str:
        """The page of `blocks`, in the first block's language and direction."""
        first = blocks[0].language
        return self.template.render(
            lang=first.code,
            dir=first.dir,
            font=first.font_stack,
            title=blocks[0].title,
            blocks=[block.view() for block in blocks],
        )

    # --- the forms -------------------------------------------------------------------------

    def offers_language(self) -> bool:
        """Whether a reader's choice of language changes their letters: only under the
        per-recipient layout (under the bilingual one everyone reads every language)."""
        return self.config.layout == "per-recipient" and len(self.config.codes) > 1

    def language_field(self, language: Language, chosen: str) -> dict[str, Any]:
        codes = [*self.config.codes, BOTH] if len(self.config.codes) > 1 else list(self.config.codes)
        return {
            "kind": "choice",
            "name": "language",
            "label": word(language.code, "language"),
            "options": [(code, word(language.code, f"choice_{code}")) for code in codes],
            "value": chosen,
        }

    def signup_form(self, language: Language, action: str, values: dict[str, str] | None = None) -> dict[str, Any]:
        """The sign-up form in one language: address, name, language, consent, honeypot."""
        values = values or {}
        assert self.config.signup is not None
        fields: list[dict[str, Any]] = [
            {"kind": "hidden", "name": "form_language", "value": language.code},
            {
                "kind": "email",
                "name": "email",
                "label": word(language.code, "email"),
                "value": values.get("email", ""),
                "required": True,
                "maxlength": 320,
            },
            {"kind": "text", "name": "name", "label": word(language.code, "name"), "value": values.get("name", "")},
        ]
        if self.offers_language():
            fields.append(self.language_field(language, values.get("language") or language.code))
        fields += [
            {
                "kind": "checkbox",
                "name": "consent",
                "value": "yes",
                "label": self.config.signup.consent_for(language.code),
                "required": True,
            },
            {"kind": "honeypot", "name": "website", "label": word(language.code, "honeypot")},
        ]
        return {"action": action, "fields": fields, "label": word(language.code, "subscribe")}
