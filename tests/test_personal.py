"""Personal fields in an issue's text (`{{ name | default("…") }}`), from the Markdown file to the
message a person receives: filled per recipient by the composer after rendering, escaped and
isolated; the fallback for those without a value; an unknown field or one in a link refused at
build time with its file and line; `check` showing both readings; the archive's pages with the
fallbacks only. Sends go through the outbox and the messages are read back with Python's parser."""

from __future__ import annotations

import email
import email.policy
import shutil

import pytest
from click.testing import CliRunner

from conftest import SECRET, YEAR_END, Project
from newsletter.cli import cli
from newsletter.domain import NewSubscriber
from newsletter.errors import BadInput
from newsletter.letter.render import build_issue
from newsletter.message.composer import Composer, Recipient
from newsletter.keys import TokenSigner

AR_FALLBACK = "الأصدقاء والصديقات الأعزاء"
EN_FALLBACK = "Dear friends"
SCRIPT = "<script>alert(1)</script>"
RLO_NAME = "\u202eevil\u202c نور"


def personal_issue(project: Project) -> None:
    """The year-end letter with a personal opening line in both languages (a copy, not the original)."""
    project.issue.unlink()
    shutil.copytree(YEAR_END, project.issue)
    ar = project.issue / "opening.ar.md"
    ar.write_text(
        f'{{{{ name | default("{AR_FALLBACK}") }}}}، من {{{{ organisation | default("منظمتكم") }}}}\n\n'
        + ar.read_text(encoding="utf-8").split("\n", 1)[1],
        encoding="utf-8",
    )
    en = project.issue / "opening.en.md"
    en.write_text(f"{{{{ name | default('{EN_FALLBACK}') }}}},\n\n" + en.read_text(encoding="utf-8").split("\n", 1)[1], encoding="utf-8")


@pytest.fixture
def personal(tmp_path, secret_env) -> Project:
    project = Project(tmp_path / "p", extra_config="")
    text = project.config_path.read_text(encoding="utf-8")
    text = text.replace('layout = "bilingual"', 'layout = "per-recipient"\nfields = ["organisation"]', 1)
    project.config_path.write_text(text, encoding="utf-8")
    personal_issue(project)
    return project


def message_for(build, variant: str, name: str, attributes: dict | None = None):
    composer = Composer(build.variants, build.config, signer=TokenSigner(SECRET.encode()), campaign_id=1)
    import datetime as dt

    out = composer.compose(variant, Recipient("nour@example.org", name, "ab" * 16, 7, attributes or {}), dt.datetime.now(dt.UTC))
    return email.message_from_bytes(out.data, policy=email.policy.default)


def parts(message) -> tuple[str, str]:
    return message.get_body(("html",)).get_content(), message.get_body(("plain",)).get_content()


def test_a_name_is_filled_per_recipient_and_the_fallback_stands_in_for_none(personal):
    build = build_issue(personal.issue, personal.config_path)
    html, text = parts(message_for(build, "ar", "نور حداد", {"Organisation": "جمعية الأمل"}))
    assert "\u2068نور حداد\u2069، من \u2068جمعية الأمل\u2069" in text
    assert "\u2068نور حداد\u2069" in html and AR_FALLBACK not in html
    html, text = parts(message_for(build, "ar", ""))
    assert f"{AR_FALLBACK}، من منظمتكم" in text and AR_FALLBACK in html
    assert "\ue000" not in html + text and "__NL_" not in html + text
    html, text = parts(message_for(build, "en", ""))
    assert text.lstrip().split("\n")[2:4] != [] and f"{EN_FALLBACK}," in text


@pytest.mark.parametrize("name", [SCRIPT, RLO_NAME, '"><img src=x onerror=alert(1)>', "&amp; {{ name }}"])
def test_a_hostile_name_is_inert_in_html_and_text(personal, name):
    build = build_issue(personal.issue, personal.config_path)
    for variant in ("ar", "en", "bilingual"):
        html, text = parts(message_for(build, variant, name))
        assert "<script" not in html and "<img src=x" not in html and "onerror=alert" not in html.replace("onerror=alert(1)&gt;", "")
        assert not any(c in html + text for c in "\u202a\u202b\u202c\u202d\u202e")
        if name == SCRIPT:
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
            assert "\u2068<script>alert(1)</script>\u2069" in text  # plain text: shown as typed, isolated
        if name == RLO_NAME:
            assert "\u2068evil نور\u2069" in text and "\u2068evil نور\u2069" in html


