"""README's table of settings and the newsletter.toml `newsletter init` writes, both made from
the declarations (newsletter.config.declare), so neither can disagree with what is read."""

from __future__ import annotations

from collections.abc import Iterator

from newsletter.config import TABLES
from newsletter.config.declare import DECLARED, Setting
from newsletter.config.toml import MISSING, Pairs, PerLanguage
from newsletter.languages import LANGUAGES

README_START = "<!-- settings: made by `python -m newsletter.config --readme README.md` from the declarations -->"
README_END = "<!-- /settings -->"
SCAFFOLD_HEADER = """# The organisation's settings, shared by every issue. Unknown keys are errors.
# The names and addresses set below are examples: the example letter builds with them, and a
# real send (smtp or ses, `send --test` too) refuses them until you write your own.
"""
COMMENT_COLUMN = 34


def declared_settings() -> list[Setting]:
    """Every setting, in the order of TABLES and of their fields."""
    return [about for declared in TABLES for about in DECLARED[declared].settings]


def declared_keys() -> list[str]:
    """Every key newsletter.toml may hold, as README's table writes it (`organisation.<language>`)."""
    return [key for about in declared_settings() for key in _readme_keys(about)]


def _readme_keys(about: Setting) -> list[str]:
    suffix = ".<language>" if isinstance(about.kind, PerLanguage) else ""
    return [f"{key}{suffix}" for key in (about.key, *about.aliases)]


def _default(about: Setting) -> str:
    if about.default_text is not None:
        return about.default_text
    if about.default is MISSING or (isinstance(about.kind, PerLanguage) and about.kind.each is MISSING):
        table = about.key.partition(".")[0] if "." in about.key else ""
        return f"required in [{table}]" if table and about.key.count(".") and table not in _ALWAYS else "required"
    value = about.default
    if value is None:
        return "none"
    if value == ():
        return "`{}`" if isinstance(about.kind, Pairs) else "`[]`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f'`"{value}"`' if isinstance(value, str) else f"`{value}`"


_ALWAYS = ("organisation", "email", "numbering")  # tables every project has


def markdown_table() -> str:
    """README's table: every key, its type, its default and what it does."""
    rows = ["| key | type | default | what it does |", "|---|---|---|---|"]
    for about in declared_settings():
        for number, key in enumerate(_readme_keys(about)):
            says = about.help if number == 0 else f"the same as `{_readme_keys(about)[0]}`"
            cells = (f"`{key}`", about.kind.type_name, _default(about), says)
            rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def readme_with_table(readme: str) -> str:
    """`readme` with the table between its markers made anew."""
    head, start, rest = readme.partition(README_START)
    _, end, tail = rest.partition(README_END)
    if not start or not end:
        raise ValueError(f"README has no {README_START} … {README_END} markers")
    return f"{head}{start}\n\n{markdown_table()}\n{end}{tail}"


def _lines(about: Setting) -> Iterator[tuple[str, str, str, str]]:
    """(table, key, example, comment) of each line the scaffold writes for a setting."""
    if isinstance(about.kind, PerLanguage):
        examples = about.example if isinstance(about.example, dict) else {}
        for code in LANGUAGES:
            yield about.key, code, examples.get(code, '""'), ""
        return
    for number, key in enumerate((about.key, *about.aliases)):
        table, _, name = key.rpartition(".")
        comment = about.help if number == 0 else f"the same as [{about.key.rpartition('.')[0]}] {name}"
        if number == 0 and about.default_text is not None and not about.shown:
            comment += f"; default: {about.default_text}"
        yield table, name, str(about.example), comment


def _line(text: str, comment: str, shown: bool) -> str:
    text = text if shown else f"# {text}"
    return f"{text.ljust(COMMENT_COLUMN - 2)}  # {comment}" if comment else text


def scaffold_toml() -> str:
    """The newsletter.toml of a new project: every setting, commented out unless a new project
    needs it, with an example and what it does."""
    groups: dict[str, list[tuple[str, str, bool]]] = {"": []}
    about_table = {DECLARED[declared].name: DECLARED[declared].help for declared in TABLES}
    for about in declared_settings():
        if isinstance(about.kind, PerLanguage):
            about_table[about.key] = about.help
        for table, key, example, comment in _lines(about):
            groups.setdefault(table, []).append((f"{key} = {example}", comment, about.shown))
    parts = [SCAFFOLD_HEADER]
    for table, lines in groups.items():
        shown = any(line[2] for line in lines)
        block = [_line(f"[{table}]", about_table.get(table, ""), shown)] if table else []
        block += [_line(text, comment, shown and line_shown) for text, comment, line_shown in lines]
        parts.append("\n".join(block) + "\n")
    return "\n".join(parts)
