"""Subscribers and lists: import, look up, change status, take off a list, forget."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

import newsletter.store.tables as t
from newsletter import domain as d
from newsletter.addresses import email_key
from newsletter.domain import ExportRow, ImportResult, NewSubscriber, Subscriber
from newsletter.keys import email_hash
from newsletter.store.database import Database, as_utc
from newsletter.store.values import dump_attributes, load_attributes

SUBSCRIBER_COLUMNS = (
    t.subscribers.c.id,
    t.subscribers.c.email,
    t.subscribers.c.name,
    t.subscribers.c.language,
    t.subscribers.c.status,
    t.subscribers.c.token_key,
    t.subscribers.c.created_at,
)


@dataclass(frozen=True)
class Forgotten:
    known: bool  # False: the address was not known (it is suppressed all the same)
    deliveries: list[int]  # their deliveries, whose outbox copies must go too

    def __bool__(self) -> bool:
        return self.known


class SubscriberStore(Database):
    def _list_id(self, conn: Connection, name: str, create: bool) -> int | None:
        found = conn.execute(select(t.lists.c.id).where(t.lists.c.name == name)).scalar()
        if found is None and create:
            found = conn.execute(
                insert(t.lists).values(name=name, created_at=self.now()).returning(t.lists.c.id)
            ).scalar_one()
        return found

    def list_id(self, name: str) -> int | None:
        with self.engine.connect() as conn:
            return self._list_id(conn, name, create=False)

    def list_name(self, list_id: int) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(t.lists.c.name).where(t.lists.c.id == list_id)).scalar()

    def list_names(self) -> list[tuple[str, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.lists.c.name, func.count(t.list_members.c.subscriber_id))
                .select_from(t.lists.outerjoin(t.list_members))
                .group_by(t.lists.c.name)
                .order_by(t.lists.c.name)
            )
            return [(name, count) for name, count in rows]

    def import_subscribers(
        self,
        rows: Iterable[NewSubscriber],
        list_name: str,
        secret: bytes,
        *,
        default_language: str | None = None,
        source: str | None = None,
    ) -> ImportResult:
        """Add or update every row and put it on the list, all in one transaction.

        Never resubscribes: a known address keeps its status (unsubscribed, bounced,
        complained), and an address among the suppressions is not added back at all. A row
        changes only what it gives: no name or no language keeps the stored one, and its other
        columns are added to the stored attributes; a new person without a language gets
        `default_language`, and `source` ("import partners.csv") as how they came. Rows are
        handled a thousand at a time, with a few statements per chunk.
        """
        result = ImportResult()
        now = self.now()
        with self.engine.begin() as conn:
            list_id = self._list_id(conn, list_name, create=True)
            suppressed = {h for (h,) in conn.execute(select(t.suppressions.c.email_hash))}
            chunk: list[NewSubscriber] = []
            for row in rows:
                chunk.append(row)
                if len(chunk) == 1000:
                    self._import_chunk(conn, chunk, list_id, suppressed, secret, now, result, default_language, source)
                    chunk = []
            if chunk:
                self._import_chunk(conn, chunk, list_id, suppressed, secret, now, result, default_language, source)
        return result

    def _import_chunk(
        self, conn, chunk, list_id, suppressed, secret, now, result: ImportResult, default_language, source
    ) -> None:
        c = t.subscribers.c
        wanted: dict[str, NewSubscriber] = {}
        for row in chunk:
            key = email_key(row.email)
            if suppressed and email_hash(secret, key) in suppressed:
                result.suppressed += 1
            else:
                wanted[key] = row
        if not wanted:
            return
        existing = {
            key: (subscriber_id, status, attributes)
            for subscriber_id, key, status, attributes in conn.execute(
                select(c.id, c.email_key, c.status, c.attributes).where(c.email_key.in_(list(wanted)))
            )
        }
        new = [
            {
                "email": row.email,
                "email_key": key,
                "name": row.name,
                "language": row.language or default_language,
                "status": d.ACTIVE,
                "token_key": secrets.token_hex(16),
                "created_at": now,
                "updated_at": now,
                "attributes": dump_attributes(row.attributes),
                "consent_source": source,
            }
            for key, row in wanted.items()
            if key not in existing
        ]
        if new:
            if any(person["language"] is None for person in new):
                raise ValueError("a new subscriber without a language, and no default language")
            conn.execute(insert(t.subscribers), new)
            result.added += len(new)
            result.primary_language += sum(1 for key, row in wanted.items() if key not in existing and not row.language)
        updates = [
            {
                "subscriber_id": existing[key][0],
                "new_name": row.name,
                "new_language": row.language,
                "new_attributes": dump_attributes({**load_attributes(existing[key][2]), **row.attributes}),
            }
            for key, row in wanted.items()
            if key in existing
        ]
        if updates:
            conn.execute(
                update(t.subscribers)
                .where(c.id == bindparam("subscriber_id"))
                .values(
                    name=func.coalesce(func.nullif(bindparam("new_name"), ""), c.name),
                    language=func.coalesce(bindparam("new_language"), c.language),
                    attributes=bindparam("new_attributes"),
                    updated_at=now,
                ),
                updates,
            )
            for key in wanted:
                if key in existing:
                    if existing[key][1] == d.ACTIVE:
                        result.updated += 1
                    else:
                        result.kept_status += 1
        ids = [i for (i,) in conn.execute(select(c.id).where(c.email_key.in_(list(wanted))))]
        members = {
            i
            for (i,) in conn.execute(
                select(t.list_members.c.subscriber_id).where(
                    and_(t.list_members.c.list_id == list_id, t.list_members.c.subscriber_id.in_(ids))
                )
            )
        }
        missing = [{"list_id": list_id, "subscriber_id": i, "added_at": now} for i in ids if i not in members]
        if missing:
            conn.execute(insert(t.list_members), missing)

    def subscribers(self, list_name: str | None = None, status: str | None = None) -> Iterator[Subscriber]:
        query = select(*SUBSCRIBER_COLUMNS).order_by(t.subscribers.c.id)
        if list_name is not None:
            query = query.select_from(
                t.subscribers.join(t.list_members, t.list_members.c.subscriber_id == t.subscribers.c.id).join(t.lists)
            ).where(t.lists.c.name == list_name)
        if status is not None:
            query = query.where(t.subscribers.c.status == status)
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=1000).execute(query):
                yield Subscriber(*row)

    def export_rows(self, list_name: str | None = None, status: str | None = None) -> Iterator[ExportRow]:
        """`subscribers` with each person's consent and attributes."""
        c = t.subscribers.c
        query = select(*SUBSCRIBER_COLUMNS, c.attributes, c.consent_at, c.consent_version, c.consent_source)
        query = query.order_by(c.id)
        if list_name is not None:
            query = query.select_from(
                t.subscribers.join(t.list_members, t.list_members.c.subscriber_id == c.id).join(t.lists)
            ).where(t.lists.c.name == list_name)
        if status is not None:
            query = query.where(c.status == status)
        n = len(SUBSCRIBER_COLUMNS)
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=1000).execute(query):
                attributes, consent_at, version, source = row[n:]
                yield ExportRow(
                    Subscriber(*row[:n]),
                    load_attributes(attributes),
                    as_utc(consent_at) if consent_at else None,
                    version,
                    source,
                )

    def _one_subscriber(self, condition) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*SUBSCRIBER_COLUMNS).where(condition)).first()
            return Subscriber(*row) if row else None

    def subscriber_by_email(self, address: str) -> Subscriber | None:
        return self._one_subscriber(t.subscribers.c.email_key == email_key(address))

    def subscriber_by_token_key(self, token_key: str) -> Subscriber | None:
        return self._one_subscriber(t.subscribers.c.token_key == token_key)

    def set_status(self, subscriber_id: int, status: str, *, only_if: tuple[str, ...] | None = None) -> bool:
        with self.engine.begin() as conn:
            query = update(t.subscribers).where(t.subscribers.c.id == subscriber_id)
            if only_if is not None:
                query = query.where(t.subscribers.c.status.in_(only_if))
            return conn.execute(query.values(status=status, updated_at=self.now())).rowcount > 0

    def remove_from_lists(self, address: str, list_name: str | None = None) -> int:
        """Take the person off one list (or all); they stay known, with their status."""
        with self.engine.begin() as conn:
            subscriber_id = conn.execute(
                select(t.subscribers.c.id).where(t.subscribers.c.email_key == email_key(address))
            ).scalar()
            if subscriber_id is None:
                return 0
            query = delete(t.list_members).where(t.list_members.c.subscriber_id == subscriber_id)
            if list_name is not None:
                list_id = self._list_id(conn, list_name, create=False)
                query = query.where(t.list_members.c.list_id == list_id)
            return conn.execute(query).rowcount

    def forget(self, address: str, secret: bytes) -> Forgotten:
        """Erase the person: their row, list memberships, the link from past deliveries and
        every text stored about them (provider replies, feedback details).

        Only a keyed hash of the address stays, among the suppressions, so that no later
        import can add them back; the deliveries still count, anonymous. On SQLite the freed
        pages are zeroed and the write-ahead log emptied, so no old copy of the row remains.
        """
        key = email_key(address)
        forgotten = Forgotten(False, [])
        with self._write_lock, self.engine.begin() as conn:
            subscriber_id = conn.execute(select(t.subscribers.c.id).where(t.subscribers.c.email_key == key)).scalar()
            if subscriber_id is not None:
                dl, fe = t.deliveries.c, t.feedback_events.c
                forgotten = Forgotten(
                    True, list(conn.execute(select(dl.id).where(dl.subscriber_id == subscriber_id)).scalars())
                )
                conn.execute(
                    update(t.deliveries)
                    .where(dl.subscriber_id == subscriber_id)
                    .values(subscriber_id=None, last_error=None)
                )
                conn.execute(
                    update(t.feedback_events)
                    .where(fe.subscriber_id == subscriber_id)
                    .values(subscriber_id=None, detail=None)
                )
                conn.execute(delete(t.list_members).where(t.list_members.c.subscriber_id == subscriber_id))
                conn.execute(delete(t.subscribers).where(t.subscribers.c.id == subscriber_id))
            conn.execute(delete(t.signups).where(t.signups.c.email_hash == email_hash(secret, key)))
            self._suppress(conn, key, "forgotten", secret)
        self.flush_erased()
        return forgotten

    def _suppress(self, conn: Connection, key: str, reason: str, secret: bytes) -> None:
        digest = email_hash(secret, key)
        exists = conn.execute(select(t.suppressions.c.id).where(t.suppressions.c.email_hash == digest)).first()
        if exists is None:
            try:
                with conn.begin_nested():
                    conn.execute(insert(t.suppressions).values(email_hash=digest, reason=reason, created_at=self.now()))
            except IntegrityError:
                pass  # recorded meanwhile by another process

    def suppress(self, address: str, reason: str, secret: bytes) -> None:
        with self.engine.begin() as conn:
            self._suppress(conn, email_key(address), reason, secret)

    def is_suppressed(self, address: str, secret: bytes) -> bool:
        digest = email_hash(secret, email_key(address))
        with self.engine.connect() as conn:
            return (
                conn.execute(select(t.suppressions.c.id).where(t.suppressions.c.email_hash == digest)).first()
                is not None
            )
