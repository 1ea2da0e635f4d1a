"""Reading TOML files with errors that name the file, line and key."""

from __future__ import annotations

import re
import tomllib
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from newsletter.addresses import normalise_email
from newsletter.errors import Problems

# Control characters (tab aside) and line breaks: no setting needs one, and in a header one
# would start a header of its own.
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

ADDRESS = re.compile(
    r"^[^@\s<>\"',;]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)

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


class TomlReader:
    """Pulls typed values out of the parsed TOML, recording a problem per bad key."""

    def __init__(self, data: dict[str, Any], path: Path, problems: Problems):
        self.data = data
        self.path = path
        self.problems = problems
        self.seen: set[str] = set()

    def problem(self, key: str, message: str) -> None:
        self.problems.add(self.path, f"{key}: {message}", line=line_of_key(self.path, key))

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., kind_name: str | None = None) -> Any:
        self.seen.add(key)
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is ...:
                    self.problem(key, "missing")
                    return None
                return default
            node = node[part]
        if not isinstance(node, kind) or (isinstance(node, str) and not node.strip()):
            names: dict[Any, str] = {str: "a non-empty string", list: "a list", dict: "a table"}
            expected = kind_name or names.get(kind, getattr(kind, "__name__", str(kind)))
            self.problem(key, f"expected {expected}, got {node!r}")
            return None
        if isinstance(node, str) and CONTROL.search(node):
            self.problem(key, f"control characters and line breaks are not allowed, got {node!r}")
            return None
        return node

    def address(self, key: str, default: Any = ...) -> str | None:
        value = self.get(key, str, default)
        if value is None or value is default:
            return value
        if any(ch in value for ch in "\r\n"):
            self.problem(key, f"line breaks are not allowed in an address: {value!r}")
            return None
        _, addr = parseaddr(value)
        try:  # the same check as every subscriber's address, and ASCII: it goes into headers as it is
            ok = bool(ADDRESS.match(addr or "")) and addr.isascii() and bool(normalise_email(addr))
        except ValueError:
            ok = False
        if not ok:
            self.problem(key, f"not an email address: {value!r}")
            return None
        return value

    def unknown_keys(self, allowed: dict[str, Any]) -> None:
        def walk(node: dict[str, Any], schema: dict[str, Any], prefix: str) -> None:
            for key, value in node.items():
                name = f"{prefix}{key}"
                if key not in schema:
                    self.problem(name, "unknown key")
                elif isinstance(schema[key], dict) and isinstance(value, dict):
                    walk(value, schema[key], f"{name}.")

        walk(self.data, allowed, "")
