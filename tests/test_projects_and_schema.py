"""`newsletter init` and `new` make a project and an issue that build at once, with `check`
listing what is left to write; commands never upgrade a database on their own, and
`db upgrade` does, one process at a time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic import command
from click.testing import CliRunner

from conftest import SECRET
from newsletter.cli import cli
from newsletter.store import Store
from newsletter.store import database as schema
from newsletter.store.database import make_engine


def newsletter(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "newsletter", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)


def test_init_writes_an_example_letter_that_builds_checks_and_reads(tmp_path: Path):
    made = newsletter("init", "site", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    site = tmp_path / "site"
    assert (site / "newsletter.toml").is_file() and (site / ".gitignore").is_file() and (site / "newsletter.sqlite3").is_file()
    example = site / "issues" / "example"
    assert sorted(p.name for p in example.iterdir() if p.name.endswith(".ar.md")) == [
        "01-workshop.ar.md", "02-next-meeting.ar.md", "closing.ar.md", "opening.ar.md"]
    toml = (example / "issue.toml").read_text(encoding="utf-8")
    assert toml.startswith("# An example letter") and "\nbilingual = " in toml
    assert "[[" not in "".join(p.read_text(encoding="utf-8") for p in example.iterdir())
    built = newsletter("build", "issues/example", cwd=site)
    assert built.returncode == 0, built.stderr
    letter = (site / "dist" / "example" / "bilingual.txt").read_text(encoding="utf-8")
    assert "ورشة توثيق الانتهاكات" in letter and "The documentation workshop" in letter
    assert "الأصدقاء والصديقات الأعزاء" in letter and "Dear friends," in letter  # {{ name }}'s fallbacks
    checked = newsletter("check", "issues/example", "--no-spamassassin", cwd=site)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines()[-1].startswith("0 failed, 0 warnings"), checked.stdout


def test_the_example_names_and_addresses_are_refused_by_a_real_send(tmp_path: Path):
    newsletter("init", "site", cwd=tmp_path)
    site = tmp_path / "site"
    env = {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET}
    refused = newsletter("send", "issues/example", "--test", "me@example.net", "--provider", "smtp", cwd=site, env=env)
    assert refused.returncode == 2, refused.stderr
    errors = [line for line in refused.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 4 and all("newsletter.toml:" in line for line in errors), refused.stderr
    assert any("email.from: 'updates@news.example.org' is a placeholder address" in line for line in errors)
    assert any("organisation.en: 'Example Organisation' is the example's name" in line for line in errors)
    rehearsal = newsletter("send", "issues/example", "--test", "me@example.net", "--provider", "outbox", cwd=site, env=env)
    assert rehearsal.returncode == 0, rehearsal.stderr
    assert len(list((site / "outbox").rglob("*.eml"))) == 1


def test_new_writes_an_issue_that_builds_and_check_lists_the_placeholders(tmp_path: Path):
    newsletter("init", "site", cwd=tmp_path)
    site = tmp_path / "site"
    assert newsletter("new", "2023-03-spring", "--sections", "3", cwd=site).returncode == 0
    issue = site / "issues" / "2023-03-spring"
    assert sorted(p.name for p in issue.iterdir() if p.name.endswith(".en.md")) == [
        "01-section-1.en.md", "02-section-2.en.md", "03-section-3.en.md", "closing.en.md", "opening.en.md",
    ]
    built = newsletter("build", "issues/2023-03-spring", cwd=site)
    assert built.returncode == 0, built.stderr
    checked = newsletter("check", "issues/2023-03-spring", "--no-spamassassin", cwd=site)
    assert checked.returncode == 1
    left = [line for line in checked.stdout.splitlines() if line.startswith("ERROR   placeholders")]
    # subject ×2 and the bilingual one, preheader ×2, and opening, 3 titles, 3 texts, closing per language
    assert len(left) == 3 + 2 + 2 * 8, checked.stdout

    # replace every placeholder: check has nothing left to say about them
    for path in issue.iterdir():
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("[[", "").replace("]]", ""), encoding="utf-8")
    checked = newsletter("check", "issues/2023-03-spring", "--no-spamassassin", cwd=site)
    assert "ERROR   placeholders" not in checked.stdout and "OK      placeholders" in checked.stdout, checked.stdout


def test_a_mistyped_key_of_issue_toml_names_the_nearest_one(project):
    issue = project.root / "issues" / "typo"
    shutil.copytree(project.issue, issue)
    toml = issue / "issue.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("[preheader]", "[preheder]"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", str(issue), "--config", str(project.config_path)], env=project.env)
    assert result.exit_code == 2 and "issue.toml:" in result.output
    assert "preheder: unknown key; did you mean 'preheader'?" in result.output, result.output


def test_init_refuses_a_folder_with_files(tmp_path: Path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "notes.txt").write_text("mine")
    result = newsletter("init", "site", cwd=tmp_path)
    assert result.returncode == 2 and "not empty" in result.stderr
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == ["notes.txt"]


def test_new_refuses_a_bad_name_and_an_existing_issue(tmp_path: Path):
    newsletter("init", "site", cwd=tmp_path)
    site = tmp_path / "site"
    bad = newsletter("new", "Spring Issue!", cwd=site)
    assert bad.returncode == 2 and "SLUG: 'Spring Issue!'" in bad.stderr
    again = newsletter("new", "example", cwd=site)
    assert again.returncode == 2 and "already exists" in again.stderr


# --- schema ---------------------------------------------------------------------------------------


def older_database(url: str) -> None:
    """A database as the previous version left it: the first migrations only."""
    engine = make_engine(url)
    cfg = schema._config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
    engine.dispose()


def test_commands_refuse_an_older_schema_and_db_upgrade_brings_it_up(project):
    database = project.root / "newsletter.sqlite3"
    older_database(f"sqlite:///{database}")
    runner = CliRunner()
    args = ["--config", str(project.config_path)]
    env = {"NEWSLETTER_SECRET_KEY": SECRET}
    refused = runner.invoke(cli, ["subscribers", "list", *args], env=env)
    assert refused.exit_code == 2 and "newsletter db upgrade" in refused.output and "revision 0004" in refused.output
    assert "Traceback" not in refused.output
    status = runner.invoke(cli, ["db", "status", *args])
    assert status.exit_code == 0 and "revision 0004" in status.output and "would run: 0005" in status.output, status.output
    upgraded = runner.invoke(cli, ["db", "upgrade", *args])
    assert upgraded.exit_code == 0 and f"upgraded from 0004 to {schema.head()}" in upgraded.output, upgraded.output
    assert runner.invoke(cli, ["subscribers", "list", *args], env=env).exit_code == 0
    assert "already at" in runner.invoke(cli, ["db", "upgrade", *args]).output


def test_a_new_database_is_created_on_first_use(tmp_path: Path):
    store = Store.open(f"sqlite:///{tmp_path / 'new.sqlite3'}")
    assert schema.status(store.db.engine).up_to_date


def test_an_unreachable_or_misplaced_store_is_one_line(project):
    runner = CliRunner()
    for url, expected in (
        ("sqlite:////nonexistent-folder/x.sqlite3", "does not exist"),
        (f"sqlite:///{project.root}", "is a folder"),
        ("postgresql://nobody@127.0.0.1:1/none", "cannot reach the database"),
    ):
        result = runner.invoke(cli, ["subscribers", "list", "--config", str(project.config_path)],
                               env={"NEWSLETTER_STORE_URL": url})
        assert result.exit_code == 2 and expected in result.output and "Traceback" not in result.output, result.output


@pytest.mark.postgres
def test_two_upgrades_at_once_on_postgresql_both_end_well(postgres):
    url = postgres.create_database("schema_race")
    older_database(url)
    engine = make_engine(url)
    results: list[object] = []

    def upgrade() -> None:
        try:
            results.append(schema.upgrade(make_engine(url)).current)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            results.append(exc)

    threads = [threading.Thread(target=upgrade) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == [schema.head(), schema.head()], results
    assert schema.status(engine).up_to_date
    Store.open(url).close()


def test_the_migrations_make_exactly_the_tables_the_code_declares(store_url):
    """store/tables.py and the Alembic migrations say the same thing twice: they must agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from newsletter.store import Store
    from newsletter.store import tables as t

    store = Store.open(store_url)
    try:
        with store.db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), t.metadata)
    finally:
        store.close()
    assert diff == []
