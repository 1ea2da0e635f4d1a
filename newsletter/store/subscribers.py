"""Subscribers and lists: import, look up, change status, take off a list, forget."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTable, DropTable

import newsletter.store.tables as t
from newsletter import domain as d
from newsletter.domain import ExportRow, ImportResult, NewSubscriber, Subscriber
from newsletter.keys import email_hash, email_key
from newsletter.store.database import (
    Repository,
    as_utc,
    dump_attributes,
    list_id,
    load_attributes,
    suppress,
    suppressed_hashes,
)

if TYPE_CHECKING:
    from newsletter.audience.spreadsheet import Seen

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


class Subscribers(Repository):
    """Lists and the people on them."""

    def import_rows(
        self,
        rows: Iterable[NewSubscriber] | Callable[[Seen], Iterable[NewSubscriber]],
        list_name: str,
        secret: bytes,
        *,
        default_language: str | None = None,
        source: str | None = None,
    ) -> ImportResult:
        """Add or update every row and put it on the list, all in one transaction: whatever stops
        an import half-way (a fault, Ctrl-C) leaves nothing of it behind.

        Never resubscribes: a known address keeps its status (unsubscribed, bounced,
        complained), and an address among the suppressions is not added back at all. A row
        changes only what it gives: no name or no language keeps the stored one, and its other
        columns are added to the stored attributes; a new person without a language gets
        `default_language`, and `source` ("import partners.csv") as how they came. Rows are
        handled a thousand at a time, with a few statements per chunk.

        `rows` may be a function that reads them given where to note the addresses met
        (`SheetFile.people`): they are then noted in a table of this transaction, on disk, so a
        sheet of millions of rows is checked for repeats in the same memory as a small one.
        """
        result = ImportResult()
        now = self.db.now()
        with self.db.write() as conn:
            chunk = _Chunk(conn, list_id(conn, list_name, create=True, now=now), suppressed_hashes(conn), now)
            people: Iterable[NewSubscriber]
            seen: _SeenInTransaction | None = None
            if isinstance(rows, Iterable):
                people = rows
            else:
                seen = _SeenInTransaction(conn)
                people = rows(seen)
            batch: list[NewSubscriber] = []
            for row in people:
                batch.append(row)
                if len(batch) == 1000:
                    chunk.add(batch, secret, result, default_language, source)
                    batch = []
            if batch:
                chunk.add(batch, secret, result, default_language, source)
            if seen:
                seen.drop()
        return result

    def all(self, list_name: str | None = None, status: str | None = None) -> Iterator[Subscriber]:
        query = select(*SUBSCRIBER_COLUMNS).order_by(t.subscribers.c.id)
        if list_name is not None:
            query = query.select_from(
                t.subscribers.join(t.list_members, t.list_members.c.subscriber_id == t.subscribers.c.id).join(t.lists)
            ).where(t.lists.c.name == list_name)
        if status is not None:
            query = query.where(t.subscribers.c.status == status)
        with self.db.read() as conn:
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
        with self.db.read() as conn:
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
        with self.db.read() as conn:
            row = conn.execute(select(*SUBSCRIBER_COLUMNS).where(condition)).first()
            return Subscriber(*row) if row else None

    def by_email(self, address: str) -> Subscriber | None:
        return self._one_subscriber(t.subscribers.c.email_key == email_key(address))

    def by_token_key(self, token_key: str) -> Subscriber | None:
        return self._one_subscriber(t.subscribers.c.token_key == token_key)

    def set_language(self, token_key: str, language: str) -> Subscriber | None:
        """The reader's own choice of language (by their unsubscribe token's key), for the next campaign."""
        c = t.subscribers.c
        with self.db.write() as conn:
            conn.execute(
                update(t.subscribers)
                .where(c.token_key == token_key)
                .values(language=language, updated_at=self.db.now())
            )
            row = conn.execute(select(*SUBSCRIBER_COLUMNS).where(c.token_key == token_key)).first()
        return Subscriber(*row) if row else None

    def remove_from_lists(self, address: str, list_name: str | None = None) -> int:
        """Take the person off one list (or all); they stay known, with their status."""
        with self.db.write() as conn:
            subscriber_id = conn.execute(
                select(t.subscribers.c.id).where(t.subscribers.c.email_key == email_key(address))
            ).scalar()
            if subscriber_id is None:
                return 0
            query = delete(t.list_members).where(t.list_members.c.subscriber_id == subscriber_id)
            if list_name is not None:
                query = query.where(t.list_members.c.list_id == list_id(conn, list_name, create=False))
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
        with self.db.write() as conn:
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
            suppress(conn, email_hash(secret, key), "forgotten", self.db.now())
        self.db.flush_erased()
        return forgotten


class _SeenInTransaction:
    """The addresses an import has met (`audience.spreadsheet.Seen`), in a temporary table of its
    transaction: by a digest salted afresh for each import, with the line each came on. On SQLite
    the table lives in a temporary file deleted as it is opened; it goes with the transaction."""

    table = Table(
        "import_seen",
        MetaData(),
        Column("digest", LargeBinary, primary_key=True),
        Column("line", Integer, nullable=False),
        prefixes=["TEMPORARY"],
    )

    def __init__(self, conn: Connection):
        self.conn, self.salt = conn, secrets.token_bytes(16)
        # SQLite's driver runs DDL outside a transaction: one left by an import that failed
        conn.execute(DropTable(self.table, if_exists=True))
        conn.execute(CreateTable(self.table))

    def _digest(self, key: str) -> bytes:
        return hashlib.blake2b(key.encode("utf-8"), key=self.salt, digest_size=16).digest()

    def first_lines(self, lines: dict[str, int]) -> dict[str, int]:
        c = self.table.c
        by_digest = {self._digest(key): key for key in lines}
        query = select(c.digest, c.line).where(c.digest.in_(list(by_digest)))
        earlier = {by_digest[digest]: line for digest, line in self.conn.execute(query)}
        new = [{"digest": d, "line": lines[key]} for d, key in by_digest.items() if key not in earlier]
        if new:
            self.conn.execute(insert(self.table), new)
        return earlier

    def drop(self) -> None:
        self.conn.execute(DropTable(self.table))


class _Chunk:
    """One import's transaction, fed a thousand rows at a time."""

    def __init__(self, conn: Connection, list_id: int | None, suppressed: set[str], now: dt.datetime):
        self.conn, self.list_id, self.suppressed, self.now = conn, list_id, suppressed, now

    def add(self, chunk: list[NewSubscriber], secret: bytes, result: ImportResult, default_language, source) -> None:
        wanted: dict[str, NewSubscriber] = {}
        for row in chunk:
            key = email_key(row.email)
            if self.suppressed and email_hash(secret, key) in self.suppressed:
                result.suppressed += 1
            else:
                wanted[key] = row
        if not wanted:
            return
        c = t.subscribers.c
        existing = {
            key: (subscriber_id, status, attributes)
            for subscriber_id, key, status, attributes in self.conn.execute(
                select(c.id, c.email_key, c.status, c.attributes).where(c.email_key.in_(list(wanted)))
            )
        }
        new = {key: row for key, row in wanted.items() if key not in existing}
        if new:
            self._insert(new, result, default_language, source)
        if len(new) < len(wanted):
            self._update(wanted, existing, result)
        self._join_list(list(wanted))

    def _insert(self, new: dict[str, NewSubscriber], result: ImportResult, default_language, source) -> None:
        people = [
            {
                "email": row.email,
                "email_key": key,
                "name": row.name,
                "language": row.language or default_language,
                "status": d.ACTIVE,
                "token_key": secrets.token_hex(16),
                "created_at": self.now,
                "updated_at": self.now,
                "attributes": dump_attributes(row.attributes),
                "consent_source": source,
            }
            for key, row in new.items()
        ]
        if any(person["language"] is None for person in people):
            raise ValueError("a new subscriber without a language, and no default language")
        self.conn.execute(insert(t.subscribers), people)
        result.added += len(people)
        result.primary_language += sum(1 for row in new.values() if not row.language)

    def _update(self, wanted: dict[str, NewSubscriber], existing: dict, result: ImportResult) -> None:
        c = t.subscribers.c
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
        self.conn.execute(
            update(t.subscribers)
            .where(c.id == bindparam("subscriber_id"))
            .values(
                name=func.coalesce(func.nullif(bindparam("new_name"), ""), c.name),
                language=func.coalesce(bindparam("new_language"), c.language),
                attributes=bindparam("new_attributes"),
                updated_at=self.now,
            ),
            updates,
        )
        for key in wanted:
            if key in existing:
                if existing[key][1] == d.ACTIVE:
                    result.updated += 1
                else:
                    result.kept_status += 1

    def _join_list(self, keys: list[str]) -> None:
        members = t.list_members.c
        ids = list(self.conn.execute(select(t.subscribers.c.id).where(t.subscribers.c.email_key.in_(keys))).scalars())
        on_list = set(
            self.conn.execute(
                select(members.subscriber_id).where(
                    and_(members.list_id == self.list_id, members.subscriber_id.in_(ids))
                )
            ).scalars()
        )
        missing = [{"list_id": self.list_id, "subscriber_id": i, "added_at": self.now} for i in ids if i not in on_list]
        if missing:
            self.conn.execute(insert(t.list_members), missing)
