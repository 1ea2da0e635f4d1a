"""Reading TOML files with errors that name the file and line."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from newsletter.errors import Problems

_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


def read_toml(path: Path, problems: Problems) -> dict[str, Any] | None:
    """The parsed file, or None after recording why it could not be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.add(path, "file not found")
        return None
    except UnicodeDecodeError as exc:
        problems.add(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _LINE.search(message)
        line = int(match.group(1)) if match else None
        message = _LINE.sub("", message).strip()
        problems.add(path, f"invalid TOML: {message}", line=line)
        return None


def line_of_key(path: Path, key: str) -> int | None:
    """Best-effort line where a dotted key is set in a TOML file, for messages."""
    table, _, name = key.rpartition(".")
    assignment = re.compile(r"^\s*([A-Za-z0-9_.\"-]+)\s*=")
    header = re.compile(r"^\s*\[+\s*([A-Za-z0-9_.\"-]+)\s*\]+")
    current = ""
    table_line = None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for number, line in enumerate(lines, 1):
        if m := header.match(line):
            current = m.group(1).replace('"', "")
            if current == key:
                return number
            if current == table:
                table_line = number
            continue
        if m := assignment.match(line):
            full = ".".join(filter(None, [current, m.group(1).replace('"', "")]))
            if full == key or (not name and full == table):
                return number
    return table_line
