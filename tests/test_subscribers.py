"""Import, re-import, remove and forget, through the CLI and the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter import domain as d
from newsletter.store import tables as s
from newsletter.cli import cli
from newsletter.audience.spreadsheet import RowProblem, SheetFile, parse_csv

from conftest import ROOT, SECRET
from store_helpers import set_status


def run(project, *args: str):
    return CliRunner().invoke(cli, [*args, "--config", str(project.config_path)], env=project.env, catch_exceptions=False)


def test_sample_csv_imports_every_good_row_and_reports_each_bad_one(project):
    result = run(project, "subscribers", "import", str(ROOT / "data" / "sample-subscribers.csv"), "--list", "participants")
    assert result.exit_code == 1, result.output  # some rows were left out
    bad = [line for line in result.output.splitlines() if "sample-subscribers.csv:" in line]
    assert [line.split(":", 2)[1] for line in bad] == ["16", "17", "18", "19", "21"]
    assert "'not-an-address': An email address must have an @-sign." in bad[0]
    assert "already on line 2" in bad[1]
    assert "language 'pl' is not one of ar, en" in bad[3]
    assert "participants: 17 added" in result.output and "5 bad rows" in result.output
    emails = [sub.email for sub in project.store().subscribers.all("participants")]
    assert len(emails) == 17
    assert "Sami.Khoury@example.org" in emails  # domain lower-cased, local part kept
    amina = project.store().subscribers.by_email("amina.yousef@example.net")
    assert amina.language == "ar"  # empty language → the primary one
    assert "1 new person without a language got ar" in result.output


def test_addresses_are_unique_case_insensitively(project):
    csv = project.root / "a.csv"
    csv.write_text("email,name,language\nNour@Example.org,Nour,ar\n", encoding="utf-8")
    assert run(project, "subscribers", "import", str(csv)).exit_code == 0
    csv.write_text("email,name,language\nnour@example.ORG,Nour H,en\n", encoding="utf-8")
    result = run(project, "subscribers", "import", str(csv))
    assert "0 added, 1 updated" in result.output
    subs = list(project.store().subscribers.all())
    assert len(subs) == 1 and subs[0].language == "en" and subs[0].name == "Nour H"


def test_reimport_never_resubscribes(project):
    csv = project.write_subscribers(4)
    assert run(project, "subscribers", "import", str(csv)).exit_code == 0
    store = project.store()
    people = list(store.subscribers.all())
    for person, status in zip(people[:3], (d.UNSUBSCRIBED, d.BOUNCED, d.COMPLAINED)):
        set_status(store, person.id, status)
    result = run(project, "subscribers", "import", str(csv))
    assert result.exit_code == 0
    assert "0 added, 1 updated, 3 kept as they were" in result.output
    assert [p.status for p in store.subscribers.all()] == [d.UNSUBSCRIBED, d.BOUNCED, d.COMPLAINED, d.ACTIVE]
    # nor does add
    result = run(project, "subscribers", "add", people[0].email)
    assert "not active: kept as it is" in result.output
    assert store.subscribers.by_email(people[0].email).status == d.UNSUBSCRIBED


def test_forget_erases_the_person_and_blocks_any_later_import(project):
    csv = project.write_subscribers(3)
    run(project, "subscribers", "import", str(csv), "--list", "a")
    store = project.store()
    victim = list(store.subscribers.all())[1]
    result = run(project, "subscribers", "forget", victim.email.upper())
    assert result.exit_code == 0 and "forgot" in result.output
    assert store.subscribers.by_email(victim.email) is None
    # nothing left in the database holds the address or the name
    with store.db.engine.connect() as conn:
        for table in s.metadata.sorted_tables:
            for row in conn.execute(table.select()):
                text = " ".join(str(v) for v in row)
                assert victim.email.lower() not in text.lower() and victim.name not in text
    result = run(project, "subscribers", "import", str(csv), "--list", "b")
    assert "0 added" in result.output and "1 not added back (suppressed)" in result.output
    assert store.subscribers.by_email(victim.email) is None
    result = run(project, "subscribers", "add", victim.email)
    assert "suppressed" in result.output
    assert store.subscribers.by_email(victim.email) is None


def test_forget_needs_the_secret_from_the_environment(project):
    result = CliRunner().invoke(
        cli, ["subscribers", "forget", "x@example.org", "--config", str(project.config_path)],
        env={"NEWSLETTER_SECRET_KEY": ""},
    )
    assert result.exit_code == 2
    assert "NEWSLETTER_SECRET_KEY: not set" in result.output


def test_remove_takes_off_one_list_and_keeps_the_person(project):
    csv = project.write_subscribers(2)
    run(project, "subscribers", "import", str(csv), "--list", "a")
    run(project, "subscribers", "import", str(csv), "--list", "b")
    email = "person000000@example.net"
    assert run(project, "subscribers", "remove", email, "--list", "a").exit_code == 0
    store = project.store()
    assert [x.email for x in store.subscribers.all("a")] == ["person000001@example.org"]
    assert len(list(store.subscribers.all("b"))) == 2
    assert run(project, "subscribers", "remove", "nobody@example.org").exit_code == 1


def test_export_and_list(project):
    csv = project.write_subscribers(3)
    run(project, "subscribers", "import", str(csv))
    out = project.root / "export.csv"
    assert run(project, "subscribers", "export", "--out", str(out)).exit_code == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "email,name,language,status,consent_at,consent_version,consent_source" and len(lines) == 4
    assert lines[1] == "person000000@example.net,مشارك 0,ar,active,,,import subscribers.csv"
    listed = run(project, "subscribers", "list", "--status", "active")
    assert listed.output.count("@example.") == 3


def test_csv_file_level_problems_exit_2_and_import_nothing(project):
    bad = project.root / "bad.csv"
    bad.write_text("mail,name\nx@example.org,X\n", encoding="utf-8")
    result = run(project, "subscribers", "import", str(bad))
    assert result.exit_code == 2
    assert "no email column in the header" in result.output
    assert list(project.store().subscribers.all()) == []


def test_an_import_stopped_half_way_leaves_nothing_and_the_next_finds_repeats_across_chunks(project):
    rows = [f"p{n}@example.org,P {n},en" for n in range(2500)] + ["P1800@EXAMPLE.org,again,en"]
    path = project.root / "many.csv"
    path.write_text("email,name,language\n" + "\n".join(rows) + "\n", encoding="utf-8")
    sheet = SheetFile(path, ("ar", "en"))
    store = project.store()

    def interrupted(problem):
        raise KeyboardInterrupt  # Ctrl-C at the last row: two chunks of a thousand were written

    with pytest.raises(KeyboardInterrupt):
        store.subscribers.import_rows(lambda seen: sheet.people(seen, interrupted), "main", SECRET.encode())
    assert list(store.subscribers.all()) == []
    problems = []
    result = store.subscribers.import_rows(lambda seen: sheet.people(seen, problems.append), "main", SECRET.encode())
    assert result.added == 2500 and len(list(store.subscribers.all("main"))) == 2500
    assert problems == [RowProblem(2502, "'P1800@example.org' already on line 1802")]
    store.close()


def test_parse_csv_tolerates_bom_blank_lines_and_quotes():
    good, bad = parse_csv('email,name,language\n\n"a@example.org","Doe, Jane",en\nb@example.org,,\n', ("ar", "en"))
    assert [(g.email, g.name, g.language, g.line) for g in good] == [
        ("a@example.org", "Doe, Jane", "en", 3), ("b@example.org", "", None, 4)  # none: theirs, or the primary one
    ]
    assert bad == []


@pytest.fixture
def project(project_any_store):
    """These store and ledger tests run on SQLite and on PostgreSQL."""
    return project_any_store
