"""How a setting of newsletter.toml is declared, once: a field `setting(kind, default=…,
help=…, example=…)` of a class made a `@table("name")`. The field is the value commands
use; the reader (`newsletter.config.read_table`), the allowed keys, the `init` scaffold and README's table of
settings are all made from these declarations (see newsletter.config.document)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, dataclass_transform

from newsletter.config.toml import MISSING, Kind

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
