"""The database's schema: its revision, the creation of a new database, and upgrades.

Commands never upgrade a database on their own: an older schema stops them with a message
naming `newsletter db upgrade` (after a backup). A database with no tables at all (a new
SQLite file, an empty PostgreSQL database) is created on first use. On PostgreSQL, creation
and upgrades hold an advisory lock, so that several processes starting at once wait for one
another instead of racing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from newsletter.errors import NewsletterError

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


def _config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head() or ""


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


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
        ScriptDirectory.from_config(_config()).get_revision(revision)
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown revision
        return True
    return False


def status(engine: Engine) -> Status:
    with _connected(engine) as conn:
        current = _current(conn)
    script = ScriptDirectory.from_config(_config())
    pending = [rev.revision for rev in script.iterate_revisions(head(), current)] if current != head() else []
    return Status(current, head(), tuple(reversed(pending)))


def upgrade(engine: Engine) -> Status:
    """Run the migrations (waiting for any other upgrade of the same database first)."""
    with _connected(engine) as conn, _locked(conn):
        _upgrade(conn)
    return status(engine)
