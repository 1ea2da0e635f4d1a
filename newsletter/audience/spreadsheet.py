"""Subscriber spreadsheets (CSV) in and out: pure, no database. Bad rows are reported with
their line, good rows kept; no exported cell can be read as a formula."""

from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.audience import sheets
from newsletter.domain import ExportRow, NewSubscriber, Subscriber
from newsletter.errors import CONTROLS, BadInput, Problem
from newsletter.keys import email_key, normalise_email
from newsletter.languages import BOTH

COLUMNS = ("email", "name", "language")
MAX_NAME = 200
# What starts a formula, after compatibility normalisation (so ＝ ＋ － ＠, the small and the
# super- and subscript forms count too), and the minus sign some spreadsheets take for `-`.
FORMULA_STARTS = "=+-@\u2212"


@dataclass(frozen=True)
class RowProblem:
    line: int
    message: str


def one_subscriber(email: str, name: str, language: str | None, languages: tuple[str, ...]) -> NewSubscriber:
    """A person given on the command line, checked like a spreadsheet row; BadInput if not.
    No language given: a known person keeps theirs, a new one gets the primary language."""
    language = language.lower() if language else None
    problems = []
    try:
        address = normalise_email(email)
    except ValueError as exc:
        problems.append(Problem("EMAIL", None, f"{email!r}: {exc}"))
    if control := _control(name):
        problems.append(Problem("--name", None, f"control character {control} not allowed"))
    if language is not None and language not in languages and not (language == BOTH and len(languages) > 1):
        problems.append(Problem("--language", None, f"{language!r} is not one of {', '.join(languages)}"))
    if problems:
        raise BadInput(problems)
    return NewSubscriber(address, " ".join(name.split()), language)


@dataclass
class Sheet:
    """A spreadsheet read: its good and bad rows, and how it was read (for the summary)."""

    good: list[NewSubscriber]
    bad: list[RowProblem]
    encoding: str = "UTF-8"
    separator: str = ","
    used: dict[str, str] = field(default_factory=dict)  # field → the header it was read from
    extra: list[str] = field(default_factory=list)  # other columns, kept as attributes

    def describe(self) -> str:
        fields = ", ".join(f"{name} from {header!r}" for name, header in self.used.items())
        kept = f"; kept as attributes: {', '.join(map(repr, self.extra))}" if self.extra else ""
        return f"{self.encoding}, {sheets.SEPARATORS[self.separator]}-separated; {fields}{kept}"


def read_csv(
    path: Path, languages: tuple[str, ...], *, columns: dict[str, str] | None = None, ignore_extra: bool = False
) -> Sheet:
    """Every good row and every bad one (with its line). File-level faults raise BadInput."""
    try:
        text, encoding = sheets.decode(path.read_bytes())
    except FileNotFoundError:
        raise BadInput([Problem(str(path), None, "file not found")]) from None
    except sheets.NotText as exc:
        raise BadInput([Problem(str(path), exc.line, str(exc))]) from None
    sheet = parse_sheet(text, languages, str(path), columns=columns, ignore_extra=ignore_extra)
    sheet.encoding = encoding
    return sheet


def parse_csv(
    text: str, languages: tuple[str, ...], where: str = "CSV"
) -> tuple[list[NewSubscriber], list[RowProblem]]:
    sheet = parse_sheet(text, languages, where)
    return sheet.good, sheet.bad


def parse_sheet(
    text: str,
    languages: tuple[str, ...],
    where: str = "CSV",
    *,
    columns: dict[str, str] | None = None,
    ignore_extra: bool = False,
) -> Sheet:
    """Every good row and every bad one, with its line. A row is one line: a quote left open at
    the end of its line makes that row bad and the next lines are read as rows of their own."""
    lines = _lines(text)
    if not lines:
        raise BadInput([Problem(where, None, "empty file: expected a header line with email, name, language")])
    delimiter = sheets.separator(lines[0])
    header, found = _read_header(lines[0], delimiter, where, columns, ignore_extra)
    reader = _RowReader(header, found, languages)
    good: list[NewSubscriber] = []
    bad: list[RowProblem] = []
    for line, text_line in enumerate(lines[1:], start=2):
        row = reader.read(line, text_line, delimiter)
        if isinstance(row, NewSubscriber):
            good.append(row)
        elif row is not None:
            bad.append(RowProblem(line, row))
    used = {field_name: header[i].strip() for field_name, i in found.fields.items()}
    return Sheet(good, bad, separator=delimiter, used=used, extra=list(found.extra.values()))


def _read_header(
    line: str, delimiter: str, where: str, columns: dict[str, str] | None, ignore_extra: bool
) -> tuple[list[str], sheets.Columns]:
    try:
        header, unclosed = _fields(line, delimiter)
    except csv.Error as exc:
        raise BadInput([Problem(where, 1, f"not CSV: {exc}")]) from None
    if unclosed:
        raise BadInput([Problem(where, 1, "not CSV: a quote in the header is not closed on its line")])
    found = sheets.match(header, columns, ignore_extra=ignore_extra)
    if found.problems:
        raise BadInput([Problem(where, 1, problem) for problem in found.problems])
    return header, found


