"""The database: SQLite by default (a file beside newsletter.toml), PostgreSQL by URL.

One `Database` holds the engine, the clock and, on SQLite, the writer lock that every write
transaction takes (`Database.write`); each repository is a `Repository` over it. Beside it, the
few column codecs and queries that several repositories share, and the schema's revision.
A SQLite file is its owner's alone (0600, and so its -wal and -shm), whatever the umask.

Commands never upgrade a database on their own: an older schema stops them with a message
naming `newsletter db upgrade` (after a backup). A database with no tables at all (a new
SQLite file, an empty PostgreSQL database) is created on first use. On PostgreSQL, creation
and upgrades hold an advisory lock, so that several processes starting at once wait for one
another instead of racing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

import newsletter.store.tables as t
from newsletter.errors import NewsletterError

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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


class Repository:
    """One aggregate's reads and writes over the shared database."""

    def __init__(self, db: Database):
        self.db = db


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
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            pool_size=20,
            max_overflow=30,
            hide_parameters=True,  # an error's text would quote the row's values: addresses and names
        )
        if file := _database_file(engine):
            keep_private(file)

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
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


# --- the SQLite file: only its owner reads it --------------------------------------------

PRIVATE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
log = logging.getLogger("newsletter.store")


def _database_file(engine: Engine) -> Path | None:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:") or engine.url.query.get("uri"):
        return None
    return Path(database)


def keep_private(database: Path) -> None:
    """Create the database file 0600, whatever the umask, before SQLite opens it: SQLite gives
    the -wal, -shm and -journal files it makes the mode of the database file. One of them
    already readable by others (an earlier version's, or made under a looser umask) is
    narrowed, with a warning: it holds the subscribers' addresses, and the deployment runs
    every process as one user (its units set UMask=0077). One not ours to narrow is named."""
    if database.is_dir() or not database.parent.is_dir():
        return  # `ensure_current` says what is wrong, in one line
    with contextlib.suppress(OSError):  # there already, or not ours to make: SQLite then says why
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
        os.fchmod(fd, PRIVATE)  # a umask such as 0277 would have taken more away
        os.close(fd)
    for path in (database, *(Path(f"{database}{suffix}") for suffix in SQLITE_SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                try:
                    path.chmod(mode & 0o700)
                    done = f"now {mode & 0o700:04o}"
                except OSError:
                    done = "not ours to change: chmod 600 it"
                log.warning("store.url: %s could be read by other users (mode %04o); %s", path, mode, done)


# --- the schema's revision: a new database made, an older one refused, upgrades ----------

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK = 0x6E6C5F736368656D  # "nl_schem": one number for every process of every project
BACKUP = (
    "back the database up first: sqlite3 FILE '.backup FILE.bak' (safe while it is in use), or pg_dump for PostgreSQL"
)


class OutdatedStore(NewsletterError):
    exit_code = 2


class UnreachableStore(NewsletterError):
    exit_code = 2


@dataclass(frozen=True)
class Status:
    current: str | None  # None: a new, empty database
    head: str
    pending: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


# The newest migration's revision, what a current database records. Written here rather than
# asked of alembic, which every command would otherwise import (0.19 s) and whose script
# directory would load every migration: only `db upgrade` and a database that is not current
# need them. tests/test_schema_head.py holds it equal to the migrations' own head.
HEAD = "0009"


def _config():
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _scripts():
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def head() -> str:
    return HEAD


def _current(conn: Connection) -> str | None:
    """The revision the database records (alembic's version table), or None before any."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _empty(conn: Connection) -> bool:
    return not inspect(conn).get_table_names()


def shown(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


@contextlib.contextmanager
def _connected(engine: Engine) -> Iterator[Connection]:
    """A connection, or one clear line about why there is none."""
    database = engine.url.database or ""
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        path = Path(database)
        if path.is_dir():
            raise UnreachableStore(f"store.url: {database} is a folder, not a database file")
        if not path.parent.is_dir():
            raise UnreachableStore(f"store.url: the folder of {database} does not exist; create it or set another path")
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise UnreachableStore(f"store.url: cannot reach the database {shown(engine)}: {reason}") from None
    try:
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def _locked(conn: Connection) -> Iterator[None]:
    if conn.in_transaction():
        conn.commit()
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_lock(:n)"), {"n": _LOCK})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:n)"), {"n": _LOCK})
            conn.commit()
    else:
        yield


def _upgrade(conn: Connection) -> None:
    if conn.in_transaction():  # the revision was just read
        conn.commit()
    from alembic import command

    cfg = _config()
    with conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def ensure_current(engine: Engine) -> None:
    """Create a new, empty database; refuse one whose schema is older (or newer) than this
    version's, naming `newsletter db upgrade`."""
    with _connected(engine) as conn:
        current = _current(conn)
        if current == head():
            return
        if current is None and _empty(conn):
            with _locked(conn):
                if _current(conn) is None:  # not created meanwhile by another process
                    _upgrade(conn)
            return
        conn.rollback()
    if current is not None and _unknown(current):
        raise OutdatedStore(
            f"{shown(engine)}: the database is at revision {current}, which this version does not know "
            "(was it upgraded by a newer version?)"
        )
    raise OutdatedStore(
        f"{shown(engine)}: the database is at revision {current or 'none'} and this version needs {head()}: "
        f"run `newsletter db upgrade` ({BACKUP})"
    )


def _unknown(revision: str) -> bool:
    try:
        _scripts().get_revision(revision)
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown revision
        return True
    return False


def status(engine: Engine) -> Status:
    with _connected(engine) as conn:
        current = _current(conn)
    pending = [rev.revision for rev in _scripts().iterate_revisions(head(), current)] if current != head() else []
    return Status(current, head(), tuple(reversed(pending)))


def upgrade(engine: Engine) -> Status:
    """Run the migrations (waiting for any other upgrade of the same database first)."""
    with _connected(engine) as conn, _locked(conn):
        _upgrade(conn)
    return status(engine)
