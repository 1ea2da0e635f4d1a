"""The connection to the database: SQLite by default (a file beside newsletter.toml),
PostgreSQL by URL. One `Database` holds the engine, the clock and, on SQLite, the writer lock
that every write transaction takes (`Database.write`). Beside it, the few column codecs and
queries that several repositories share."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import create_engine, event, insert, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

import newsletter.store.tables as t
from newsletter import keys
from newsletter.errors import NewsletterError

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StoreError(NewsletterError):
    """The database could not do what was asked."""


class Database:
    """An engine, a clock and, on SQLite, the lock that queues writers."""

    def __init__(self, engine: Engine, *, now: Clock = utcnow):
        self.engine = engine
        self.now = now
        self.sqlite = engine.dialect.name == "sqlite"
        # SQLite has one writer: queueing writers here is fairer than its busy handler's
        # growing sleeps, which made the slowest one-click unsubscribes take seconds.
        self._write_lock: Any = threading.Lock() if self.sqlite else contextlib.nullcontext()
        self._writing = threading.local()

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction, committed at the end; on SQLite it holds the writer lock.
        Never nested: the lock is not reentrant."""
        with self._write_lock, self.engine.begin() as conn:
            self._writing.held = True
            try:
                yield conn
            finally:
                self._writing.held = False

    def writing(self) -> bool:
        """Whether this thread is inside `write` (the test of the writer lock asks)."""
        return getattr(self._writing, "held", False)

    def read(self) -> contextlib.AbstractContextManager[Connection]:
        return self.engine.connect()

    def close(self) -> None:
        self.engine.dispose()

    def reachable(self) -> bool:
        """Whether the database answers a trivial query now (and, on SQLite, whether its file is
        still there: pooled connections keep a moved or deleted file open)."""
        database = self.engine.url.database
        if self.sqlite and database and database != ":memory:" and not os.path.isfile(database):
            return False
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means: not reachable
            return False
        return True

    def flush_erased(self) -> None:
        """After an erasure on SQLite: copy the write-ahead log into the (zeroing) database file
        and empty it, so that no old page holding the erased rows is left in either."""
        if not self.sqlite:
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


class Keys:
    """The store's data key, wrapped under NEWSLETTER_SECRET_KEY, and its rotation."""

    def __init__(self, db: Database):
        self.db = db

    def data_key(self, environ: dict[str, str] | None = None) -> bytes:
        """The store's data key, opened with NEWSLETTER_SECRET_KEY (or one of
        NEWSLETTER_OLD_SECRET_KEYS); the first key a new store meets becomes its data key.
        WrongKey when none of them is the store's key."""
        current = keys.secret_key(environ)
        columns = (t.store_key.c.fingerprint, t.store_key.c.wrapped)
        with self.db.read() as conn:
            row = conn.execute(select(*columns)).first()
        if row is None:
            with self.db.write() as conn:
                try:
                    with conn.begin_nested():
                        values = {"fingerprint": keys.fingerprint(current), "wrapped": keys.wrap(current, current)}
                        conn.execute(insert(t.store_key).values(id=1, changed_at=self.db.now(), **values))
                    return current
                except IntegrityError:  # another process made it meanwhile
                    row = conn.execute(select(*columns)).one()
        stored, wrapped = row
        for key in (current, *keys.old_keys(environ)):
            if keys.fingerprint(key) == stored:
                return keys.unwrap(key, wrapped)
        raise keys.wrong_key(stored, current)

    def rotate(self, environ: dict[str, str] | None = None) -> bool:
        """Wrap the data key under NEWSLETTER_SECRET_KEY (opened with an old key); False when
        it already is. Afterwards the old keys open nothing and can be retired."""
        current = keys.secret_key(environ)
        data_key = self.data_key(environ)
        with self.db.write() as conn:
            stored = conn.execute(select(t.store_key.c.fingerprint)).scalar_one()
            if stored == keys.fingerprint(current):
                return False
            conn.execute(
                update(t.store_key).values(
                    fingerprint=keys.fingerprint(current),
                    wrapped=keys.wrap(current, data_key),
                    changed_at=self.db.now(),
                )
            )
        return True


# --- values as the columns keep them ---------------------------------------------------------


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes: they were written in UTC."""
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


_ADDRESS_IN_TEXT = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+")


def redact(text: str | None, limit: int = 500) -> str | None:
    """Provider replies quote the address (`550 5.1.1 <jane@example.com>`): keep the rest only."""
    if text is None:
        return None
    return _ADDRESS_IN_TEXT.sub("<address>", text)[:limit]


def load_attributes(stored: str | None) -> dict[str, str]:
    """A person's attributes (the other columns of their spreadsheet): one JSON object of text."""
    if not stored:
        return {}
    try:
        value = json.loads(stored)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def dump_attributes(attributes: dict[str, str]) -> str | None:
    return json.dumps(attributes, ensure_ascii=False, sort_keys=True) if attributes else None


# --- suppressions: the keyed hashes of addresses never to be written to again ---------------


def is_suppressed(conn: Connection, digest: str) -> bool:
    """The one question "is this address (by its keyed hash) suppressed"."""
    found = conn.execute(select(t.suppressions.c.id).where(t.suppressions.c.email_hash == digest)).first()
    return found is not None


def suppressed_hashes(conn: Connection) -> set[str]:
    """Every suppressed hash, for checking many people at once."""
    return set(conn.execute(select(t.suppressions.c.email_hash)).scalars())


def suppress(conn: Connection, digest: str, reason: str, now: dt.datetime) -> None:
    if is_suppressed(conn, digest):
        return
    try:
        with conn.begin_nested():
            conn.execute(insert(t.suppressions).values(email_hash=digest, reason=reason, created_at=now))
    except IntegrityError:
        pass  # recorded meanwhile by another process


def list_id(conn: Connection, name: str, *, create: bool, now: dt.datetime | None = None) -> int | None:
    found = conn.execute(select(t.lists.c.id).where(t.lists.c.name == name)).scalar()
    if found is None and create:
        found = conn.execute(insert(t.lists).values(name=name, created_at=now).returning(t.lists.c.id)).scalar_one()
    return found


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # enough connections for the web server's thread pool (40 threads)
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, pool_size=20, max_overflow=30
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed `sent` survives power loss, not only a killed process
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # deleted rows are overwritten with zeros, not left in free pages (erasure)
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_pre_ping=True)
