"""Purpose-built broken issues, configs and templates: exit 2, every problem named, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli

ISSUES = "tests/fixtures/project/issues"
GOOD_ISSUE = f"{ISSUES}/gaps"


def build(args: list[str], out: Path):
    result = CliRunner().invoke(cli, ["build", *args, "--out", str(out)])
    return result


def errors(result) -> list[str]:
    return [line.removeprefix("Error: ") for line in result.output.splitlines() if line.startswith("Error: ")]


CASES = {
    "missing-language": [
        f"{ISSUES}/missing-language/02-outreach.en.md: missing: the English (en) counterpart of 02-outreach.ar.md",
    ],
    "empty-section": [
        f"{ISSUES}/empty-section/01-news.en.md: empty section",
    ],
    "bad-issue-toml": [
        f"{ISSUES}/bad-issue-toml/issue.toml:4: invalid TOML: Illegal character '\\n'",
    ],
    "bad-issue-values": [
        f"{ISSUES}/bad-issue-values/issue.toml:1: date: expected a date such as 2022-12-20, got 'December'",
        f"{ISSUES}/bad-issue-values/issue.toml:3: subject.en: missing",
        f"{ISSUES}/bad-issue-values/issue.toml:8: preheader.en: expected a non-empty string, got ''",
        f"{ISSUES}/bad-issue-values/issue.toml:9: preheader.fr: language 'fr' is not in newsletter.toml languages (ar, en)",
    ],
    "bad-front-matter": [
        f"{ISSUES}/bad-front-matter/01-news.ar.md:3: front matter: expected 'key: value', got 'this line has no colon'",
        f"{ISSUES}/bad-front-matter/01-news.en.md:1: front matter: no closing '---'",
        f"{ISSUES}/bad-front-matter/02-outreach.en.md:2: front matter: unknown key 'titel' (known: title)",
    ],
    "unknown-language": [
        f"{ISSUES}/unknown-language/01-news.de.md: unknown language 'de'; newsletter.toml lists ar, en",
    ],
    "titles": [
        f"{ISSUES}/titles/01-news.ar.md: missing title: add front matter 'title: …' or a first line '# …'",
        f"{ISSUES}/titles/02-outreach.en.md:1: title '1. Outreach' starts with a number; sections are numbered when the letter is built",
    ],
    "many-problems": [
        f"{ISSUES}/many-problems/01-news.en.md: empty section",
        f"{ISSUES}/many-problems/02-visits.ar.md: missing: the Arabic (ar) counterpart of 02-visits.en.md",
        f"{ISSUES}/many-problems/draft.md: not an issue file name: expected NN-name.LANG.md, opening.LANG.md or closing.LANG.md",
        f"{ISSUES}/many-problems/issue.toml: preheader.ar: missing",
        f"{ISSUES}/many-problems/issue.toml: preheader.en: missing",
    ],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_issue(name: str, tmp_path: Path, in_root):
    out = tmp_path / "out"
    result = build([f"{ISSUES}/{name}"], out)
    assert result.exit_code == 2, result.output
    assert errors(result) == CASES[name]
    assert f"Aborted with {len(CASES[name])} problem" in result.output
    assert not out.exists(), "a failed build wrote output"


CONFIG_CASES = {
    "config-malformed": [
        "tests/fixtures/config-malformed/newsletter.toml:2: invalid TOML: Illegal character '\\n'",
    ],
    "config-values": [
        "tests/fixtures/config-values/newsletter.toml:1: languages: unknown language 'xx'; known: ar, en",
        "tests/fixtures/config-values/newsletter.toml:2: layout: expected one of bilingual, per-recipient, got 'both'",
        "tests/fixtures/config-values/newsletter.toml:3: base_url: expected an https URL without query, got 'http://news.example.org'",
        "tests/fixtures/config-values/newsletter.toml:4: colour: unknown key",
        "tests/fixtures/config-values/newsletter.toml:7: organisation.ar: missing",
        "tests/fixtures/config-values/newsletter.toml:8: organisation.en: language 'en' is not in languages",
        "tests/fixtures/config-values/newsletter.toml:11: email.from: not an email address: 'not an address'",
        "tests/fixtures/config-values/newsletter.toml:12: email.reply_to: control characters and line breaks are not allowed, got 'Team <team@example.org>\\nBcc: victim@example.org'",
        "tests/fixtures/config-values/newsletter.toml:15: numbering.ar: expected one of western, arabic-indic, got 'roman'",
    ],
    "templates-jinja-syntax": [
        "tests/fixtures/templates-jinja-syntax/templates/email.mjml.j2:11: template syntax error: expected token 'end of statement block', got '<'",
    ],
    "templates-jinja-undefined": [
        "tests/fixtures/templates-jinja-undefined/templates/email.mjml.j2:9: template error: UndefinedError: 'dict object' has no attribute 'no_such_value'",
    ],
    "templates-mjml-unknown-tag": [
        "tests/fixtures/templates-mjml-unknown-tag/templates/email.mjml.j2:9:9: unknown or misplaced MJML tag '<mj-texte>' left in the HTML",
    ],
    "templates-mjml-error": [
        "tests/fixtures/templates-mjml-error/templates/email.mjml.j2:8:3: MJML error: unexpected element in root template",
    ],
}


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_broken_config_or_template(name: str, tmp_path: Path, in_root):
    out = tmp_path / "out"
    result = build([GOOD_ISSUE, "--config", f"tests/fixtures/{name}/newsletter.toml"], out)
    assert result.exit_code == 2, result.output
    assert errors(result) == CONFIG_CASES[name]
    assert not out.exists()


def test_the_good_fixture_builds(tmp_path: Path, in_root):
    result = build([GOOD_ISSUE], tmp_path / "out")
    assert result.exit_code == 0, result.output


def test_failed_build_leaves_the_previous_output_untouched(tmp_path: Path, in_root):
    out = tmp_path / "out"
    assert build([GOOD_ISSUE], out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert build([f"{ISSUES}/empty-section"], out).exit_code == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "staging folders left behind"


def test_missing_issue_folder(tmp_path: Path, in_root):
    result = build([f"{ISSUES}/no-such-issue"], tmp_path / "out")
    assert result.exit_code == 2
    assert errors(result) == [f"{ISSUES}/no-such-issue: issue folder not found"]


def test_mjml_byte_positions_after_arabic_text_map_to_the_right_line(tmp_path: Path, in_root):
    """mjml-python reports UTF-8 byte offsets; Arabic before the fault must not shift the line."""
    project = tmp_path / "p"
    (project / "templates").mkdir(parents=True)
    root = Path.cwd()
    (project / "newsletter.toml").write_text(
        (root / "tests/fixtures/templates-mjml-error/newsletter.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (project / "templates" / "email.txt.j2").write_text("{{ variant.name }}\n", encoding="utf-8")
    source = (root / "tests/fixtures/templates-mjml-error/templates/email.mjml.j2").read_text(encoding="utf-8")
    source = source.replace("<mj-head>", "<mj-head>\n    <mj-title>عنوان عربي طويل جدا جدا</mj-title>", 1)
    (project / "templates" / "email.mjml.j2").write_text(source, encoding="utf-8")
    result = build([GOOD_ISSUE, "--config", str(project / "newsletter.toml")], tmp_path / "out")
    assert result.exit_code == 2
    assert errors(result)[0].endswith("email.mjml.j2:9:3: MJML error: unexpected element in root template")
