"""What a spreadsheet file really is: its encoding (UTF-8, UTF-16 from Excel's "Unicode text",
Windows-1256 from Excel in an Arabic locale), its separator (comma, semicolon, tab), which of
its columns is the email, the name and the language (matched loosely, in Arabic and English,
or named by the user), and what a language value means (`Arabic`, `عربي`, `English`…)."""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass, field

from charset_normalizer import from_bytes

from newsletter.languages import loose

FIELDS = ("email", "name", "language")
# columns `export` writes that only the store's own records change: never read back as attributes
RECORD_ONLY = frozenset({"status", "consentat", "consentversion", "consentsource"})
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}


_HEADERS = {
    "email": [
        "email",
        "e-mail",
        "email address",
        "e-mail address",
        "courriel",
        "البريد الإلكتروني",
        "البريد الالكتروني",
        "البريد",
        "الإيميل",
        "الايميل",
        "بريد إلكتروني",
        "عنوان البريد الإلكتروني",
    ],
    "name": ["name", "full name", "your name", "nom", "الاسم", "الاسم الكامل", "اسم", "الاسم الثلاثي"],
    "language": [
        "language",
        "lang",
        "preferred language",
        "language preference",
        "langue",
        "اللغة",
        "اللغة المفضلة",
        "لغة",
    ],
}
HEADERS = {field: {loose(name) for name in names} for field, names in _HEADERS.items()}

_VALUES = {
    "ar": ["ar", "ara", "arabic", "arabe", "عربي", "عربية", "العربية", "اللغة العربية", "بالعربية"],
    "en": [
        "en",
        "eng",
        "english",
        "anglais",
        "انجليزي",
        "إنجليزي",
        "انجليزية",
        "الإنجليزية",
        "الانجليزية",
        "انكليزي",
        "الانكليزية",
        "اللغة الإنجليزية",
        "بالإنجليزية",
    ],
}
_VALUES["both"] = [
    "both",
    "bilingual",
    "ar+en",
    "ar/en",
    "arabic and english",
    "كلتاهما",
    "كلاهما",
    "العربية والإنجليزية",
]
VALUES = {loose(value): code for code, values in _VALUES.items() for value in values}


class NotText(UnicodeError):
    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def decode(data: bytes) -> tuple[str, str]:
    """The text of a spreadsheet file and the name of its encoding. A byte-order mark decides;
    otherwise UTF-8 when it decodes, else the best guess among the encodings Excel writes."""
    for bom, name, codec in (
        (codecs.BOM_UTF8, "UTF-8 (with BOM)", "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "UTF-16", "utf-16"),
        (codecs.BOM_UTF16_BE, "UTF-16", "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(codec), name
            except UnicodeDecodeError as exc:  # the file says what it is, and is not: name the line
                before = data[: exc.start].decode(codec, "replace")
                line = len(re.split(r"\r\n|\r|\n", before))
                raise NotText(
                    f"not {name.split(' ')[0]} text ({exc.reason}); save it again as CSV UTF-8", line
                ) from None
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(data, cp_isolation=["cp1256", "cp1252", "iso8859_6", "utf_16"]).best()
    if best is None:
        raise NotText("neither UTF-8, UTF-16 nor Windows-1256: save the file as CSV UTF-8")
    return str(best), {"cp1256": "Windows-1256", "cp1252": "Windows-1252", "iso8859_6": "ISO-8859-6"}.get(
        best.encoding, best.encoding
    )


def separator(header_line: str) -> str:
    """The separator of the header line: the one of comma, semicolon and tab it holds most of,
    outside quotes (Excel in many locales writes semicolons)."""
    counts = {sep: len(next(csv.reader([header_line], delimiter=sep), [])) - 1 for sep in SEPARATORS}
    return max(counts, key=lambda sep: (counts[sep], sep == ","))


@dataclass
class Columns:
    """Which column holds what: field → index, and the other columns by index (attributes)."""

    fields: dict[str, int] = field(default_factory=dict)
    extra: dict[int, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def match(header: list[str], named: dict[str, str] | None = None, *, ignore_extra: bool = False) -> Columns:
    """Find the email, name and language columns: those the user named (`--column
    email="Email Address"`), else the first header matching loosely in Arabic or English."""
    found = Columns()
    keys = [loose(h) for h in header]
    for field_name, wanted in (named or {}).items():
        if field_name not in FIELDS:
            found.problems.append(f"--column {field_name}=…: unknown field (known: {', '.join(FIELDS)})")
        elif loose(wanted) in keys:
            found.fields[field_name] = keys.index(loose(wanted))
        else:
            found.problems.append(f"--column {field_name}={wanted!r}: no such column in {header!r}")
    for field_name in FIELDS:
        if field_name not in found.fields:
            index = next(
                (i for i, key in enumerate(keys) if key in HEADERS[field_name] and i not in found.fields.values()), None
            )
            if index is not None:
                found.fields[field_name] = index
    if "email" not in found.fields and not found.problems:
        found.problems.append(
            f'no email column in the header {header!r}: name it email (or say which with --column email="…")'
        )
    used = set(found.fields.values())
    # what `export` writes besides: an exported file imports as it is (statuses and consent never are)
    found.extra = {
        i: h.strip()
        for i, h in enumerate(header)
        if i not in used and h.strip() and not ignore_extra and keys[i] not in RECORD_ONLY
    }
    return found


def language(raw: str, languages: tuple[str, ...]) -> str | None:
    """A language cell as a code: `ar`, `Arabic`, `العربية` and the like; None when empty.
    Raises ValueError naming the value and the choices when it means no configured language."""
    if not raw.strip():
        return None
    code = VALUES.get(loose(raw)) or raw.strip().lower()
    if code == "both" and len(languages) > 1:
        return code  # every language: the bilingual letter
    if code not in languages:
        raise ValueError(f"language {raw.strip()!r} is not one of {', '.join(languages)} (or their names)")
    return code
