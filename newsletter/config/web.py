"""newsletter.toml settings for the letter on the web and in the inbox: `[archive]`, `[dates]`
and the bilingual sender name (`organisation.bilingual`). Read by `newsletter.config`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from newsletter.config.toml import TomlReader
from newsletter.languages import DATE_STYLES, Language

_URL = re.compile(r"[\x21-\x7e]+", re.ASCII)
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?", re.ASCII)


@dataclass(frozen=True)
class ArchiveSettings:
    """Where the public archive answers (the "view in browser" links point there) and the
    organisation's sign-up page, which the archive pages offer instead of an unsubscribe link."""

    url: str | None = None  # default: base_url + "/archive", which `newsletter serve` answers
    signup_url: str | None = None


@dataclass(frozen=True)
class DateSettings:
    """How each language writes a month: `[dates] ar = "both" | "egyptian" | "levantine"`."""

    styles: tuple[tuple[str, str], ...] = ()

    def style(self, code: str) -> str | None:
        return dict(self.styles).get(code) or (DATE_STYLES.get(code) or (None,))[0]


def _url(r: TomlReader, key: str, *, https_only: bool) -> str | None:
    value = r.get(key, str, None)
    if value is None:
        return None
    parts = urlsplit(value)
    schemes = ("https",) if https_only else ("https", "http")
    if not _URL.fullmatch(value) or parts.scheme not in schemes or not _HOST.fullmatch(parts.netloc):
        kind = "an https URL" if https_only else "an absolute https or http URL"
        r.problem(key, f"expected {kind} of printable ASCII with a host name, got {value!r}")
        return None
    if parts.query or parts.fragment:
        r.problem(key, f"expected a URL without query or fragment, got {value!r}")
        return None
    return value


def read_archive(r: TomlReader, base_url: str | None) -> ArchiveSettings:
    url = _url(r, "archive.url", https_only=True)
    default = f"{base_url}/archive" if base_url else None
    return ArchiveSettings(
        url=(url or default or "").rstrip("/") or None, signup_url=_url(r, "archive.signup_url", https_only=False)
    )


def read_dates(r: TomlReader, languages: tuple[Language, ...] | list[Language]) -> DateSettings:
    codes = [language.code for language in languages]
    styles = []
    for code, value in (r.data.get("dates") or {}).items() if isinstance(r.data.get("dates"), dict) else ():
        key = f"dates.{code}"
        if code not in codes:
            r.problem(key, f"language {code!r} is not in languages")
            continue
        chosen = r.get(key, str, None)
        known = DATE_STYLES.get(code, ())
        if chosen is not None and chosen not in known:
            r.problem(key, f"expected one of {', '.join(known)}, got {value!r}")
        elif chosen is not None:
            styles.append((code, chosen))
    return DateSettings(tuple(styles))


def read_bilingual_name(r: TomlReader) -> str | None:
    """`organisation.bilingual`: the From name of the bilingual letter (default: the names joined)."""
    name = r.get("organisation.bilingual", str, None)
    return name.strip() if name else None
