"""newsletter.toml's `[signup]`: the public sign-up form of `newsletter serve`: the list confirmed
people join, how confirmation messages go, the consent sentence (per language, versioned) and the
form's rate limits (per mailbox, domain, client network and in all: newsletter.web.limits).
Without `[signup]` there is no form: /subscribe answers 404. Declared once
(newsletter.config.declare)."""

from __future__ import annotations

import re

from newsletter.config.declare import setting, table
from newsletter.config.delivery import PROVIDERS
from newsletter.config.toml import Choice, PerLanguage, Text, Whole

_LIST = re.compile(r"[\w.-]{1,100}")
_VERSION = re.compile(r"[\w.:-]{1,40}")

# The sentence a person agrees to when the project writes none of its own ({organisation}: its name).
DEFAULT_CONSENT = {
    "ar": "أوافق على أن تصلني رسائل {organisation} بالبريد الإلكتروني، وأعلم أن بإمكاني إلغاء الاشتراك في أي وقت من الرابط الموجود في كل رسالة.",
    "en": "I agree to receive the letters of {organisation} by email, and I know I can leave at any time with the link in every letter.",
}


@table("signup", "the sign-up form of `newsletter serve` (/subscribe)")
class SignupSettings:
    list_name: str = setting(Text(_LIST.fullmatch, "a list name of letters, digits, '.', '-' or '_'"), key="signup.list",
                             example='"main"', help="the list confirmed people join")  # fmt: skip
    provider: str | None = setting(Choice(PROVIDERS), default_text="[send] provider", example='"smtp"',
                                   default=None, help="how confirmation messages go")  # fmt: skip
    consent_version: str = setting(
        Text(_VERSION.fullmatch, "a short label such as 2023-01"), default="1", example='"1"',
        help="recorded with each confirmation: change it with the sentence",
    )  # fmt: skip
    consent: tuple[tuple[str, str], ...] = setting(
        PerLanguage(Text(strip=True), any_code=True), default=(), default_text="a plain sentence naming the organisation",
        example={"ar": '"أوافق على أن تصلني رسائل المنظمة بالبريد الإلكتروني، وأعلم أن بإمكاني إلغاء الاشتراك في أي وقت."',
                 "en": '"I agree to receive the organisation\'s letters by email, and I know I can leave at any time."'},
        help="the sentence a person agrees to",
    )  # fmt: skip
    per_mailbox: int = setting(Whole(1, 1000, kind_name=None), default=3, example="3",
                               help="sign-ups for one mailbox in 10 minutes (name+tag@ is name@)")  # fmt: skip
    per_domain: int = setting(Whole(1, 100_000, kind_name=None), default=30, example="30",
                              help="sign-ups for one domain in 10 minutes")  # fmt: skip
    per_client: int = setting(Whole(1, 100_000, kind_name=None), default=10, example="10",
                              help="sign-ups one client network (IPv4 /24, IPv6 /64) may post in 10 minutes")  # fmt: skip
    per_10_minutes: int = setting(Whole(1, 100_000, kind_name=None), default=60, example="60",
                                  help="sign-ups all networks together may post in 10 minutes (a network's first is not counted)")  # fmt: skip

    def consent_for(self, code: str) -> str:
        return dict(self.consent)[code]
