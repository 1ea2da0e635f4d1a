"""Who has a value for each personal field of a letter, for `newsletter check`: counted over
every active subscriber in the project's store, matched as the composer matches them
(newsletter.placeholders.person_values), so that a field nobody has (a column misnamed, or
never imported) is seen before the send instead of being read as its fallback by everyone.

`check` names no list, so every active subscriber of every list is counted: a field nobody has
there is one nobody on any list has. The store is only read, and only when there is one: a
project whose SQLite file does not exist yet is not counted (and no database is made for it),
nor is one whose store cannot be opened (each field's line says why)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from newsletter.domain import ACTIVE
from newsletter.errors import NewsletterError
from newsletter.letter.render import Build
from newsletter.placeholders import Field, field_slot, person_values


@dataclass(frozen=True)
class Holders:
    """How many of `total` people have a value for each field (by its marker's number)."""

    total: int = 0
    counts: tuple[int, ...] = ()
    unknown: str = ""  # why nobody was counted, when the store could not be read

    def nobody(self, number: int) -> bool:
        """Whether people were counted and none of them has a value for field `number`."""
        return self.total > 0 and not self.unknown and self.counts[number] == 0

    def said(self, number: int, field: Field) -> str:
        """What `check` adds to the line of field `number`: who has it ("" when nobody was counted)."""
        if self.unknown:
            return f"; who has a value is not known ({self.unknown})"
        if self.total == 0:
            return ""
        if self.nobody(number):
            return f"; nobody of the {self.total} active subscribers has a value in the column {field.column or field.name!r}"
        return f"; {self.counts[number]} of the {self.total} active subscribers have a value"


def count_holders(fields: tuple[Field, ...], people: Iterable[dict[str, str]]) -> Holders:
    """Each field's holders among `people` (each a person's attributes and their `name`)."""
    counts = [0] * len(fields)
    total = 0
    for person in people:
        total += 1
        filled = person_values(fields, person)
        for number in range(len(fields)):
            counts[number] += field_slot(number) in filled
    return Holders(total, tuple(counts))


def _no_database_yet(url: str) -> bool:
    return url.startswith("sqlite") and not Path(url.partition(":///")[2]).is_file()


def personal_fields(build: Build) -> tuple[Field, ...]:
    """The letter's personal fields, by their markers' numbers."""
    return next(iter(build.variants.values())).fields if build.variants else ()


def field_holders(build: Build) -> Holders | None:
    """The holders of each of the letter's fields among the store's active subscribers; None
    when it has no field, or there is no database yet."""
    config, fields = build.config, personal_fields(build)
    if not fields or _no_database_yet(config.store_url):
        return None
    from newsletter.store import Store  # SQLAlchemy only for a letter with personal fields

    try:
        store = Store.open(config.store_url)
    except NewsletterError as exc:
        return Holders(unknown=str(exc))
    try:
        rows = store.subscribers.export_rows(status=ACTIVE)
        return count_holders(fields, ({**row.attributes, "name": row.subscriber.name or ""} for row in rows))
    except NewsletterError as exc:
        return Holders(unknown=str(exc))
    finally:
        store.close()
