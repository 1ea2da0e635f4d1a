"""How a setting of newsletter.toml is declared, once: a field `setting(kind, default=…,
help=…, example=…)` of a class made a `@table("name")`. The field is the value commands
use; the reader (`read_table`), the allowed keys, the `init` scaffold and README's table of
settings are all made from these declarations (see newsletter.config.document)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, dataclass_transform

from newsletter.config.toml import MISSING, Kind, PerLanguage, TomlReader
from newsletter.languages import LANGUAGES

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One key of newsletter.toml."""

    kind: Kind
    help: str  # README's "what it does" and the scaffold's comment
    example: str | Mapping[str, str] | None  # a TOML value as the scaffold writes it (per language)
    default: Any  # MISSING: the key must be set
    name: str = ""  # the field that holds its value (set by `table`)
    key: str = ""  # dotted, as written in newsletter.toml (default: table.field)
    default_text: str | None = None  # README's default when it is not a plain value
    default_from: str | None = None  # the field whose value is the default
    default_by: tuple[str, Mapping[str, Any]] | None = None  # (field, its value → the default)
    aliases: tuple[str, ...] = ()  # other keys read when this one is absent
    shown: bool = False  # set, not commented out, in the scaffold


@dataclasses.dataclass(frozen=True)
class Table:
    """A declared table: its name in newsletter.toml ("" at the top) and its settings."""

    name: str
    help: str
    settings: tuple[Setting, ...]


DECLARED: dict[type, Table] = {}


def setting(
    kind: Kind,
    *,
    help: str,
    example: str | Mapping[str, str] | None = None,
    default: Any = MISSING,
    key: str = "",
    default_text: str | None = None,
    default_from: str | None = None,
    default_by: tuple[str, Mapping[str, Any]] | None = None,
    aliases: tuple[str, ...] = (),
    shown: bool = False,
) -> Any:
    """A field of a `@table` class that is a setting of newsletter.toml."""
    about = Setting(kind, help, example, default, key=key, default_text=default_text, default_from=default_from,
                    default_by=default_by, aliases=aliases, shown=shown)  # fmt: skip
    if default is MISSING:
        return dataclasses.field(metadata={"setting": about})
    return dataclasses.field(default=default, metadata={"setting": about})


@dataclass_transform(frozen_default=True, field_specifiers=(setting,))
def table(name: str, help: str = "", *, kw_only: bool = False) -> Callable[[type[T]], type[T]]:
    """The class as a frozen dataclass whose `setting` fields are the keys of [name]."""

    def declare(cls: type[T]) -> type[T]:
        made = dataclasses.dataclass(frozen=True, kw_only=kw_only)(cls)
        found = []
        for field in dataclasses.fields(made):  # type: ignore[arg-type]
            if about := field.metadata.get("setting"):
                key = about.key or ".".join(filter(None, (name, field.name)))
                found.append(dataclasses.replace(about, name=field.name, key=key))
        DECLARED[made] = Table(name, help, tuple(found))
        return made

    return declare


# --- reading a declared table ------------------------------------------------------------------


def read_table(r: TomlReader, table: Table, **given: Any) -> dict[str, Any]:
    """Every setting of a declared table by its field name, read with its kind; a setting whose
    default follows another is read after it."""
    values = dict(given)
    for about in sorted(table.settings, key=lambda about: about.default_by is not None):
        if about.name in values:
            continue
        default = values[about.default_from] if about.default_from else about.default
        if about.default_by is not None:
            other, by = about.default_by
            default = by.get(values[other], about.default)
        value = about.kind.read(r, about.key, default)
        for alias in about.aliases:
            value = value if value is not None else about.kind.read(r, alias, default)
        values[about.name] = value
    return values


def allowed_keys(tables: Iterable[Table]) -> dict[str, Any]:
    """The keys newsletter.toml may hold, as nested tables, for TomlReader.unknown_keys."""
    allowed: dict[str, Any] = {}
    for table in tables:
        for about in table.settings:
            for key in (about.key, *about.aliases):
                *parents, last = key.split(".")
                node = allowed
                for part in parents:
                    node = node.setdefault(part, {})
                if isinstance(about.kind, PerLanguage):
                    node.setdefault(last, {}).update(dict.fromkeys(LANGUAGES, 1))
                else:
                    node[last] = 1
    return allowed
