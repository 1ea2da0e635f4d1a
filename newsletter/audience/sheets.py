"""What a spreadsheet file really is: its encoding (UTF-8, UTF-16 from Excel's "Unicode text",
Windows-1256 from Excel in an Arabic locale), its lines read a block at a time, rows in another
encoding or garbled by one told apart, its separator (comma, semicolon, tab), which of its
columns is the email, the name and the language (matched loosely, in Arabic and English, or
named by the user), and what a language value means (`Arabic`, `عربي`, `English`…)."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

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


class NotText(ValueError):
    """The file is not a spreadsheet saved as text."""


@dataclass(frozen=True)
class Encoding:
    """How a file's bytes are read: the name shown to the user and the Python codec."""

    name: str  # "UTF-8", "UTF-8 (with BOM)", "UTF-16", "Windows-1256"…
    codec: str

    @property
    def plain_name(self) -> str:
        return self.name.split(" (")[0]


CHUNK = 1 << 18  # bytes read at a time: memory stays flat whatever the file's size
_HEAD = 4096  # what the byte-order mark, a workbook's signature or UTF-16's NULs are looked for in
_BOMS = (
    (codecs.BOM_UTF8, Encoding("UTF-8 (with BOM)", "utf-8-sig")),
    (codecs.BOM_UTF16_LE, Encoding("UTF-16", "utf-16")),
    (codecs.BOM_UTF16_BE, Encoding("UTF-16", "utf-16")),
)
_WORKBOOKS = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")  # .xlsx (a zip), .xls
_LEGACY = {"cp1256": "Windows-1256", "cp1252": "Windows-1252", "iso8859_6": "ISO-8859-6"}
UTF8 = Encoding("UTF-8", "utf-8")


def sniff(path: Path) -> Encoding:
    """The encoding a spreadsheet file is read in. A byte-order mark decides; then UTF-16 without
    one, by its NULs (ASCII text in UTF-16 is every other byte zero); then one pass over the file,
    a line at a time: UTF-8 unless most of its non-ASCII lines are not UTF-8, then the best guess
    among the encodings Excel writes (Windows-1256 in an Arabic locale). A file whose lines are in
    different encodings is read in its main one: the other lines are refused as rows, one by one."""
    with path.open("rb") as fh:
        head = fh.read(_HEAD)
        for bom, encoding in _BOMS:
            if head.startswith(bom):
                return encoding
        if head.startswith(_WORKBOOKS):
            raise NotText("an Excel workbook, not CSV: save it as CSV UTF-8 (File › Save As › CSV UTF-8)")
        if utf16 := _utf16_without_bom(head):
            return utf16
        fh.seek(0)
        lines = _Lines()
        while block := fh.read(CHUNK):
            lines.add(block)
    return lines.verdict()


def _utf16_without_bom(head: bytes) -> Encoding | None:
    """UTF-16 with no byte-order mark: in ASCII text (the commas, the addresses) every other byte
    is zero, the second of each pair in little-endian, the first in big-endian."""
    pairs = len(head) // 2
    first, second = head[0 : 2 * pairs : 2].count(0), head[1 : 2 * pairs : 2].count(0)
    enough = max(1, min(pairs / 8, 16))  # text in UTF-8 or Windows-1256 has no NUL at all
    if second >= enough and first * 8 <= second:
        return Encoding("UTF-16 (little-endian, no BOM)", "utf-16-le")
    if first >= enough and second * 8 <= first:
        return Encoding("UTF-16 (big-endian, no BOM)", "utf-16-be")
    return None


