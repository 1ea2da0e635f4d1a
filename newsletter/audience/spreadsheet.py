"""Subscriber spreadsheets (CSV) in and out: pure, no database. Bad rows are reported with
their line, good rows kept; no exported cell can be read as a formula."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from newsletter.addresses import email_key, normalise_email
from newsletter.domain import NewSubscriber, Subscriber
from newsletter.errors import BadInput, Problem
from newsletter.terminal import CONTROLS

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
    if language is not None and language not in languages:
        problems.append(Problem("--language", None, f"{language!r} is not one of {', '.join(languages)}"))
    if problems:
        raise BadInput(problems)
    return NewSubscriber(address, " ".join(name.split()), language)


def read_csv(path: Path, languages: tuple[str, ...]) -> tuple[list[NewSubscriber], list[RowProblem]]:
    """Every good row and every bad one (with its line). File-level faults raise BadInput."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
    except FileNotFoundError:
        raise BadInput([Problem(str(path), None, "file not found")]) from None
    except UnicodeDecodeError as exc:
        line = len(_lines(data[: exc.start].decode("utf-8-sig") + "x"))  # the line the bad byte is on
        raise BadInput([Problem(str(path), line, f"not UTF-8 text ({exc.reason}); save it as UTF-8")]) from None
    return parse_csv(text, languages, str(path))


def parse_csv(
    text: str, languages: tuple[str, ...], where: str = "CSV"
) -> tuple[list[NewSubscriber], list[RowProblem]]:
    """Every good row and every bad one, with its line. A row is one line: a quote left open at
    the end of its line makes that row bad and the next lines are read as rows of their own."""
    lines = _lines(text)
    if not lines:
        raise BadInput([Problem(where, None, "empty file: expected a header line with email, name, language")])
    try:
        header, unclosed = _fields(lines[0])
    except csv.Error as exc:
        raise BadInput([Problem(where, 1, f"not CSV: {exc}")]) from None
    if unclosed:
        raise BadInput([Problem(where, 1, "not CSV: a quote in the header is not closed on its line")])
    columns = [h.strip().lower() for h in header]
    if "email" not in columns:
        raise BadInput(
            [Problem(where, 1, f"no 'email' column in the header {header!r}; expected {', '.join(COLUMNS)}")]
        )
    # `status` is what `export` adds: an exported file imports as it is (statuses are never imported)
    unknown = [c for c in columns if c and c not in (*COLUMNS, "status")]
    if unknown:
        raise BadInput(
            [Problem(where, 1, f"unknown column(s) {', '.join(map(repr, unknown))}; expected {', '.join(COLUMNS)}")]
        )
    index = {name: columns.index(name) for name in COLUMNS if name in columns}

    good: list[NewSubscriber] = []
    bad: list[RowProblem] = []
    seen: dict[str, int] = {}
    for line, text_line in enumerate(lines[1:], start=2):
        try:
            row, unclosed = _fields(text_line)
        except csv.Error as exc:
            bad.append(RowProblem(line, f"not CSV: {exc}"))
            continue
        label = [columns[i] if i < len(columns) and columns[i] else f"column {i + 1}" for i in range(len(row))]
        if unclosed:
            bad.append(RowProblem(line, f"the quote opened in the {label[-1]} column is not closed on this line"))
            continue
        controls = [(i, found) for i, cell in enumerate(row) if (found := _control(cell))]
        if controls:
            i, found = controls[0]
            bad.append(RowProblem(line, f"control character {found} in the {label[i]} column"))
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(columns):
            bad.append(RowProblem(line, f"{len(row)} fields, the header has {len(columns)}"))
            continue

        def cell(name: str, row: list[str] = row) -> str:
            i = index.get(name)
            return restored(row[i].strip()) if i is not None and i < len(row) else ""

        raw = cell("email")
        if not raw:
            bad.append(RowProblem(line, "no email address"))
            continue
        try:
            address = normalise_email(raw)
        except ValueError as exc:
            bad.append(RowProblem(line, f"{raw!r}: {exc}"))
            continue
        language = cell("language").lower() or None  # none: keep theirs, or the primary one
        if language is not None and language not in languages:
            bad.append(RowProblem(line, f"language {language!r} is not one of {', '.join(languages)}"))
            continue
        name = " ".join(cell("name").split())
        if len(name) > MAX_NAME:
            bad.append(RowProblem(line, f"name longer than {MAX_NAME} characters"))
            continue
        key = email_key(address)
        if key in seen:
            bad.append(RowProblem(line, f"{address!r} already on line {seen[key]}"))
            continue
        seen[key] = line
        good.append(NewSubscriber(address, name, language, line))
    return good, bad


def _lines(text: str) -> list[str]:
    """The lines as the csv module and line numbers count them: ended by \\r\\n, \\r or \\n."""
    return io.StringIO(text, newline="").readlines()


def _fields(line: str) -> tuple[list[str], bool]:
    """The fields of one line, and whether a quoted field is still open at its end."""
    wanted_more: list[bool] = []

    def source() -> Iterator[str]:
        yield line
        wanted_more.append(True)  # the reader asks for another line only from inside a quote

    return next(csv.reader(source()), []), bool(wanted_more)


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


def write_csv(subscribers: Iterable[Subscriber]) -> str:
    """The subscribers as CSV text (email, name, language, status), header first; every cell a
    spreadsheet could take for a formula starts with '."""
    rows = [EXPORT_COLUMNS, *([sub.email, sub.name, sub.language, sub.status] for sub in subscribers)]
    return "".join(_csv_line([neutralised(cell) for cell in row]) for row in rows)


def _csv_line(cells: list[str]) -> str:
    # Written with "\r\n" and ended with "\n": the csv module quotes only the characters of its
    # line terminator, and a bare \r left unquoted would start a new row (whose first cell could
    # be a formula) in every spreadsheet.
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()[:-2] + "\n"
