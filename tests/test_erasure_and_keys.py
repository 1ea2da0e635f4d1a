"""Erasure that erases, files only their owner reads, and the key that opens the store.

`forget` after a real send: nothing of the person is left in the SQLite file, its write-ahead
log or the outbox (a byte search for every spelling of the address and for the name), nor, after
a sign-up whose confirmation the SMTP server refused quoting them, in `serve`'s log; and no
import or `add` brings them back. The database file, its WAL and SHM are 0600 and the outbox
0700 under a usual umask (022), whether a command or `serve` made them. A store opened with another key is refused by every command
that uses the key; the old key in NEWSLETTER_OLD_SECRET_KEYS still opens it, `keys rotate`
moves it to the new one, and links already sent keep working throughout.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from conftest import SECRET, Project
from newsletter import domain as d
from newsletter.cli import cli as cli_group
from newsletter.keys import TokenSigner
from serve_process import serving, signup_config, signup_fields, wait_until
from smtp_sink import smtp_config, smtp_sink  # noqa: F401 - fixture

ASCII_PERSON = ("nour.haddad@example.org", "نور حداد")
IDN_PERSON = ("idn.person@exämple.org", "Idna Person")
IDN_STORED = "idn.person@xn--exmple-cua.org"


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def cli(project: Project, *args: str, env: dict[str, str] | None = None) -> Ran:
    """The command in this process (as fast as a call; the sends are real SMTP all the same)."""
    environ = env or project.env
    keep = {name: environ.get(name, "") for name in ("NEWSLETTER_SECRET_KEY", "NEWSLETTER_OLD_SECRET_KEYS")}
    result = CliRunner().invoke(cli_group, [*args, "--config", str(project.config_path)], env=keep)
    return Ran(result.exit_code, result.stdout, result.stderr)


def spellings(address: str, name: str) -> list[bytes]:
    local, _, domain = address.partition("@")
    forms = {address, address.lower(), address.upper(), name, local}
    if not domain.isascii():
        forms |= {f"{local}@{domain.encode('idna').decode()}", domain, domain.encode("idna").decode()}
    out = set()
    for form in forms:
        out |= {form.encode("utf-8"), form.encode("utf-16-le")}
    return sorted(out)


def test_forget_leaves_nothing_of_the_person_anywhere(tmp_path: Path, secret_env, smtp_sink):
    people = [ASCII_PERSON, IDN_PERSON, *[(f"someone{n}@example.net", f"Someone {n}") for n in range(8)]]
    csv = tmp_path / "people.csv"
    csv.write_text("email,name,language\n" + "".join(f"{a},{n},ar\n" for a, n in people), encoding="utf-8")
    refused = ("nour.haddad@example.org", IDN_STORED)
    sink = smtp_sink(refuse_recipients=refused)
    project = Project(tmp_path / "project", extra_config=smtp_config(sink.port))
    logs = []

    def run(*args: str) -> Ran:
        result = cli(project, *args)
        logs.append(result.stdout + result.stderr)
        return result

    assert run("subscribers", "import", str(csv)).returncode == 0
    # a rehearsal leaves .eml files in the outbox, the real send a 550 naming the address
    assert run("send", "issues/2022-12-year-end", "--provider", "outbox", "--yes").returncode == 0
    sent = run("send", "issues/2022-12-year-end", "--provider", "smtp", "--yes")
    assert sent.returncode == 1 and "2 failed" in sent.stderr, sent.stderr
    store = project.store()
    before = {row[0] for row in store.ledger.deliveries_in(2, d.FAILED)}
    assert len(before) == 2

    logs.clear()  # what was printed before the person asked to be forgotten is the operator's terminal
    for address, _ in (ASCII_PERSON, IDN_PERSON):
        result = run("subscribers", "forget", address)
        assert result.returncode == 0 and "their data is erased" in result.stdout, result.stdout + result.stderr
    assert run("report").returncode == 0

    database = project.root / "newsletter.sqlite3"
    files = [database, Path(f"{database}-wal"), *sorted((project.root / "outbox").rglob("*"))]
    contents = [(path, path.read_bytes()) for path in files if path.is_file()]
    assert len(list((project.root / "outbox").rglob("*.eml"))) == 8  # the two forgotten people's copies are gone
    for address, name in (ASCII_PERSON, IDN_PERSON):
        for needle in spellings(address, name):
            found = [str(path) for path, data in contents if needle in data]
            found += ["the commands' output" for log in logs if needle in log.encode("utf-8")]
            assert not found, f"{needle!r} of {address} still in {found}"
    # the others are all still there, and the deliveries still count, anonymous
    assert store.subscribers.by_email("someone3@example.net") is not None
    assert store.ledger.delivery_counts(2)[d.FAILED] == 2

    # nobody brings them back
    again = run("subscribers", "import", str(csv))
    assert "2 not added back (suppressed)" in again.stdout, again.stdout
    for address, _ in (ASCII_PERSON, IDN_PERSON):
        added = run("subscribers", "add", address.upper())
        assert "is suppressed" in added.stderr, added.stdout + added.stderr
        assert store.subscribers.by_email(address) is None


def test_forget_finds_the_person_however_the_address_is_written(project):
    lines = "email,name,language\nIdn.Person@EXÄMPLE.org,X,en\n"
    (project.root / "one.csv").write_text(lines, encoding="utf-8")
    cli(project, "subscribers", "import", str(project.root / "one.csv"))
    assert project.store().subscribers.by_email("idn.person@xn--exmple-cua.org") is not None
    result = cli(project, "subscribers", "forget", "idn.person@exämple.org")
    assert "forgotten: their data is erased" in result.stdout, result.stdout
    assert project.store().subscribers.by_email("Idn.Person@EXÄMPLE.org") is None


# --- serve's log and the confirmation path; what the files let others read ------------------

REFUSED = ("rana.khalil@example.org", "Rana Khalil")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def test_serve_makes_its_store_0600_and_forget_leaves_nothing_in_its_log(tmp_path: Path, secret_env, smtp_sink):
    """`newsletter serve` under umask 022 makes a new store: the file, its WAL and SHM are 0600.
    A sign-up whose confirmation the SMTP server refuses with a reply quoting the address and the
    name is logged; after `forget`, neither is in serve's log, the database, its WAL or SHM."""
    address, name = REFUSED
    sink = smtp_sink()

    async def refuse(server, session, envelope, rcpt, rcpt_options):  # as servers do: quoting whom
        return f"550 5.1.1 <{rcpt}> ({name}): no such user {address.split('@')[0]} here"

    sink.handle_RCPT = refuse
    project = Project(tmp_path / "project", extra_config=signup_config(sink.port))
    database = project.root / "newsletter.sqlite3"
    assert not database.exists()
    log = tmp_path / "serve.log"
    with umask(0o022), serving(project, log) as (url, _port):
        files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
        assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
        assert httpx.post(f"{url}/subscribe", data=signup_fields(address, name)).status_code == 200
        wait_until(lambda: "could not be sent" in log.read_text(), 15, "the refusal in serve's log")
        forgotten = cli(project, "subscribers", "forget", address)
        assert forgotten.returncode == 0 and "suppressed" in forgotten.stdout, forgotten.stderr  # a sign-up, not yet a person
    logged = log.read_text()
    assert "550" in logged, logged  # the refusal was logged, without the person
    contents = [(path, path.read_bytes()) for path in [log, *files] if path.is_file()]
    for needle in spellings(address, name):
        found = [str(path) for path, data in contents if needle in data]
        found += ["forget's output" for text in (forgotten.stdout, forgotten.stderr) if needle in text.encode()]
        assert not found, f"{needle!r} still in {found}"