class _Lines:
    """The non-ASCII lines of a file counted as UTF-8 or not, and a sample of the others."""

    def __init__(self) -> None:
        self.utf8 = self.other = 0
        self.sample = bytearray()
        self.rest = b""  # the end of the last block, a line not finished yet

    def add(self, block: bytes) -> None:
        block = self.rest + block
        cut = max(block.rfind(b"\n"), block.rfind(b"\r")) + 1
        block, self.rest = block[:cut], block[cut:]
        if block.isascii():
            return
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            for line in block.splitlines():
                self._line(line)
        else:
            self.utf8 += sum(1 for line in block.splitlines() if not line.isascii())

    def _line(self, line: bytes) -> None:
        if line.isascii():
            return
        try:
            line.decode("utf-8")
            self.utf8 += 1
        except UnicodeDecodeError:
            self.other += 1
            if len(self.sample) < 1 << 16:
                self.sample += line + b"\n"

    def verdict(self) -> Encoding:
        self._line(self.rest)
        if self.other <= self.utf8:
            return UTF8
        best = from_bytes(bytes(self.sample), cp_isolation=list(_LEGACY)).best()
        if best is None or best.encoding not in _LEGACY:
            raise NotText("neither UTF-8, UTF-16 nor Windows-1256: save the file as CSV UTF-8")
        return Encoding(_LEGACY[best.encoding], best.encoding)


def text_lines(path: Path, encoding: Encoding) -> Generator[str, None, None]:
    """The file's lines as text, each with its ending (\\r\\n, \\r or \\n, as the csv module
    counts them), read a block at a time. Bytes the encoding cannot read are kept as lone
    surrogates, so that their line, and only it, is refused (`unreadable`)."""
    errors = "surrogatepass" if encoding.codec.startswith("utf-16") else "surrogateescape"
    decoder = codecs.getincrementaldecoder(encoding.codec)(errors)
    pending = ""
    with path.open("rb") as fh:
        while True:
            block = fh.read(CHUNK)
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError:  # UTF-16 whose last character lacks a byte
                text = "\udcff"
            lines = io.StringIO(pending + text, newline="").readlines()
            pending = ""
            if block and lines and (lines[-1].endswith("\r") or not lines[-1].endswith("\n")):
                pending = lines.pop()  # its end (or the \n of its \r\n) is in the next block
            yield from lines
            if not block:
                return


_SURROGATE = re.compile("[\ud800-\udfff]")


def unreadable(line: str) -> bool:
    """Whether a line held bytes its file's encoding cannot read (see `text_lines`)."""
    return _SURROGATE.search(line) is not None


_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]{2,}")
_MISREAD_CODECS = ("cp1256", "cp1252")
# The characters those encodings write as 0x80-0xBF, UTF-8's continuation bytes: every misread
# run holds one, and most Arabic text none (its letters are 0xC1-0xFF in Windows-1256).
_CONTINUATION = re.compile(
    "[" + re.escape("".join(bytes(range(0x80, 0xC0)).decode(codec, "ignore") for codec in _MISREAD_CODECS)) + "]"
)


def misread_as(text: str) -> str | None:
    """The encoding UTF-8 text was once wrongly read through, when the text is such a misreading
    (`ظ†ظˆط±` is `نور`, UTF-8 read as Windows-1256; `Ã©` is `é` read as Windows-1252); else None.
    Text written in those encodings is almost never also valid UTF-8 once encoded back. Run on
    every row with non-ASCII text: a row without a continuation byte's character is not tried."""
    if _CONTINUATION.search(text) is None:
        return None
    for run in _NON_ASCII_RUN.findall(text):
        for codec in _MISREAD_CODECS:
            try:
                meant = run.encode(codec).decode("utf-8")
            except UnicodeError:
                continue
            if any(not c.isascii() and c.isalpha() for c in meant):
                return _LEGACY[codec]
    return None


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


@dataclass(frozen=True)
class Layout:
    """How a sheet is written, found before any row is read: its encoding, its separator, its
    header and which column is which."""

    encoding: Encoding
    separator: str
    header: list[str]
    columns: Columns

    @property
    def used(self) -> dict[str, str]:  # field → the header it is read from
        return {field_name: self.header[i].strip() for field_name, i in self.columns.fields.items()}

    @property
    def extra(self) -> list[str]:  # the other columns, kept as attributes
        return list(self.columns.extra.values())

    def describe(self) -> str:
        fields = ", ".join(f"{name} from {header!r}" for name, header in self.used.items())
        kept = f"; kept as attributes: {', '.join(map(repr, self.extra))}" if self.extra else ""
        return f"{self.encoding.name}, {SEPARATORS[self.separator]}-separated; {fields}{kept}"


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
