"""Subscriber spreadsheets (CSV) in and out: pure, no database. A file is read a block at a time
and its rows handed on as they are read, so that any size of file takes the same memory. Bad rows
are reported with their line, good rows kept; no exported cell can be read as a formula."""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import io
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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
BATCH = 1000  # rows checked for repeated addresses at a time


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


class Seen(Protocol):
    """Where the addresses a sheet has given so far are noted, to refuse a repeated one."""

    def first_lines(self, lines: dict[str, int]) -> dict[str, int]:
        """Of these addresses (by their key, each with its line), those met on an earlier line,
        with that line; the others are noted as met."""
        ...


class SeenHere:
    """The addresses met, noted in memory: for a sheet read whole (a file is imported with the
    store's `Seen`, which keeps them on disk)."""

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}

    def first_lines(self, lines: dict[str, int]) -> dict[str, int]:
        earlier = {key: self.lines[key] for key in lines if key in self.lines}
        self.lines.update((key, line) for key, line in lines.items() if key not in earlier)
        return earlier


class SheetFile:
    """A spreadsheet file to import: its layout read at once (BadInput when the file cannot be
    used at all), then its rows, a block of the file at a time, as often as asked."""

    def __init__(
        self,
        path: Path,
        languages: tuple[str, ...],
        *,
        columns: dict[str, str] | None = None,
        ignore_extra: bool = False,
    ):
        self.path, self.languages = path, languages
        try:
            encoding = sheets.sniff(path)
            with contextlib.closing(sheets.text_lines(path, encoding)) as lines:
                first = next(lines, None)
        except FileNotFoundError:
            raise BadInput([Problem(str(path), None, "file not found")]) from None
        except sheets.NotText as exc:
            raise BadInput([Problem(str(path), None, str(exc))]) from None
        except OSError as exc:
            raise BadInput([Problem(str(path), None, f"cannot be read: {exc.strerror}")]) from None
        self.layout = read_layout(first, encoding, str(path), columns, ignore_extra)

    def rows(self, seen: Seen) -> Iterator[NewSubscriber | RowProblem]:
        """Every row after the header, in order: a person, or a problem naming its line."""
        with contextlib.closing(sheets.text_lines(self.path, self.layout.encoding)) as lines:
            next(lines, None)  # the header
            yield from read_rows(lines, self.layout, self.languages, seen)

    def people(self, seen: Seen, report: Callable[[RowProblem], None]) -> Iterator[NewSubscriber]:
        """The good rows; each bad one is handed to `report`, in the order of the file."""
        for row in self.rows(seen):
            if isinstance(row, RowProblem):
                report(row)
            else:
                yield row


@dataclass
class Sheet:
    """A spreadsheet read whole: its good and bad rows, and how it was read."""

    good: list[NewSubscriber]
    bad: list[RowProblem]
    layout: sheets.Layout

    def describe(self) -> str:
        return self.layout.describe()


def read_csv(
    path: Path, languages: tuple[str, ...], *, columns: dict[str, str] | None = None, ignore_extra: bool = False
) -> Sheet:
    """Every good row and every bad one (with its line), in memory. File-level faults raise BadInput."""
    opened = SheetFile(path, languages, columns=columns, ignore_extra=ignore_extra)
    return _whole(opened.rows(SeenHere()), opened.layout)


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
    lines = iter(_lines(text))
    layout = read_layout(next(lines, None), sheets.UTF8, where, columns, ignore_extra)
    return _whole(read_rows(lines, layout, languages, SeenHere()), layout)


def _whole(rows: Iterable[NewSubscriber | RowProblem], layout: sheets.Layout) -> Sheet:
    sheet = Sheet([], [], layout)
    for row in rows:
        if isinstance(row, RowProblem):
            sheet.bad.append(row)
        else:
            sheet.good.append(row)
    return sheet


def read_layout(
    first: str | None,
    encoding: sheets.Encoding,
    where: str,
    columns: dict[str, str] | None = None,
    ignore_extra: bool = False,
) -> sheets.Layout:
    """The layout from the header line (None: the file is empty); BadInput when it cannot be used."""
    if first is None:
        raise BadInput([Problem(where, None, "empty file: expected a header line with email, name, language")])
    if sheets.unreadable(first):
        raise BadInput([Problem(where, 1, f"the header is not {encoding.plain_name} text: save the file as CSV UTF-8")])
    delimiter = sheets.separator(first)
    try:
        header, unclosed = _fields(first, delimiter)
    except csv.Error as exc:
        raise BadInput([Problem(where, 1, f"not CSV: {exc}")]) from None
    if unclosed:
        raise BadInput([Problem(where, 1, "not CSV: a quote in the header is not closed on its line")])
    found = sheets.match(header, columns, ignore_extra=ignore_extra)
    if found.problems:
        raise BadInput([Problem(where, 1, problem) for problem in found.problems])
    return sheets.Layout(encoding, delimiter, header, found)