def test_a_command_under_umask_022_leaves_the_database_and_the_outbox_to_their_owner(project):
    database, outbox = project.root / "newsletter.sqlite3", project.root / "outbox"
    with umask(0o022):
        outbox.mkdir()  # an outbox folder made before, open to all (0755)
        assert cli(project, "subscribers", "import", str(project.write_subscribers(3))).returncode == 0
        assert mode(database) == 0o600
        # whoever opens it next, SQLite gives its WAL and SHM the database file's mode
        with contextlib.closing(sqlite3.connect(database)) as other:
            assert other.execute("SELECT count(*) FROM subscribers").fetchone() == (3,)
            assert (mode(Path(f"{database}-wal")), mode(Path(f"{database}-shm"))) == (0o600, 0o600)
        sent = cli(project, "send", "issues/2022-12-year-end", "--provider", "outbox", "--yes")
        assert sent.returncode == 0, sent.stderr
    folders = [outbox, *(path for path in outbox.iterdir() if path.is_dir())]
    messages = list(outbox.rglob("*.eml"))
    assert len(folders) == 2 and {mode(folder) for folder in folders} == {0o700}
    assert len(messages) == 3 and {mode(message) for message in messages} == {0o600}


def test_a_database_others_could_read_is_narrowed_and_the_command_says_so(project):
    database = project.root / "newsletter.sqlite3"
    assert cli(project, "subscribers", "add", "a@example.org").returncode == 0
    database.chmod(0o644)  # as an earlier version left it
    listed = subprocess.run(
        [sys.executable, "-m", "newsletter", "subscribers", "list", "--config", str(project.config_path)],
        env=project.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0 and "a@example.org" in listed.stdout, listed.stderr
    assert mode(database) == 0o600
    assert f"store.url: {database} could be read by other users (mode 0644); now 0600" in listed.stderr


# --- keys -----------------------------------------------------------------------------------------

OTHER = "another-key-entirely-0123456789-abcdefghijklmnop"


def test_another_key_is_refused_the_old_one_still_opens_and_rotation_retires_it(tmp_path: Path, secret_env):
    from newsletter.config import load_config
    from newsletter.keys import WrongKey
    from newsletter.web.public import create_app

    project = Project(tmp_path / "project", extra_config='[send]\nprovider = "outbox"\n')
    assert cli(project, "subscribers", "import", str(project.write_subscribers(5))).returncode == 0
    assert cli(project, "send", "issues/2022-12-year-end", "--yes").returncode == 0
    assert cli(project, "subscribers", "forget", "person000001@example.org").returncode == 0
    store = project.store()
    reader = store.subscribers.by_email("person000002@example.org")
    link = f"/u/{TokenSigner(SECRET.encode()).make(reader.token_key, 1)}"  # a link already in an inbox

    wrong = {**project.env, "NEWSLETTER_SECRET_KEY": OTHER}
    commands = [
        ("subscribers", "import", str(project.write_subscribers(5))),
        ("subscribers", "add", "new@example.org"),
        ("subscribers", "forget", "person000003@example.org"),
        ("send", "issues/2022-12-year-end", "--yes"),
        ("send", "issues/2022-12-year-end", "--dry-run"),
        ("keys", "rotate"),
    ]
    for command in commands:
        result = cli(project, *command, env=wrong)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "not the key this store was made with" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(WrongKey, match="not the key this store was made with"):
        store.keys.data_key({"NEWSLETTER_SECRET_KEY": OTHER})

    # the new key with the old one beside it: everything works, the forgotten stay forgotten
    both = {**wrong, "NEWSLETTER_OLD_SECRET_KEYS": SECRET}
    readd = cli(project, "subscribers", "add", "person000001@example.org", env=both)
    assert readd.returncode == 0 and "is suppressed" in readd.stderr, readd.stderr
    data_key = store.keys.data_key(both)
    page = TestClient(create_app(load_config(project.config_path), store, data_key)).get(link)
    assert page.status_code == 200 and "•••@example.org" in page.text

    rotated = cli(project, "keys", "rotate", env=both)
    assert rotated.returncode == 0 and "now locked with NEWSLETTER_SECRET_KEY" in rotated.stdout, rotated.stderr
    assert cli(project, "keys", "rotate", env=wrong).stdout.startswith("the store is already locked")
    # the old key alone opens nothing any more; the new one alone does everything
    assert cli(project, "subscribers", "add", "x@example.org", env=project.env).returncode == 2
    readd = cli(project, "subscribers", "add", "person000001@example.org", env=wrong)
    assert readd.returncode == 0 and "is suppressed" in readd.stderr, readd.stderr
    page = TestClient(create_app(load_config(project.config_path), store, store.keys.data_key(wrong))).get(link)
    assert page.status_code == 200


@pytest.mark.parametrize(
    ("value", "problem"),
    [("", "not set"), ("short-key", "too short"), ("a" * 64, "one character repeated"), ("é" * 15, "too short")],
)
def test_weak_keys_are_refused(project, value, problem):
    result = cli(project, "subscribers", "import", str(project.write_subscribers(2)),
                 env={**project.env, "NEWSLETTER_SECRET_KEY": value})  # fmt: skip
    assert result.returncode == 2 and f"NEWSLETTER_SECRET_KEY: {problem}" in result.stderr, result.stderr


def test_a_database_error_quotes_no_value_of_the_row(tmp_path):
    """A failed statement's text ends up in logs and on terminals: it names the statement, never
    the values it carried (an address, a name)."""
    from sqlalchemy import text

    from newsletter.store.database import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE people (email TEXT UNIQUE)"))
        conn.execute(text("INSERT INTO people VALUES (:email)"), {"email": "jana.haddad@example.org"})
    with pytest.raises(Exception) as failed, engine.begin() as conn:
        conn.execute(text("INSERT INTO people VALUES (:email)"), {"email": "jana.haddad@example.org"})
    assert "UNIQUE" in str(failed.value) and "jana" not in str(failed.value)
    engine.dispose()
