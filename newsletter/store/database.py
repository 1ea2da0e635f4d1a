"""The connection to the database: SQLite by default (a file beside newsletter.toml),
PostgreSQL by URL. The schema is kept current with Alembic when a store is opened."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

import newsletter.store.tables as t
from newsletter import keys
from newsletter.errors import NewsletterError

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes: they were written in UTC."""
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


class StoreError(NewsletterError):
    """The database could not do what was asked."""


class SenderBusy(NewsletterError):
    """Another process is sending the same campaign."""

    exit_code = 1


class Database:
    """An engine, a clock and, on SQLite, the lock that queues writers."""

    def __init__(self, engine: Engine, *, now: Clock = utcnow):
        self.engine = engine
        self.now = now
        # SQLite has one writer: queueing writers here is fairer than its busy handler's
        # growing sleeps, which made the slowest one-click unsubscribes take seconds.
        self._write_lock: Any = threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def sender_lock(self, key: str, *, shared: bool = False) -> Iterator[None]:
        """Held while this process sends the campaign named by `key`; released when it ends or
        dies (kill -9 included), so a dead sender never leaves a campaign stuck. `shared`:
        the workers of one campaign on PostgreSQL hold it together; a plain `send` alone.
        Raises SenderBusy when another process holds it."""
        if self.engine.dialect.name == "postgresql":
            with self._advisory_lock(key, shared):
                yield
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            yield
            return
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        path = Path(f"{database}.send-{digest}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "another process"
                raise SenderBusy(_busy(key, f"process {holder}")) from None
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode("ascii"))
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @contextlib.contextmanager
    def _advisory_lock(self, key: str, shared: bool) -> Iterator[None]:
        number = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big", signed=True)
        function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        conn = self.engine.connect()
        conn.detach()  # its own session, closed (not pooled) at the end: that releases the lock
        try:
            if not conn.execute(text(f"SELECT {function}(:n)"), {"n": number}).scalar():
                raise SenderBusy(_busy(key, "another process"))
            conn.commit()
            yield
        finally:
            conn.close()  # the session ends: PostgreSQL releases its advisory locks

    def secret_key(self, environ: dict[str, str] | None = None) -> bytes:
        """The store's data key, opened with NEWSLETTER_SECRET_KEY (or one of
        NEWSLETTER_OLD_SECRET_KEYS); the first key a new store meets becomes its data key.
        WrongKey when none of them is the store's key."""
        current = keys.secret_key(environ)
        with self.engine.begin() as conn:
            row = conn.execute(select(t.store_key.c.fingerprint, t.store_key.c.wrapped)).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(t.store_key).values(
                                id=1,
                                fingerprint=keys.fingerprint(current),
                                wrapped=keys.wrap(current, current),
                                changed_at=self.now(),
                            )
                        )
                    return current
                except IntegrityError:  # another process made it meanwhile
                    row = conn.execute(select(t.store_key.c.fingerprint, t.store_key.c.wrapped)).one()
        stored, wrapped = row
        for key in (current, *keys.old_keys(environ)):
            if keys.fingerprint(key) == stored:
                return keys.unwrap(key, wrapped)
        raise keys.wrong_key(stored, current)

    def rotate_key(self, environ: dict[str, str] | None = None) -> bool:
        """Wrap the data key under NEWSLETTER_SECRET_KEY (opened with an old key); False when
        it already is. Afterwards the old keys open nothing and can be retired."""
        current = keys.secret_key(environ)
        data_key = self.secret_key(environ)
        with self.engine.begin() as conn:
            stored = conn.execute(select(t.store_key.c.fingerprint)).scalar_one()
            if stored == keys.fingerprint(current):
                return False
            conn.execute(
                update(t.store_key).values(
                    fingerprint=keys.fingerprint(current), wrapped=keys.wrap(current, data_key), changed_at=self.now()
                )
            )
        return True

    def reachable(self) -> bool:
        """Whether the database answers a trivial query now (and, on SQLite, whether its file is
        still there: pooled connections keep a moved or deleted file open)."""
        database = self.engine.url.database
        if (
            self.engine.dialect.name == "sqlite"
            and database
            and database != ":memory:"
            and not os.path.isfile(database)
        ):
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
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _busy(key: str, holder: str) -> str:
    slug, _, rest = key.partition("|")
    return (
        f"{slug}: this campaign is being sent by {holder}; wait for it to finish, or stop it "
        "(Ctrl-C) and run send again, which resumes where it stopped"
    )


_ADDRESS_IN_TEXT = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+")


def redact(text: str | None, limit: int = 500) -> str | None:
    """Provider replies quote the address (`550 5.1.1 <jane@example.com>`): keep the rest only."""
    if text is None:
        return None
    return _ADDRESS_IN_TEXT.sub("<address>", text)[:limit]


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