def test_a_send_fills_each_persons_fields_from_the_store(personal):
    store = personal.store()
    people = [
        NewSubscriber("nour@example.org", "نور", "ar", attributes={"Organisation": "جمعية الأمل"}),
        NewSubscriber("nameless@example.org", "", "ar"),
        NewSubscriber("jane@example.org", SCRIPT, "en"),
    ]
    store.subscribers.import_rows(people, "main", SECRET.encode())
    store.close()
    result = CliRunner().invoke(
        cli,
        ["send", str(personal.issue), "--list", "main", "--provider", "outbox", "--yes", "--config", str(personal.config_path)],
        env=personal.env,
    )
    assert result.exit_code == 0, result.output
    got = {}
    for path in (personal.root / "outbox").rglob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        got[str(message["To"])] = parts(message)
    assert "\u2068نور\u2069، من \u2068جمعية الأمل\u2069" in got["nour@example.org"][1]
    assert f"{AR_FALLBACK}، من منظمتكم" in got["nameless@example.org"][1]
    assert "&lt;script&gt;" in got["jane@example.org"][0] and "<script" not in got["jane@example.org"][0]


def test_an_unknown_field_is_a_build_error_naming_file_and_line(personal):
    closing = personal.issue / "closing.en.md"
    closing.write_text(closing.read_text(encoding="utf-8") + "\n\nSee you, {{ nickname }}.\n", encoding="utf-8")
    line = closing.read_text(encoding="utf-8").split("\n").index("See you, {{ nickname }}.") + 1
    with pytest.raises(BadInput) as caught:
        build_issue(personal.issue, personal.config_path)
    messages = [str(p) for p in caught.value.problems]
    assert any(f"closing.en.md:{line}:" in m and "unknown field 'nickname'" in m and "known: name, organisation" in m for m in messages), messages


def test_a_field_in_a_link_is_a_build_error(personal):
    closing = personal.issue / "closing.en.md"
    closing.write_text(closing.read_text(encoding="utf-8") + "\n\n[Your page](https://example.org/{{ name }})\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", str(personal.issue), "--config", str(personal.config_path)], env=personal.env)
    assert result.exit_code == 2
    assert "closing.en.md:" in result.output and "in a link's address or an attribute" in result.output


def test_a_half_written_field_is_a_build_error(personal):
    opening = personal.issue / "opening.en.md"
    opening.write_text("{{ name | default(Dear friends) }},\n\nHello.\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", str(personal.issue), "--config", str(personal.config_path)], env=personal.env)
    assert result.exit_code == 2 and "opening.en.md:1:" in result.output and "is not a personal field" in result.output


def test_check_shows_the_fallback_and_a_long_name(personal):
    result = CliRunner().invoke(
        cli, ["check", str(personal.issue), "--no-spamassassin", "--config", str(personal.config_path)], env=personal.env
    )
    lines = [line for line in result.output.splitlines() if line.startswith("OK      personal")]
    assert len(lines) == 3, result.output
    assert f"reads '{AR_FALLBACK}، من منظمتكم' without a value" in lines[0]
    assert "عبد الرحمن بن عبد الله بن محمد آل عبد اللطيف الحسيني" in lines[0]
    assert "opening.ar.md:1" in lines[0]
    assert any("Maria-Fernanda Alexandrovna Castellanos de la Cruz-Montgomery," in line for line in lines)


def test_the_built_preview_and_the_archive_pages_show_the_fallbacks(personal, tmp_path):
    result = CliRunner().invoke(cli, ["build", str(personal.issue), "--config", str(personal.config_path)], env=personal.env)
    assert result.exit_code == 0, result.output
    built = personal.root / "dist" / personal.issue.name
    assert AR_FALLBACK in (built / "ar.html").read_text(encoding="utf-8")
    assert f"{EN_FALLBACK}," in (built / "en.txt").read_text(encoding="utf-8")
    long = (built / "ar.long-name.html").read_text(encoding="utf-8")
    assert "عبد الرحمن بن عبد الله بن محمد آل عبد اللطيف الحسيني" in long and AR_FALLBACK not in long
    assert sorted(p.name for p in built.glob("*.long-name.html")) == [
        "ar.long-name.html", "bilingual.long-name.html", "en.long-name.html"
    ]
    from newsletter.archive.publish import web_edition

    pages = web_edition(build_issue(personal.issue, personal.config_path))
    html = pages["ar.html"][1].decode("utf-8")
    assert AR_FALLBACK in html and "\ue000" not in html


