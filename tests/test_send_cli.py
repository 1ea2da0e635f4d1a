"""`newsletter send` through the outbox: dry run, confirmation, test copies, summary."""

from __future__ import annotations

import email
import email.policy

import pytest
from click.testing import CliRunner

from newsletter.cli import cli


def run(project, *args: str, input: str | None = None):
    if args[0] == "send" and "--provider" not in args:
        args = (*args, "--provider", "outbox")  # a rehearsal: these tests read the .eml files
    return CliRunner().invoke(cli, [*args, "--config", str(project.config_path)], env=project.env, input=input)


AS_SENT = (
    "bilingual, as sent:\n"
    "  Subject: تحديث نهاية العام – ديسمبر 2022 | Year-End Update – December 2022\n"
    "  Preheader: مجموعات العمل وزيارة عمّان وإيقاف المنصة | The working groups, the Amman visit, the end of the platform\n"
)


def outbox_files(project):
    return sorted((project.root / "outbox").rglob("*.eml"))


def test_dry_run_counts_and_sends_nothing(project):
    run(project, "subscribers", "import", str(project.write_subscribers(12)))
    result = run(project, "send", str(project.issue), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: 12 messages to 'main'" in result.output and "bilingual  12" in result.output
    assert AS_SENT in result.output  # the subject and preheader the 12 messages carry
    assert outbox_files(project) == []
    assert project.store().campaigns.all() == []


def test_more_than_ten_recipients_needs_confirmation(project):
    run(project, "subscribers", "import", str(project.write_subscribers(11)))
    result = run(project, "send", str(project.issue), input="n\n")
    assert result.exit_code == 1 and "Send '2022-12-year-end' to 11 people" in result.output
    assert AS_SENT in result.output and "Warning" not in result.output
    assert outbox_files(project) == [] and project.store().campaigns.all() == []
    result = run(project, "send", str(project.issue), input="y\n")
    assert result.exit_code == 0, result.output
    assert len(outbox_files(project)) == 11
    assert "sent 11, failed 0, uncertain 0, pending 0" in result.output
    again = run(project, "send", str(project.issue), "--yes")
    assert "already finished" in again.output and len(outbox_files(project)) == 11


def test_the_question_warns_when_the_bilingual_subject_was_shortened(project):
    import shutil

    issue = project.root / "issues" / "shortened"
    shutil.copytree(project.issue, issue)
    toml = issue / "issue.toml"
    lines = toml.read_text(encoding="utf-8").splitlines()
    toml.write_text("\n".join(line for line in lines if not line.startswith("bilingual = ")) + "\n", encoding="utf-8")
    run(project, "subscribers", "import", str(project.write_subscribers(11)))
    result = run(project, "send", str(issue), input="n\n")
    assert result.exit_code == 1, result.output
    assert "  Subject: تحديث نهاية العام… – ديسمبر 2022 | Year-End Update – December 2022\n" in result.output
    assert "  Warning: subject (bilingual) shortened to fit 70 characters: each language's joined make 117; " in result.output
    assert project.store().campaigns.all() == []


def test_ten_or_fewer_go_without_asking(project):
    run(project, "subscribers", "import", str(project.write_subscribers(10)))
    result = run(project, "send", str(project.issue))
    assert result.exit_code == 0, result.output
    assert len(outbox_files(project)) == 10


def test_test_copy_of_each_variant_outside_the_ledger(project):
    result = run(project, "send", str(project.issue), "--test", "Editor@Example.org")
    assert result.exit_code == 0, result.output
    assert len(outbox_files(project)) == 1  # what subscribers get: the bilingual variant
    result = run(project, "send", str(project.issue), "--test", "Editor@Example.org", "--all-variants")
    assert result.exit_code == 0, result.output
    files = outbox_files(project)
    assert len(files) == 4
    subjects = set()
    for path in files:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert msg["To"] == "Editor@example.org"
        assert msg["Subject"].startswith("[TEST] ")
        subjects.add(msg["Content-Language"])
    assert subjects == {"ar", "en", "ar,en"}  # the four copies: bilingual, then each variant
    assert project.store().campaigns.all() == []


def test_unknown_list_and_bad_issue_fail_before_sending(project):
    result = run(project, "send", str(project.issue), "--list", "nope", "--yes")
    assert result.exit_code == 2 and "--list: no list named 'nope'" in result.output
    broken = project.root / "issues" / "broken"
    broken.mkdir()
    (broken / "issue.toml").write_text("date = 2022-12-20\n", encoding="utf-8")
    result = run(project, "send", str(broken), "--yes")
    assert result.exit_code == 2 and "subject.ar: missing" in result.output
    assert outbox_files(project) == []


def test_changed_issue_does_not_resume_with_different_content(project, tmp_path):
    import shutil

    issue = project.root / "issues" / "copy"
    shutil.copytree(project.issue, issue)
    run(project, "subscribers", "import", str(project.write_subscribers(3)))
    store = project.store()
    assert run(project, "send", str(issue)).exit_code == 0
    campaign = store.campaigns.all()[0]
    store.campaigns.set_state(campaign.id, "paused")
    (issue / "closing.en.md").write_text("---\ntitle: In closing\n---\n\nChanged.\n", encoding="utf-8")
    result = run(project, "send", str(issue))
    assert result.exit_code == 2 and "the issue changed since campaign" in result.output


def test_missing_secret_is_reported(project):
    result = CliRunner().invoke(
        cli,
        ["send", str(project.issue), "--provider", "outbox", "--config", str(project.config_path)],
        env={"NEWSLETTER_SECRET_KEY": "short"},
    )
    assert result.exit_code == 2 and "NEWSLETTER_SECRET_KEY: too short" in result.output


@pytest.fixture
def project(project_any_store):
    """These store and ledger tests run on SQLite and on PostgreSQL."""
    return project_any_store
