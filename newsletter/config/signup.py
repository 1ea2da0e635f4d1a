"""newsletter.toml's `[signup]`: the public sign-up form of `newsletter serve`: the list confirmed
people join, how confirmation messages go, the consent sentence (per language, versioned) and the
form's rate limits. Without `[signup]` there is no form: /subscribe answers 404.

    [signup]
    list = "partners"
    provider = "smtp"            # default: [send] provider
    consent_version = "2023-01"  # recorded with each confirmation: change it with the sentence
    per_client = 5               # sign-ups one client may post in 10 minutes
    per_10_minutes = 60          # sign-ups all clients together may post in 10 minutes

    [signup.consent]
    ar = "…"
    en = "…"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsletter.config.delivery import PROVIDERS
from newsletter.config.toml import TomlReader

KNOWN_KEYS = {
    "signup": {
        "list": 1,
        "provider": 1,
        "consent_version": 1,
        "consent": {"ar": 1, "en": 1},
        "per_client": 1,
        "per_10_minutes": 1,
    }
}
_LIST = re.compile(r"[\w.-]{1,100}")
_VERSION = re.compile(r"[\w.:-]{1,40}")

# The sentence a person agrees to when the project writes none of its own ({organisation}: its name).
DEFAULT_CONSENT = {
    "ar": "أوافق على أن تصلني رسائل {organisation} بالبريد الإلكتروني، وأعلم أن بإمكاني إلغاء الاشتراك في أي وقت من الرابط الموجود في كل رسالة.",
    "en": "I agree to receive the letters of {organisation} by email, and I know I can leave at any time with the link in every letter.",
}


@dataclass(frozen=True)
class SignupSettings:
    list_name: str
    provider: str | None  # None: [send] provider
    consent_version: str
    consent: tuple[tuple[str, str], ...]  # (language code, sentence), every configured language
    per_client: int = 5
    per_10_minutes: int = 60

    def consent_for(self, code: str) -> str:
        return dict(self.consent)[code]


def signup_settings(r: TomlReader, codes: list[str], organisation: dict[str, str]) -> SignupSettings | None:
    if "signup" not in r.data:
        return None
    list_name = r.get("signup.list", str)
    if list_name is not None and not _LIST.fullmatch(list_name):
        r.problem("signup.list", f"expected a list name of letters, digits, '.', '-' or '_', got {list_name!r}")
    provider = r.get("signup.provider", str, None)
    if provider is not None and provider not in PROVIDERS:
        r.problem("signup.provider", f"expected one of {', '.join(PROVIDERS)}, got {provider!r}")
    version = r.get("signup.consent_version", str, "1")
    if version is not None and not _VERSION.fullmatch(version):
        r.problem("signup.consent_version", f"expected a short label such as 2023-01, got {version!r}")
    consent = []
    for code in codes:
        own = r.get(f"signup.consent.{code}", str, None)
        name = organisation.get(code) or next(iter(organisation.values()), "")
        consent.append(
            (code, own.strip() if own else DEFAULT_CONSENT.get(code, DEFAULT_CONSENT["en"]).format(organisation=name))
        )
    for code in (r.data["signup"].get("consent") or {}) if isinstance(r.data["signup"], dict) else ():
        if code not in codes and isinstance(r.data["signup"].get("consent"), dict):
            r.problem(f"signup.consent.{code}", f"language {code!r} is not in languages")
    limits = {}
    for key, default in (("per_client", 5), ("per_10_minutes", 60)):
        value = r.get(f"signup.{key}", int, default)
        if isinstance(value, bool) or (value is not None and not 1 <= value <= 100_000):
            r.problem(f"signup.{key}", f"expected a whole number from 1 to 100000, got {value!r}")
            value = default
        limits[key] = value if value is not None else default
    if list_name is None or (provider is not None and provider not in PROVIDERS) or not _LIST.fullmatch(list_name):
        return None
    return SignupSettings(
        list_name=list_name,
        provider=provider,
        consent_version=version or "1",
        consent=tuple(consent),
        **limits,
    )
