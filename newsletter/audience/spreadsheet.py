"""Subscriber spreadsheets (CSV) in and out: pure, no database. Bad rows are reported with
their line, good rows kept."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from newsletter.audience.addresses import email_key, normalise_email
from newsletter.domain import NewSubscriber, Subscriber
from newsletter.errors import BadInput, Problem

COLUMNS = ("email", "name", "language")
MAX_NAME = 200


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
    if language is not None and language not in languages:
        problems.append(Problem("--language", None, f"{language!r} is not one of {', '.join(languages)}"))
    if problems:
        raise BadInput(problems)
    return NewSubscriber(address, " ".join(name.split()), language)


def read_csv(path: Path, languages: tuple[str, ...]) -> tuple[list[NewSubscriber], list[RowProblem]]:
    """Every good row and every bad one (with its line). File-level faults raise BadInput."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise BadInput([Problem(str(path), None, "file not found")]) from None
    except UnicodeDecodeError as exc:
        raise BadInput([Problem(str(path), None, f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    return parse_csv(text, languages, str(path))


def parse_csv(
    text: str, languages: tuple[str, ...], where: str = "CSV"
) -> tuple[list[NewSubscriber], list[RowProblem]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise BadInput(
            [Problem(where, None, "empty file: expected a header line with email, name, language")]
        ) from None
    except csv.Error as exc:
        raise BadInput([Problem(where, 1, f"not CSV: {exc}")]) from None
    columns = [h.strip().lower() for h in header]
    if "email" not in columns:
        raise BadInput(
            [Problem(where, 1, f"no 'email' column in the header {header!r}; expected {', '.join(COLUMNS)}")]
        )
    unknown = [c for c in columns if c and c not in COLUMNS]
    if unknown:
        raise BadInput(
            [Problem(where, 1, f"unknown column(s) {', '.join(map(repr, unknown))}; expected {', '.join(COLUMNS)}")]
        )
    index = {name: columns.index(name) for name in COLUMNS if name in columns}

    good: list[NewSubscriber] = []
    bad: list[RowProblem] = []
    seen: dict[str, int] = {}
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            bad.append(RowProblem(reader.line_num, f"not CSV: {exc}"))
            continue
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(columns):
            bad.append(RowProblem(line, f"{len(row)} fields, the header has {len(columns)}"))
            continue

        def cell(name: str, row: list[str] = row) -> str:
            i = index.get(name)
            return row[i].strip() if i is not None and i < len(row) else ""

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


EXPORT_COLUMNS = ("email", "name", "language", "status")


def write_csv(subscribers: Iterable[Subscriber]) -> str:
    """The subscribers as CSV text (email, name, language, status), header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for sub in subscribers:
        writer.writerow([sub.email, sub.name, sub.language, sub.status])
    return buffer.getvalue()
