"""Who gets a campaign and what stops it before anything is sent: values that cannot go into a
header, the pre-send checks, placeholder domains, rehearsals, several lists, newcomers, the
languages people already have. Sends go to an aiosmtpd sink or the outbox, through the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import DOMAIN, Project
from newsletter import domain as d
from newsletter.cli import cli
from smtp_sink import smtp_config, smtp_sink  # noqa: F401 - fixture


def run(project: Project, *args: str, input: str | None = None):
    return CliRunner().invoke(cli, [*args, "--config", str(project.config_path)], env=project.env, input=input)


def people(project: Project, start: int, count: int, name: str) -> list[str]:
    """Write a CSV of people number start..start+count-1 and return their addresses."""
    lines = ["email,name,language"]
    addresses = []
    for n in range(start, start + count):
        addresses.append(f"reader{n:04d}@example.org")
        lines.append(f"{addresses[-1]},Reader {n},{'ar' if n % 2 else 'en'}")
    path = project.root / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return addresses


def copy_issue(project: Project, slug: str) -> Path:
    target = project.root / "issues" / slug
    shutil.copytree(project.issue, target)
    return target


# --- values that cannot go into a header ------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "value", "key"),
    [
        ("subject", "Hello\\u0000there", "subject.en"),
        ("subject", "=?utf-8?q?Hello=0D=0ABcc:_evil@attacker.example?=", "subject.en"),
        ("organisation", "Civil Society=?utf-8?q?=0D=0ABcc:_x@attacker.example?=", "organisation.en"),
        ("organisation", "Civil\\u0000Society", "organisation.en"),
    ],
)
def test_a_header_that_cannot_be_written_is_bad_input_and_no_campaign_exists(tmp_path, secret_env, where, value, key):
    project = Project(tmp_path / "project", extra_config='[send]\nprovider = "outbox"\n')
    issue = copy_issue(project, "hostile")
    run(project, "subscribers", "import", str(project.write_subscribers(3)))
    if where == "subject":
        toml = issue / "issue.toml"
        text = toml.read_text(encoding="utf-8")
        start = text.index("[subject]")
        line_start = text.index("en = ", start)
        line_end = text.index("\n", line_start)
        toml.write_text(text[:line_start] + f'en = "{value}"' + text[line_end:], encoding="utf-8")
        expected_file = "issue.toml"
    else:
        text = project.config_path.read_text(encoding="utf-8")
        project.config_path.write_text(text.replace('en = "Civil Society Support Room"', f'en = "{value}"'), encoding="utf-8")
        expected_file = "newsletter.toml"
    result = run(project, "send", str(issue), "--yes")
    assert result.exit_code == 2, result.output
    assert expected_file in result.output and f"{key}: " in result.output, result.output
    assert "Traceback" not in result.output
    from newsletter.store import Store

    assert Store.open(f"sqlite:///{project.root / 'newsletter.sqlite3'}").campaigns.all() == []
    assert not (project.root / "outbox").exists()
    built = run(project, "build", str(issue), "--out", str(tmp_path / "out"))
    assert built.exit_code == 2 and f"{key}: " in built.output, built.output


# --- rehearsal, then the real send -------------------------------------------------------------


def test_a_rehearsal_never_burns_the_real_send(tmp_path, secret_env, smtp_sink):
    sink = smtp_sink()
    project = Project(tmp_path / "project", extra_config=smtp_config(sink.port))
    everyone = people(project, 0, 25, "people.csv")
    assert run(project, "subscribers", "import", str(project.root / "people.csv")).exit_code == 0

    rehearsal = run(project, "send", str(project.issue), "--provider", "outbox", "--yes")
    assert rehearsal.exit_code == 0, rehearsal.output
    assert "(a rehearsal)" in rehearsal.output
    assert len(list((project.root / "outbox").rglob("*.eml"))) == 25
    again = run(project, "send", str(project.issue), "--provider", "outbox", "--yes")
    assert "already finished" in again.output and len(list((project.root / "outbox").rglob("*.eml"))) == 25

    real = run(project, "send", str(project.issue), "--provider", "smtp", "--yes")
    assert real.exit_code == 0, real.output
    got = sink.per_recipient()
    assert sorted(got) == everyone and set(got.values()) == {1}

    report = json.loads(run(project, "report", "--format", "json").output)
    kinds = {(row["campaign_id"], row["provider"]) for row in report}
    assert kinds == {(1, "outbox (rehearsal)"), (2, "smtp")}
    assert all(row["lists"] == ["main"] and row["state"] == d.CAMPAIGN_DONE and row["started"] for row in report)
    table = run(project, "campaigns").output
    assert "outbox (rehearsal)" in table and "smtp" in table


def test_without_a_provider_send_refuses_and_says_how_to_choose(project):
    run(project, "subscribers", "import", str(project.write_subscribers(3)))
    result = run(project, "send", str(project.issue), "--yes")
    assert result.exit_code == 2 and "--provider outbox rehearses" in result.output, result.output
    assert project.store().campaigns.all() == []


# --- several lists, newcomers, never twice ----------------------------------------------------


def test_lists_are_joined_and_nobody_gets_an_issue_twice(tmp_path, secret_env, smtp_sink):
    sink = smtp_sink()
    project = Project(tmp_path / "project", extra_config=smtp_config(sink.port))
    a = people(project, 0, 50, "a.csv")  # 0..49
    b = people(project, 20, 50, "b.csv")  # 20..69: 30 shared with a
    c = people(project, 60, 20, "c.csv")  # 60..79: overlaps b
    for name, listed in (("a", "a.csv"), ("b", "b.csv"), ("c", "c.csv")):
        assert run(project, "subscribers", "import", str(project.root / listed), "--list", name).exit_code == 0

    first = run(project, "send", str(project.issue), "--provider", "smtp", "--list", "a", "--list", "b", "--yes")
    assert first.exit_code == 0, first.output
    got = sink.per_recipient()
    assert sorted(got) == sorted(set(a) | set(b)) and set(got.values()) == {1}  # 70 people, one each

    # another campaign of the same issue to list c: those who had it are left out
    second = run(project, "send", str(project.issue), "--provider", "smtp", "--list", "c", "--yes")
    assert second.exit_code == 0, second.output
    assert "10 already had this issue" in second.output, second.output
    got = sink.per_recipient()
    assert sorted(got) == sorted(set(a) | set(b) | set(c)) and set(got.values()) == {1}

    # seven people join list a after its campaign: the dry run counts them, the rerun sends them
    newcomers = people(project, 100, 7, "new.csv")
    assert run(project, "subscribers", "import", str(project.root / "new.csv"), "--list", "a").exit_code == 0
    dry = run(project, "send", str(project.issue), "--provider", "smtp", "--list", "a", "--list", "b", "--dry-run")
    assert dry.exit_code == 0 and "dry run: 7 messages" in dry.output and "campaign 1" in dry.output, dry.output
    rerun = run(project, "send", str(project.issue), "--provider", "smtp", "--list", "b", "--list", "a", "--yes")
    assert rerun.exit_code == 0 and "extended to 7 people" in rerun.output, rerun.output
    got = sink.per_recipient()
    assert set(newcomers) <= set(got) and set(got.values()) == {1} and len(got) == 87

    # --again: a new campaign to everyone on c, who had it already
    again = run(project, "send", str(project.issue), "--provider", "smtp", "--list", "c", "--again", "--yes")
    assert again.exit_code == 0, again.output
    assert all(sink.per_recipient()[address] == 2 for address in c)


def test_newcomers_are_named_in_the_confirmation(project):
    run(project, "subscribers", "import", str(project.write_subscribers(3)))
    assert run(project, "send", str(project.issue), "--provider", "outbox", "--yes").exit_code == 0
    run(project, "subscribers", "import", str(project.write_subscribers(20)))  # 17 more join
    result = run(project, "send", str(project.issue), "--provider", "outbox", input="n\n")
    assert result.exit_code == 1, result.output
    assert "17 people joined 'main' since" in result.output and "Subject: " in result.output, result.output
    assert "From: updates@" in result.output


# --- checks before sending ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("Write [to us](mailto:).", "mailto link without an address"),
        ("See [the report](report.html).", "relative link"),
        ("This is <b>bold</b>.", "raw HTML '<b>'"),
        ("Click [here](javascript:alert(1)).", "javascript: links are not allowed"),
    ],
)
def test_each_check_error_blocks_the_send_and_skip_checks_sends(tmp_path, secret_env, markdown, expected):
    project = Project(tmp_path / "project", extra_config='[send]\nprovider = "outbox"\n')
    issue = copy_issue(project, "checked")
    section = next(issue.glob("01-*.en.md"))
    section.write_text(section.read_text(encoding="utf-8") + f"\n\n{markdown}\n", encoding="utf-8")
    run(project, "subscribers", "import", str(project.write_subscribers(3)))
    blocked = run(project, "send", str(issue), "--yes")
    assert blocked.exit_code == 2 and expected in blocked.output and "--skip-checks" in blocked.output, blocked.output
    assert project.store().campaigns.all() == []
    sent = run(project, "send", str(issue), "--yes", "--skip-checks")
    assert sent.exit_code == 0, sent.output
    assert len(list((project.root / "outbox").rglob("*.eml"))) == 3


def test_check_reports_raw_html(tmp_path, secret_env, in_root):
    project = Project(tmp_path / "project")
    issue = copy_issue(project, "raw")
    section = next(issue.glob("01-*.ar.md"))
    section.write_text(section.read_text(encoding="utf-8") + "\n\nنص <i>مائل</i>\n", encoding="utf-8")
    result = run(project, "check", str(issue), "--no-spamassassin")
    assert result.exit_code == 1 and "ERROR   html [ar]" in result.output and "'<i>'" in result.output


@pytest.mark.parametrize("provider", ["smtp", "ses"])
@pytest.mark.parametrize("placeholder", ["https://news.example.org", "https://localhost"])
def test_a_placeholder_domain_blocks_a_real_send(tmp_path, secret_env, provider, placeholder):
    project = Project(tmp_path / "project")
    text = project.config_path.read_text(encoding="utf-8")
    project.config_path.write_text(text.replace(f"https://{DOMAIN}", placeholder), encoding="utf-8")
    run(project, "subscribers", "import", str(project.write_subscribers(3)))
    result = run(project, "send", str(project.issue), "--provider", provider, "--yes")
    assert result.exit_code == 2 and "base_url: " in result.output and placeholder in result.output, result.output
    assert project.store().campaigns.all() == []
    rehearsal = run(project, "send", str(project.issue), "--provider", "outbox", "--yes")
    assert rehearsal.exit_code == 0, rehearsal.output


def test_a_placeholder_sender_blocks_a_real_send(tmp_path, secret_env):
    project = Project(tmp_path / "project")
    text = project.config_path.read_text(encoding="utf-8")
    project.config_path.write_text(text.replace(f"updates@{DOMAIN}", "updates@example.com"), encoding="utf-8")
    run(project, "subscribers", "import", str(project.write_subscribers(3)))
    result = run(project, "send", str(project.issue), "--provider", "smtp", "--yes")
    assert result.exit_code == 2 and "email.from: 'updates@example.com'" in result.output, result.output


def test_a_placeholder_bounce_address_blocks_a_real_send(tmp_path, secret_env):
    project = Project(tmp_path / "project", extra_config='[bounces]\naddress = "bounces@news.example.org"\n')
    run(project, "subscribers", "import", str(project.write_subscribers(3)))
    result = run(project, "send", str(project.issue), "--provider", "smtp", "--yes")
    assert result.exit_code == 2 and "bounces.address: 'bounces@news.example.org'" in result.output, result.output
    assert project.store().campaigns.all() == []


# --- stored data is never overwritten by absence ------------------------------------------------


def test_import_without_a_language_column_and_add_to_another_list_keep_languages(project):
    lines = ["email,name,language"] + [f"p{n}@example.org,P {n},{'en' if n % 2 else 'ar'}" for n in range(10)]
    (project.root / "first.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert run(project, "subscribers", "import", str(project.root / "first.csv")).exit_code == 0
    before = {s.email: s.language for s in project.store().subscribers.all()}
    assert set(before.values()) == {"ar", "en"}

    bare = ["email"] + [f"p{n}@example.org" for n in range(10)] + ["new1@example.org", "new2@example.org"]
    (project.root / "bare.csv").write_text("\n".join(bare) + "\n", encoding="utf-8")
    result = run(project, "subscribers", "import", str(project.root / "bare.csv"), "--list", "second")
    assert result.exit_code == 0, result.output
    assert "2 new people without a language got ar" in result.output
    for address in ("p1@example.org", "p3@example.org"):
        assert run(project, "subscribers", "add", address, "--list", "third").exit_code == 0
    after = {s.email: s.language for s in project.store().subscribers.all()}
    assert {a: after[a] for a in before} == before
    assert after["new1@example.org"] == after["new2@example.org"] == "ar"
    names = {s.email: s.name for s in project.store().subscribers.all()}
    assert names["p1@example.org"] == "P 1"


def test_import_exit_status_says_whether_every_row_was_taken(project):
    good = project.write_subscribers(3)
    assert run(project, "subscribers", "import", str(good)).exit_code == 0
    (project.root / "some-bad.csv").write_text("email\nok@example.org\nnot-an-address\n", encoding="utf-8")
    some = run(project, "subscribers", "import", str(project.root / "some-bad.csv"))
    assert some.exit_code == 1 and "1 bad row" in some.output
    (project.root / "unusable.csv").write_text("name\nNour\n", encoding="utf-8")
    assert run(project, "subscribers", "import", str(project.root / "unusable.csv")).exit_code == 2


# --- test copies and campaign commands -----------------------------------------------------------


def test_test_copies_go_to_every_address_as_subscribers_get_them(project):
    result = run(project, "send", str(project.issue), "--provider", "outbox", "--test", "a@example.org,b@example.org",
                 "--test", "c@example.org")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.count("sent the bilingual variant") == 3 and "sent the ar variant" not in result.output
    every = run(project, "send", str(project.issue), "--provider", "outbox", "--test", "a@example.org", "--all-variants")
    assert every.output.count("sent the ") == 3
    assert project.store().campaigns.all() == []


def test_cancel_then_send_again_reaches_those_who_did_not_get_it(project):
    run(project, "subscribers", "import", str(project.write_subscribers(12)))
    store = project.store()
    assert run(project, "send", str(project.issue), "--provider", "outbox", "--yes").exit_code == 0
    (campaign,) = store.campaigns.all()
    # as if it had stopped half way: six pending again
    with store.db.engine.begin() as conn:
        from newsletter.store import tables as s

        ids = [row[0] for row in conn.execute(s.deliveries.select().with_only_columns(s.deliveries.c.id).limit(6))]
        conn.execute(s.deliveries.update().where(s.deliveries.c.id.in_(ids)).values(state=d.PENDING))
    store.campaigns.set_state(campaign.id, d.CAMPAIGN_PAUSED, "test")
    cancelled = run(project, "campaign", "cancel", str(campaign.id))
    assert cancelled.exit_code == 0 and "6 pending deliveries will not be sent" in cancelled.output
    assert store.campaigns.get(campaign.id).state == d.CAMPAIGN_CANCELLED
    fresh = run(project, "send", str(project.issue), "--provider", "outbox", "--yes")
    assert fresh.exit_code == 0, fresh.output
    assert "campaign 2" in fresh.output and "sent 6," in fresh.output and "6 already had this issue" in fresh.output
    shown = run(project, "campaign", "show", "1")
    assert "skipped 6: the campaign was cancelled" in shown.output, shown.output
