"""Loading an issue folder: issue.toml and one Markdown file per section and language, with
the personal fields (`{{ name | default("…") }}`: `name`, and those newsletter.toml names under
`fields`, each with its spreadsheet column, matched as loosely as the spreadsheets' headers)
taken out of the Markdown before it is rendered and a marker left in their place
(newsletter.placeholders)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it.token import Token

from newsletter.config import Config
from newsletter.config.toml import CONTROL, did_you_mean, line_of_key, read_toml
from newsletter.errors import Problems
from newsletter.languages import BILINGUAL, LANGUAGES, loose
from newsletter.letter import markdown
from newsletter.placeholders import CLOSE, OPEN, Field

SECTION_FILE = re.compile(r"^(?P<number>\d+)-(?P<name>[a-z0-9][a-z0-9_-]*)\.(?P<lang>[A-Za-z-]+)\.md$")
FRAME_FILE = re.compile(r"^(?P<name>opening|closing)\.(?P<lang>[A-Za-z-]+)\.md$")
FRONT_MATTER_KEYS = ("title",)
# A title typed with its own number ("1. …", "١) …") is how every section of a letter ends up "1.".
# Personal fields: `{{ name | default("…") }}`, and those newsletter.toml names under `fields`
_FIELD = re.compile(
    r"\{\{\s*(?P<field>[^\s|}]*)\s*"
    r"(?:\|\s*default\s*\(\s*(?:\"(?P<dq>(?:[^\"\\\n]|\\.)*)\"|'(?P<sq>(?:[^'\\\n]|\\.)*)')\s*\)\s*)?\}\}"
)
_LOOKS_LIKE_A_FIELD = re.compile(r"\{\{.*?\}\}|\{\{")
TYPED_NUMBER = re.compile(r"^\s*[0-9\u0660-\u0669\u06F0-\u06F9]+\s*[.)\-–:]\s*")


@dataclass(frozen=True)
class Part:
    """One Markdown file: a section, opening or closing in one language."""

    path: Path
    language: str
    title: str | None
    body: str
    body_line: int  # line of the file where the body starts, for messages
    tokens: list[Token] = field(repr=False, compare=False, default_factory=list)


@dataclass(frozen=True)
class SectionFiles:
    key: str  # "02-outreach": file order, never shown
    order: int
    parts: dict[str, Part]


@dataclass(frozen=True)
class Issue:
    path: Path
    slug: str
    date: dt.date
    title: dict[str, str]
    subject: dict[str, str]
    preheader: dict[str, str]
    opening: dict[str, Part]
    sections: list[SectionFiles]
    closing: dict[str, Part]
    fields: tuple[Field, ...] = ()  # the personal fields of every file, by the number of their marker

    def files(self) -> list[Path]:
        parts = [*self.opening.values(), *self.closing.values()]
        for section in self.sections:
            parts.extend(section.parts.values())
        return [self.path / "issue.toml", *sorted(p.path for p in parts)]


def load_issue(folder: Path, config: Config, problems: Problems) -> Issue | None:
    """Read every file of the issue, recording every problem; None when any was found."""
    folder = folder.resolve()
    before = len(problems.items)
    if not folder.is_dir():
        problems.add(folder, "issue folder not found")
        return None
    meta = _load_issue_toml(folder / "issue.toml", config, problems)

    opening: dict[str, Part] = {}
    closing: dict[str, Part] = {}
    sections: dict[str, dict[str, Part]] = {}
    orders: dict[str, int] = {}
    fields: list[Field] = []
    known = {"name": "name", **dict(config.fields)}  # field → its column
    for path in sorted(folder.iterdir()):
        if path.is_dir() or path.suffix != ".md":
            continue
        name = path.name
        if match := FRAME_FILE.match(name):
            lang = match["lang"]
            if not _language_ok(path, lang, config, problems):
                continue
            part = _load_part(path, lang, problems, fields, known, title_required=False)
            if part is not None:
                (opening if match["name"] == "opening" else closing)[lang] = part
        elif match := SECTION_FILE.match(name):
            lang = match["lang"]
            if not _language_ok(path, lang, config, problems):
                continue
            key = f"{match['number']}-{match['name']}"
            orders[key] = int(match["number"])
            part = _load_part(path, lang, problems, fields, known, title_required=True)
            if part is not None:
                sections.setdefault(key, {})[lang] = part
            else:
                sections.setdefault(key, {})
        else:
            problems.add(path, "not an issue file name: expected NN-name.LANG.md, opening.LANG.md or closing.LANG.md")

    _check_files(folder, (opening, closing, sections), orders, config, problems)
    if not sections and not list(problems.items[before:]):
        problems.add(folder, "no sections: add files named like 01-news.<lang>.md")

    if len(problems.items) > before or meta is None:
        return None
    ordered = sorted(sections, key=lambda k: (orders[k], k))
    return Issue(
        path=folder,
        slug=folder.name,
        date=meta["date"],
        title=meta["title"],
        subject=meta["subject"],
        preheader=meta["preheader"],
        opening=opening,
        sections=[SectionFiles(key=k, order=orders[k], parts=sections[k]) for k in ordered],
        closing=closing,
        fields=tuple(fields),
    )


def _check_files(
    folder: Path,
    files: tuple[dict[str, Part], dict[str, Part], dict[str, dict[str, Part]]],
    orders: dict[str, int],
    config: Config,
    problems: Problems,
) -> None:
    """Every language of the opening, the closing and each section there; no two sections with one number."""
    opening, closing, sections = files
    _check_languages(folder, "opening", opening, config, problems)
    _check_languages(folder, "closing", closing, config, problems)
    by_order: dict[int, list[str]] = {}
    for key in sorted(sections):
        by_order.setdefault(orders[key], []).append(key)
        _check_languages(folder, key, sections[key], config, problems, seen_keys=_seen(folder, key, config))
    for order, keys in sorted(by_order.items()):
        if len(keys) > 1:
            problems.add(
                folder / f"{keys[1]}.{config.primary.code}.md",
                f"shares its number {order} with {keys[0]}; the order of sections must be unambiguous",
            )


def _seen(folder: Path, key: str, config: Config) -> set[str]:
    return {p.name.split(".")[-2] for p in folder.glob(f"{key}.*.md")}


def _language_ok(path: Path, lang: str, config: Config, problems: Problems) -> bool:
    if lang in config.codes:
        return True
    if lang in LANGUAGES:
        problems.add(path, f"language {lang!r} is not in newsletter.toml languages ({', '.join(config.codes)})")
    else:
        problems.add(path, f"unknown language {lang!r}; newsletter.toml lists {', '.join(config.codes)}")
    return False


def _check_languages(
    folder: Path,
    key: str,
    parts: dict[str, Part],
    config: Config,
    problems: Problems,
    seen_keys: set[str] | None = None,
) -> None:
    present = set(parts) | ((seen_keys or set()) & set(config.codes))
    if not present:
        return  # opening and closing are optional, as a whole
    for language in config.languages:
        if language.code not in present:
            others = " and ".join(f"{key}.{code}.md" for code in sorted(present))
            problems.add(
                folder / f"{key}.{language.code}.md",
                f"missing: the {language.english_name} ({language.code}) counterpart of {others}",
            )


def _load_part(
    path: Path, lang: str, problems: Problems, fields: list[Field], known: dict[str, str], *, title_required: bool
) -> Part | None:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problems.add(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        return None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    count = len(problems.items)
    front, body, body_line = _split_front_matter(path, text, problems)
    if len(problems.items) > count:
        return None
    title = front.get("title")
    title_line = _front_matter_line(text, "title")
    try:  # personal fields out, markers in, before Markdown sees the text
        body = take_fields(body, fields, known, first_line=body_line, path=str(path))
    except FieldError as exc:
        problems.add(path, str(exc), line=exc.line)
        return None
    tokens = markdown.parse(body)
    if title is None:
        title_line = body_line + (tokens[0].map[0] if tokens and tokens[0].map else 0)
        title, body, body_line, tokens = _take_heading(body, body_line, tokens)
    if title is not None and not title.strip():
        problems.add(path, "empty title", line=title_line)
        title = None
    if title is not None and TYPED_NUMBER.match(title):
        problems.add(
            path,
            f"title {title!r} starts with a number; sections are numbered when the letter is built",
            line=title_line,
        )
    if title is None and title_required:
        problems.add(path, "missing title: add front matter 'title: …' or a first line '# …'")
    if not body.strip():
        problems.add(path, "empty section" if title_required else "empty file")
    if len(problems.items) > count:
        return None
    return Part(
        path=path, language=lang, title=title.strip() if title else None, body=body, body_line=body_line, tokens=tokens
    )


def _split_front_matter(path: Path, text: str, problems: Problems) -> tuple[dict[str, str], str, int]:
    """YAML-style `key: value` lines between `---` fences; only `title` is known."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return {}, text, 1
    closing = next((i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---"), None)
    if closing is None:
        problems.add(path, "front matter: no closing '---'", line=1)
        return {}, "", len(lines) + 1
    values: dict[str, str] = {}
    for number, line in enumerate(lines[1:closing], start=2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
            problems.add(path, f"front matter: expected 'key: value', got {line.strip()!r}", line=number)
            continue
        if key not in FRONT_MATTER_KEYS:
            problems.add(
                path, f"front matter: unknown key {key!r} (known: {', '.join(FRONT_MATTER_KEYS)})", line=number
            )
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values, "\n".join(lines[closing + 1 :]), closing + 2


def _front_matter_line(text: str, key: str) -> int | None:
    for number, line in enumerate(text.split("\n")[1:], start=2):
        if line.strip() == "---":
            return None
        if line.partition(":")[0].strip() == key:
            return number
    return None


def _take_heading(body: str, body_line: int, tokens: list[Token]) -> tuple[str | None, str, int, list[Token]]:
    """The first `# heading` as the title, when it is the first block of the body."""
    if len(tokens) >= 3 and tokens[0].type == "heading_open" and tokens[0].tag == "h1":
        title = tokens[1].content
        end = tokens[0].map[1] if tokens[0].map else 1
        lines = body.split("\n")
        rest = "\n".join(lines[end:])
        return title, rest, body_line + end, markdown.parse(rest)
    return None, body, body_line, tokens


def _load_issue_toml(path: Path, config: Config, problems: Problems) -> dict | None:
    data = read_toml(path, problems)
    if data is None:
        return None
    count = len(problems.items)

    def problem(key: str, message: str) -> None:
        problems.add(path, f"{key}: {message}", line=line_of_key(path, key))

    known = ("date", "title", "subject", "preheader")
    for key in data:
        if key not in known:
            problem(key, "unknown key" + did_you_mean(key, known))
    date = data.get("date")
    if date is None:
        problem("date", "missing")
    elif not isinstance(date, dt.date) or isinstance(date, dt.datetime):
        problem("date", f"expected a date such as 2022-12-20, got {date!r}")
    result: dict = {"date": date}
    for table, required in (("title", False), ("subject", True), ("preheader", True)):
        values = data.get(table, {})
        if not isinstance(values, dict):
            problem(table, f"expected a table of one value per language, got {values!r}")
            continue
        for code, value in values.items():
            # `bilingual`: the bilingual letter's own inbox line (default: both languages joined)
            if code not in config.codes and not (code == BILINGUAL and table != "title" and len(config.codes) > 1):
                problem(
                    f"{table}.{code}",
                    f"language {code!r} is not in newsletter.toml languages ({', '.join(config.codes)})",
                )
            elif not isinstance(value, str) or not value.strip():
                problem(f"{table}.{code}", f"expected a non-empty string, got {value!r}")
            elif CONTROL.search(value):
                problem(f"{table}.{code}", f"must be one line, without control characters: {value!r}")
        if required or values:
            for code in config.codes:
                if code not in values:
                    problem(f"{table}.{code}", "missing")
        result[table] = {k: " ".join(v.split()) for k, v in values.items() if isinstance(v, str)}
    if len(problems.items) > count:
        return None
    return result


class FieldError(ValueError):
    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def take_fields(text: str, fields: list[Field], known: dict[str, str], *, first_line: int = 1, path: str = "") -> str:
    """`text` with each field replaced by a marker numbered after those already in `fields`
    (which it extends); `known` gives each field's column. Raises FieldError for an unknown
    field or a `{{` that is not a field."""
    columns = {loose(name): column for name, column in known.items()}

    def line_of(position: int) -> int:
        return first_line + text.count("\n", 0, position)

    out: list[str] = []
    last = 0
    for match in _LOOKS_LIKE_A_FIELD.finditer(text):
        found = _FIELD.fullmatch(match.group())
        line = line_of(match.start())
        if found is None:
            raise FieldError(
                f'{match.group()[:60]!r} is not a personal field: write {{{{ name | default("…") }}}}', line
            )
        name = found.group("field")
        if loose(name) not in columns or not name.isidentifier():
            listed = ", ".join(known)
            guess = did_you_mean(name, known)
            raise FieldError(
                f"unknown field {name!r} in {match.group()!r}{guess}; known: {listed} (add others to fields in newsletter.toml)",
                line,
            )
        fallback = _unescape(found.group("dq") or found.group("sq") or "")
        out.append(text[last : match.start()])
        out.append(f"{OPEN}{len(fields)}{CLOSE}")
        fields.append(Field(name, fallback, path, line, column=columns[loose(name)]))
        last = match.end()
    out.append(text[last:])
    return "".join(out)
