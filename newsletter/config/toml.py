"""Reading TOML files with errors that name the file, line and key; and the kinds of setting a
newsletter.toml declaration is made of (after MkDocs' `config_options`), each reading and
checking its value with the same `key: problem` messages. Declared settings: newsletter.config."""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from newsletter.errors import Problems
from newsletter.keys import normalise_email
from newsletter.languages import LANGUAGES

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
    except OSError as exc:  # a folder, a path through a file, no permission
        problems.add(path, f"cannot be read: {(exc.strerror or str(exc)).lower()}")
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
        self.codes: list[str] = []  # the project's languages, once `languages` is read

    def problem(self, key: str, message: str) -> None:
        self.problems.add(self.path, f"{key}: {message}", line=line_of_key(self.path, key))

    def lookup(self, key: str) -> Any:
        """The raw value at a dotted key, or None."""
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., kind_name: str | None = None) -> Any:
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
                    self.problem(name, "unknown key" + did_you_mean(key, schema))
                elif isinstance(schema[key], dict) and isinstance(value, dict):
                    walk(value, schema[key], f"{name}.")
                elif isinstance(schema[key], dict):
                    self.problem(name, f"expected a table ([{name}] with its settings), got {value!r}")

        walk(self.data, allowed, "")


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`; did you mean 'send'?` when `word` is close to one of `known` (a typo), else ""."""
    close = difflib.get_close_matches(word, [str(k) for k in known], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# --- the kinds of setting ----------------------------------------------------------------------

MISSING: Any = dataclasses.MISSING  # a setting without a default must be set


class Kind:
    """What a setting holds (README's type column) and how its value is read and checked."""

    type_name = "text"

    def read(self, r: TomlReader, key: str, default: Any) -> Any:
        raise NotImplementedError


class Text(Kind):
    """A non-empty string; `check` (a compiled pattern's match, say) refuses with
    "expected {expected}, got …"."""

    def __init__(self, check: Callable[[str], object] | None = None, expected: str = "", *, strip: bool = False):
        self.check, self.expected, self.strip = check, expected, strip

    def read(self, r: TomlReader, key: str, default: Any) -> Any:
        value = r.get(key, str, ... if default is MISSING else default)
        if value is None:
            return None if default is MISSING else default
        self.refuse(r, key, value)
        return value.strip() if self.strip and isinstance(value, str) else value

    def refuse(self, r: TomlReader, key: str, value: Any) -> None:
        if self.check is not None and isinstance(value, str) and not self.check(value):
            r.problem(key, f"expected {self.expected}, got {value!r}")


class Address(Kind):
    type_name = "email address"

    def read(self, r: TomlReader, key: str, default: Any) -> Any:
        return r.address(key, ... if default is MISSING else default)


class Choice(Kind):
    """One of `choices` (or, per language, one of `choices[code]`)."""

    def __init__(self, choices: tuple[str, ...] | Mapping[str, tuple[str, ...]], joiner: str = ", ", *,
                 unreadable_too: bool = False):  # fmt: skip
        self.choices, self.joiner = choices, joiner
        self.unreadable_too = unreadable_too  # a value of the wrong type is refused twice, as it always was
        if isinstance(choices, Mapping):
            self.type_name = "; ".join(f"{code}: {', '.join(each)}" for code, each in choices.items())
        else:
            self.type_name = "one of " + ", ".join(choices)

    def read(self, r: TomlReader, key: str, default: Any) -> Any:
        value = r.get(key, str, ... if default is MISSING else default)
        choices = self.choices[key.rpartition(".")[2]] if isinstance(self.choices, Mapping) else self.choices
        if (value is not None or self.unreadable_too) and value not in choices:
            r.problem(key, f"expected one of {self.joiner.join(choices)}, got {value!r}")
        return value


class Number(Kind):
    """A number (or a whole number) of at least `at_least`, or above `above`."""

    def __init__(self, *, at_least: float | None = None, above: float | None = None, whole: bool = False):
        self.at_least, self.above, self.whole = at_least, above, whole
        self.type_name = "whole number" if whole else "number"

    def read(self, r: TomlReader, key: str, default: Any) -> Any:
        name = f"a {self.type_name}"
        value = r.get(key, int if self.whole else (int, float), default, kind_name=name)
        if value is None:
            return default
        low = self.at_least if self.at_least is not None else self.above
        if isinstance(value, bool) or value < low or (self.above is not None and value == low):
            bound = f"of at least {low}" if self.above is None else f"above {low}"
            r.problem(key, f"expected {name} {bound}, got {value!r}")
            return default
        return int(value) if self.whole else float(value)


class Whole(Kind):
    """A whole number from `low` to `high`."""

    type_name = "whole number"

    def __init__(self, low: int, high: int, kind_name: str | None = "a whole number"):
        self.low, self.high, self.kind_name = low, high, kind_name

    def read(self, r: TomlReader, key: str, default: Any) -> Any:
        value = r.get(key, int, default, kind_name=self.kind_name)
        if value is None or isinstance(value, bool) or not self.low <= value <= self.high:
            if value is not None:
                r.problem(key, f"expected a whole number from {self.low} to {self.high}, got {value!r}")
            return default
        return value


_URL = re.compile(r"[\x21-\x7e]+", re.ASCII)
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?", re.ASCII)


class URL(Kind):
    """An absolute URL of printable ASCII (it goes into headers as it is) without a query."""

    def __init__(self, *, https_only: bool = True, base: bool = False):
        self.https_only, self.base = https_only, base
        self.type_name = "https URL" if https_only else "https or http URL"

    def read(self, r: TomlReader, key: str, default: Any) -> Any:
        value = r.get(key, str, ... if default is MISSING else default)
        if value is None:
            return None
        parts = urlsplit(value)
        if self.base:  # base_url: its own words, and a trailing slash dropped
            if not _URL.fullmatch(value) or not _HOST.fullmatch(parts.netloc):
                plain = "printable ASCII with a host name (an internationalised domain in its xn-- form)"
                r.problem(key, f"expected an https URL of {plain}, got {value!r}")
                return None
            if parts.scheme != "https" or parts.query or parts.fragment:
                r.problem(key, f"expected an https URL without query, got {value!r}")
            return value.rstrip("/")
        schemes = ("https",) if self.https_only else ("https", "http")
        if not _URL.fullmatch(value) or parts.scheme not in schemes or not _HOST.fullmatch(parts.netloc):
            kind = "an https URL" if self.https_only else "an absolute https or http URL"
            r.problem(key, f"expected {kind} of printable ASCII with a host name, got {value!r}")
            return None
        if parts.query or parts.fragment:
            r.problem(key, f"expected a URL without query or fragment, got {value!r}")
            return None
        return value


class Names(Kind):
    """A list of strings, each passing `check`; `refusal` is formatted with the bad `value`."""

    type_name = "list of text"

    def __init__(self, check: Callable[[str], object], refusal: str, *, lower: bool = False):
        self.check, self.refusal, self.lower = check, refusal, lower

    def read(self, r: TomlReader, key: str, default: Any) -> Any:
        kept = []
        for value in r.get(key, list, []) or []:
            name = value.lower() if self.lower and isinstance(value, str) else value
            if isinstance(name, str) and self.check(name):
                kept.append(name)
            else:
                r.problem(key, self.refusal.format(value=value))
        return tuple(kept)


class Pairs(Kind):
    """A table of names and string values, each passing `check` (sorted pairs)."""

    type_name = "table of text"

    def __init__(self, check: Callable[[str], object], refusal: str):
        self.check, self.refusal = check, refusal

    def read(self, r: TomlReader, key: str, default: Any) -> Any:
        pairs = r.get(key, dict, {}) or {}
        for name, value in pairs.items():
            if not self.check(str(name)) or not isinstance(value, str) or not self.check(value):
                r.problem(f"{key}.{name}", self.refusal.format(name=name, value=value))
        return tuple(sorted((str(k), str(v)) for k, v in pairs.items()))


class Languages(Kind):
    """The project's languages: known codes, each once; the reader learns them (PerLanguage)."""

    type_name = "list of language codes"

    def read(self, r: TomlReader, key: str, default: Any) -> Any:
        found: list[Any] = []
        codes = r.get(key, list) or []
        if isinstance(codes, list) and not codes and key in r.data:
            r.problem(key, "list at least one language")
        for code in codes:
            if code not in LANGUAGES:
                r.problem(key, f"unknown language {code!r}; known: {', '.join(LANGUAGES)}")
            elif any(language.code == code for language in found):
                r.problem(key, f"{code!r} is listed twice")
            else:
                found.append(LANGUAGES[code])
        r.codes = [language.code for language in found]
        return tuple(found)


class PerLanguage(Kind):
    """A table with one `kind` value per language of the project (default: `each`), as a dict;
    a language the project does not list is refused (any code with `any_code`, else known ones)."""

    def __init__(self, kind: Kind, *, each: Any = None, any_code: bool = False):
        self.kind, self.each, self.any_code = kind, each, any_code
        self.type_name = f"{kind.type_name}, per language"

    def read(self, r: TomlReader, key: str, default: Any) -> Any:
        values = {}
        for code in r.codes:
            value = self.kind.read(r, f"{key}.{code}", self.each)
            if value is not None:
                values[code] = value
        table = r.lookup(key)
        for code in table if isinstance(table, dict) else ():
            if code not in r.codes and (self.any_code or code in LANGUAGES):
                r.problem(f"{key}.{code}", f"language {code!r} is not in languages")
        return values