def read_rows(
    lines: Iterable[str], layout: sheets.Layout, languages: tuple[str, ...], seen: Seen
) -> Iterator[NewSubscriber | RowProblem]:
    """The rows after the header (line 2 on), in order, blank ones left out; an address given on
    an earlier line is a bad row. Checked against `seen` a thousand rows at a time."""
    reader = _RowReader(layout, languages)
    batch: list[NewSubscriber | RowProblem] = []
    for line, text_line in enumerate(lines, start=2):
        row = reader.read(line, text_line)
        if row is not None:
            batch.append(RowProblem(line, row) if isinstance(row, str) else row)
        if len(batch) == BATCH:
            yield from _unrepeated(batch, seen)
            batch = []
    yield from _unrepeated(batch, seen)


def _unrepeated(batch: list[NewSubscriber | RowProblem], seen: Seen) -> Iterator[NewSubscriber | RowProblem]:
    """The batch in order, a person whose address came on an earlier line (of the batch, or
    before it) made a bad row naming the first."""
    keyed = [(email_key(row.email), row.line or 0) for row in batch if isinstance(row, NewSubscriber)]
    firsts: dict[str, int] = {}
    for key, line in keyed:
        firsts.setdefault(key, line)
    earlier = seen.first_lines(firsts) if firsts else {}
    first_line = {line: earlier.get(key, firsts[key]) for key, line in keyed}
    for row in batch:
        if isinstance(row, NewSubscriber) and (first := first_line[row.line or 0]) != row.line:
            yield RowProblem(row.line or 0, f"{row.email!r} already on line {first}")
        else:
            yield row


class _RowReader:
    """One row at a time: a person, a problem (its message), or None for a blank row."""

    def __init__(self, layout: sheets.Layout, languages: tuple[str, ...]):
        self.layout, self.languages = layout, languages
        found = layout.columns
        self.names = {i: field_name for field_name, i in found.fields.items()} | found.extra

    def read(self, line: int, text_line: str) -> NewSubscriber | str | None:
        if sheets.unreadable(text_line):
            return (
                f"not {self.layout.encoding.plain_name} text, unlike the rest of the file (this row was saved "
                "in another encoding): save the whole sheet again as CSV UTF-8"
            )
        try:
            row, unclosed = _fields(text_line, self.layout.separator)
        except csv.Error as exc:
            return f"not CSV: {exc}"
        header = self.layout.header
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
        if not text_line.isascii() and (misread := sheets.misread_as(text_line)):
            return (
                f"garbled text: UTF-8 once opened as {misread} and saved so (ظ†ظˆط± for نور); "
                "correct the row, or take it from the original file"
            )
        return self._person(line, row)

    def _person(self, line: int, row: list[str]) -> NewSubscriber | str:
        found = self.layout.columns

        def cell(name: str) -> str:
            i = found.fields.get(name)
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
        attributes = {h: restored(row[i].strip()) for i, h in found.extra.items() if i < len(row) and row[i].strip()}
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
    return "".join(_csv_line(cells) for cells in _table(people))


def write_excel(people: Iterable[ExportRow | Subscriber]) -> bytes:
    """The same table as Excel's own "Unicode Text": UTF-16 little-endian with a byte-order mark,
    tab-separated, rows ended by \\r\\n. It is the one text file every Excel opens right, letters
    and columns, whatever its language: with UTF-8 (even with a byte-order mark) Excel splits rows
    at the locale's list separator (`,`, `;`, or `؛` in Arabic), and a `sep=` line makes it ignore
    the byte-order mark. `import` reads it back as it is."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter="\t", lineterminator="\r\n").writerows(_table(people))
    return codecs.BOM_UTF16_LE + buffer.getvalue().encode("utf-16-le")


def _table(people: Iterable[ExportRow | Subscriber]) -> list[list[str]]:
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
    return [[neutralised(cell) for cell in line] for line in lines]


def _csv_line(cells: list[str]) -> str:
    # Written with "\r\n" and ended with "\n": the csv module quotes only the characters of its
    # line terminator, and a bare \r left unquoted would start a new row (whose first cell could
    # be a formula) in every spreadsheet.
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()[:-2] + "\n"
