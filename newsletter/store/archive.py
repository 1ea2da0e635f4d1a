"""The public archive: which issues are published, with their web pages as they were published.
Nothing personal is stored here: the pages are the letter's web edition (newsletter.archive)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

import newsletter.store.tables as t
from newsletter.store.database import Repository, as_utc


@dataclass(frozen=True)
class Publication:
    slug: str
    issue_date: dt.date
    published_at: dt.datetime
    updated_at: dt.datetime
    # per language code: {"title": …, "preheader": …}; "bilingual" too
    details: dict[str, dict[str, str]] = field(default_factory=dict)


class Archive(Repository):
    """Published issues and their pages."""

    def publish(
        self,
        slug: str,
        issue_date: dt.date,
        details: dict[str, dict[str, str]],
        files: dict[str, tuple[str, bytes]],
        *,
        replace: bool,
    ) -> bool:
        """Publish an issue with its files (name → (media type, data)). An issue already published
        keeps its date of publication; its pages are replaced only with `replace`. Returns whether
        anything was written."""
        now = self.db.now()
        with self.db.write() as conn:
            found = conn.execute(select(t.publications.c.id).where(t.publications.c.slug == slug)).scalar()
            if found is not None and not replace:
                return False
            values = {"issue_date": issue_date, "details": json.dumps(details, ensure_ascii=False), "updated_at": now}
            if found is None:
                try:
                    with conn.begin_nested():
                        inserted = conn.execute(insert(t.publications).values(slug=slug, published_at=now, **values))
                        found = inserted.inserted_primary_key[0] if inserted.inserted_primary_key else None
                except IntegrityError:  # published meanwhile by another process
                    if not replace:
                        return False
                    found = conn.execute(select(t.publications.c.id).where(t.publications.c.slug == slug)).scalar_one()
            else:
                conn.execute(update(t.publications).where(t.publications.c.id == found).values(**values))
            conn.execute(delete(t.publication_files).where(t.publication_files.c.publication_id == found))
            if files:
                conn.execute(
                    insert(t.publication_files),
                    [
                        {"publication_id": found, "name": name, "media_type": media_type, "data": data}
                        for name, (media_type, data) in files.items()
                    ],
                )
        return True

    def publications(self) -> list[Publication]:
        """Every published issue, newest first (by the issue's date, then by publication)."""
        c = t.publications.c
        query = select(c.slug, c.issue_date, c.published_at, c.updated_at, c.details).order_by(
            c.issue_date.desc(), c.published_at.desc(), c.id.desc()
        )
        with self.db.read() as conn:
            return [
                Publication(slug, date, as_utc(published), as_utc(updated), json.loads(details))
                for slug, date, published, updated, details in conn.execute(query)
            ]

    def file(self, slug: str, name: str) -> tuple[str, bytes] | None:
        """(media type, data) of one file of a published issue."""
        p, f = t.publications.c, t.publication_files.c
        query = (
            select(f.media_type, f.data)
            .select_from(t.publication_files.join(t.publications, p.id == f.publication_id))
            .where(p.slug == slug, f.name == name)
        )
        with self.db.read() as conn:
            row = conn.execute(query).first()
        return (row[0], bytes(row[1])) if row else None

    def files(self, slug: str) -> dict[str, tuple[str, bytes]]:
        p, f = t.publications.c, t.publication_files.c
        query = (
            select(f.name, f.media_type, f.data)
            .select_from(t.publication_files.join(t.publications, p.id == f.publication_id))
            .where(p.slug == slug)
        )
        with self.db.read() as conn:
            return {name: (media_type, bytes(data)) for name, media_type, data in conn.execute(query)}

    def version(self) -> tuple[int, str]:
        """Changes whenever an issue is published or its pages replaced: for caches."""
        c = t.publications.c
        with self.db.read() as conn:
            count, latest = conn.execute(select(func.count(), func.max(c.updated_at))).one()
        return int(count), str(latest)
