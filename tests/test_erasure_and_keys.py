"""Erasure that erases, and the key that opens the store.

`forget` after a real send: nothing of the person is left in the SQLite file, its write-ahead
log or the outbox (a byte search for every spelling of the address and for the name), and no
import or `add` brings them back. A store opened with another key is refused by every command
that uses the key; the old key in NEWSLETTER_OLD_SECRET_KEYS still opens it, `keys rotate`
moves it to the new one, and links already sent keep working throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from conftest import SECRET, Project
from newsletter import domain as d
from newsletter.cli import cli as cli_group
from newsletter.keys import TokenSigner
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