# --- fields named after any column -------------------------------------------------------------------


def with_fields(project: Project, fields: str) -> None:
    text = project.config_path.read_text(encoding="utf-8")
    project.config_path.write_text(text.replace('fields = ["organisation"]', fields, 1), encoding="utf-8")


def test_a_field_filled_from_an_arabic_column(personal):
    with_fields(personal, 'fields = { organisation = "المنظمة" }')
    build = build_issue(personal.issue, personal.config_path)
    _html, text = parts(message_for(build, "ar", "نور", {"المنظمة": "جمعية الأمل", "Organisation": "Other"}))
    assert "\u2068نور\u2069، من \u2068جمعية الأمل\u2069" in text
    _html, text = parts(message_for(build, "ar", "نور", {"Organisation": "Amal"}))  # the field's column, not its name
    assert "من منظمتكم" in text and "Amal" not in text


def test_a_field_named_in_arabic_after_its_column(personal):
    with_fields(personal, 'fields = ["المنظمة"]')
    opening = personal.issue / "opening.ar.md"
    opening.write_text(opening.read_text(encoding="utf-8").replace("{{ organisation", "{{ المنظمة", 1), encoding="utf-8")
    build = build_issue(personal.issue, personal.config_path)
    _html, text = parts(message_for(build, "ar", "", {"المنظمة": "جمعية الأمل"}))
    assert "\u2068جمعية الأمل\u2069" in text


@pytest.mark.parametrize(("fields", "message"), [
    ('fields = ["Organisation name"]', "fields: 'Organisation name' cannot be a field's name"),
    ('fields = { name = "الاسم" }', "fields.name: 'name' cannot be a field's name"),
    ('fields = { organisation = "" }', "fields.organisation: expected the name of a spreadsheet column, got ''"),
    ("fields = 5", "fields: expected a table such as"),
])  # fmt: skip
def test_a_field_that_cannot_be_is_refused_with_its_line(personal, fields, message):
    with_fields(personal, fields)
    result = CliRunner().invoke(cli, ["build", str(personal.issue), "--config", str(personal.config_path)], env=personal.env)
    assert result.exit_code == 2 and message in result.output and "newsletter.toml:" in result.output, result.output


def test_check_counts_who_has_each_field_and_warns_about_a_field_nobody_has(personal):
    with_fields(personal, 'fields = { organisation = "المنظمة" }')
    store = personal.store()
    people = [NewSubscriber(f"p{n}@example.org", f"P{n}", "ar", attributes={"Organisation": "Amal"}) for n in range(3)]
    store.subscribers.import_rows(people, "main", SECRET.encode())

    def personal_lines() -> list[str]:
        args = ["check", str(personal.issue), "--no-spamassassin", "--config", str(personal.config_path)]
        result = CliRunner().invoke(cli, args, env=personal.env)
        return [line for line in result.output.splitlines() if " personal" in line]

    lines = personal_lines()  # the sheet's column was "Organisation", the letter's field wants "المنظمة"
    warned = [line for line in lines if "{{ organisation }}" in line]
    assert len(warned) == 1 and warned[0].startswith("WARNING personal"), lines
    assert "nobody of the 3 active subscribers has a value in the column 'المنظمة'" in warned[0]
    assert all(line.startswith("OK") and "3 of the 3 active subscribers have a value" in line
               for line in lines if "{{ name }}" in line), lines  # fmt: skip

    more = [NewSubscriber("p0@example.org", "P0", "ar", attributes={"المنظمة": "جمعية الأمل"})]
    store.subscribers.import_rows(more, "main", SECRET.encode())
    store.close()
    lines = personal_lines()
    assert any(line.startswith("OK") and "1 of the 3 active subscribers have a value" in line for line in lines), lines


def test_check_says_why_nobody_was_counted_when_the_store_cannot_be_reached(personal):
    env = {**personal.env, "NEWSLETTER_STORE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    args = ["check", str(personal.issue), "--no-spamassassin", "--config", str(personal.config_path)]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output  # the letter is fine: only the count is missing
    lines = [line for line in result.output.splitlines() if " personal" in line]
    assert lines and all(line.startswith("OK") and "who has a value is not known (store.url: cannot reach" in line
                         for line in lines), lines  # fmt: skip