class _RowReader:
    """One row at a time: a person, a problem (its message), or None for a blank row."""

    def __init__(self, header: list[str], found: sheets.Columns, languages: tuple[str, ...]):
        self.header, self.found, self.languages = header, found, languages
        self.names = {i: field_name for field_name, i in found.fields.items()} | found.extra
        self.seen: dict[str, int] = {}

    def read(self, line: int, text_line: str, delimiter: str) -> NewSubscriber | str | None:
        try:
            row, unclosed = _fields(text_line, delimiter)
        except csv.Error as exc:
            return f"not CSV: {exc}"
        header = self.header
        label = [
            self.names.get(i) or (header[i].strip() if i < len(header) else "") or f"column {i + 1}"
            for i in range(len(row))
        ]
        if unclosed:
            return f"the quote opened in the {label[-1]} column is not closed on this line"
        controls = [(i, control) for i, cell in enumerate(row) if (control := _control(cell))]
        if controls:
            i, control = controls[0]
            return f"control character {control} in the {label[i]} column"
        if not any(cell.strip() for cell in row):
            return None
        if len(row) > len(header):
            return f"{len(row)} fields, the header has {len(header)}"
        return self._person(line, row)

    def _person(self, line: int, row: list[str]) -> NewSubscriber | str:
        def cell(name: str) -> str:
            i = self.found.fields.get(name)
            return restored(row[i].strip()) if i is not None and i < len(row) else ""

        raw = cell("email")
        if not raw:
            return "no email address"
        try:
            address = normalise_email(raw)
        except ValueError as exc:
            return f"{raw!r}: {exc}"
        try:
            language = sheets.language(cell("language"), self.languages)  # none: keep theirs, or the primary one
        except ValueError as exc:
            return str(exc)
        name = " ".join(cell("name").split())
        if len(name) > MAX_NAME:
            return f"name longer than {MAX_NAME} characters"
        key = email_key(address)
        if key in self.seen:
            return f"{address!r} already on line {self.seen[key]}"
        self.seen[key] = line
        extra = self.found.extra.items()
        attributes = {h: restored(row[i].strip()) for i, h in extra if i < len(row) and row[i].strip()}
        return NewSubscriber(address, name, language, line, attributes)


def _lines(text: str) -> list[str]:
    """The lines as the csv module and line numbers count them: ended by \\r\\n, \\r or \\n."""
    return io.StringIO(text, newline="").readlines()


def _fields(line: str, delimiter: str = ",") -> tuple[list[str], bool]:
    """The fields of one line, and whether a quoted field is still open at its end."""
    wanted_more: list[bool] = []

    def source() -> Iterator[str]:
        yield line
        wanted_more.append(True)  # the reader asks for another line only from inside a quote

    return next(csv.reader(source(), delimiter=delimiter), []), bool(wanted_more)


def _control(cell: str) -> str | None:
    """The first control character in a cell, described; a tab is whitespace like a space."""
    found = next((m.group() for m in CONTROLS.finditer(cell) if m.group() != "\t"), None)
    if found is None:
        return None
    name = unicodedata.name(found, "")
    return f"U+{ord(found):04X}" + (f" {name}" if name else "")


def _formula_like(cell: str) -> bool:
    """Whether a spreadsheet may read the cell as a formula: OWASP's list (= + - @, tab, carriage
    return first), their compatibility forms, and any of them after leading spaces or invisible
    characters, which some spreadsheets skip."""
    if cell[:1] in ("\t", "\r"):
        return True
    first = next((c for c in cell if not c.isspace() and unicodedata.category(c) != "Cf"), "")
    return first != "" and unicodedata.normalize("NFKC", first)[0] in FORMULA_STARTS


def neutralised(cell: str) -> str:
    """The cell as no spreadsheet will evaluate it: a leading ' when it could be read as a formula.
    A cell that is already ' before such a start gets one more, so `restored` undoes it exactly."""
    return "'" + cell if _formula_like(cell.lstrip("'")) else cell


def restored(cell: str) -> str:
    """An exported cell as it was before `neutralised`, so export then import changes nothing."""
    return cell[1:] if cell.startswith("'") and _formula_like(cell.lstrip("'")) else cell


EXPORT_COLUMNS = ("email", "name", "language", "status")
CONSENT_COLUMNS = ("consent_at", "consent_version", "consent_source")


def write_csv(people: Iterable[ExportRow | Subscriber]) -> str:
    """The people as CSV text, header first: email, name, language, status, their consent (when, which
    version of the sentence, how they came) and a column per attribute. Every cell a spreadsheet
    could take for a formula starts with '. Import reads such a file back as it was (the status and
    consent columns aside: those only the store's own records change)."""
    rows = [person if isinstance(person, ExportRow) else ExportRow(person) for person in people]
    fixed = {*EXPORT_COLUMNS, *CONSENT_COLUMNS}
    extra = sorted({key for row in rows for key in row.attributes if key not in fixed})
    lines = [[*EXPORT_COLUMNS, *CONSENT_COLUMNS, *extra]]
    for row in rows:
        sub = row.subscriber
        when = row.consent_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if row.consent_at else ""
        consent = [when, row.consent_version or "", row.consent_source or ""]
        lines.append(
            [sub.email, sub.name, sub.language, sub.status, *consent, *(row.attributes.get(key, "") for key in extra)]
        )
    return "".join(_csv_line([neutralised(cell) for cell in line]) for line in lines)


def _csv_line(cells: list[str]) -> str:
    # Written with "\r\n" and ended with "\n": the csv module quotes only the characters of its
    # line terminator, and a bare \r left unquoted would start a new row (whose first cell could
    # be a formula) in every spreadsheet.
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()[:-2] + "\n"
