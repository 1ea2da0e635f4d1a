"""`newsletter check`: clean on the year-end letter, each check failing on a purpose-built issue."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from newsletter.cli import cli

ISSUES = "tests/fixtures/project/issues"


def check(*args: str):
    return CliRunner().invoke(cli, ["check", *args])


def lines(result, level: str) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith(level)]


@pytest.mark.spamassassin
def test_spamassassin_is_installed():
    assert shutil.which("spamassassin"), "spamassassin missing: scripts/setup installs the Debian package"


@pytest.mark.spamassassin
def test_year_end_letter_is_clean_with_a_low_spam_score(in_root):
    result = check("issues/2022-12-year-end", "--format", "json")
    assert result.exit_code == 0, result.output
    results = json.loads(result.output)
    assert not [r for r in results if r["level"] != "ok"], results
    spam = {r["variant"]: r["score"] for r in results if r["check"] == "spamassassin"}
    assert set(spam) == {"ar", "en", "bilingual"}
    assert all(score <= 1.0 for score in spam.values()), spam


def test_links(in_root):
    result = check(f"{ISSUES}/check-links", "--no-spamassassin")
    assert result.exit_code == 1
    assert lines(result, "ERROR") == [
        f"ERROR   links [ar]: {ISSUES}/check-links/01-links.ar.md:5: javascript: links are not allowed (shown as plain text)",
        f"ERROR   links [ar]: {ISSUES}/check-links/01-links.ar.md:5: relative link (the email has no page to be relative to): '/about'",
    ]
    assert "OK      images: 0 images, all with alt text, all inside the message" in result.output


def test_remote_images_are_refused_with_file_and_line(in_root):
    """A remote image tells its host who opened the letter: the build refuses it (tests/test_images.py)."""
    result = check(f"{ISSUES}/remote-images", "--no-spamassassin")
    assert result.exit_code == 2
    refused = [line for line in lines(result, "Error: ") if "remote image" in line]
    assert [line.split(": ")[1] for line in refused] == [
        f"{ISSUES}/remote-images/01-images.ar.md:6",
        f"{ISSUES}/remote-images/01-images.en.md:3",
        f"{ISSUES}/remote-images/01-images.en.md:5",
    ]
    assert all("when, where and by whom the letter was opened" in line for line in refused)


def test_subject_and_preheader_lengths_warn_but_do_not_fail(in_root):
    result = check(f"{ISSUES}/check-subject", "--no-spamassassin")
    assert result.exit_code == 0
    assert lines(result, "WARNING") == [
        f"WARNING subject [bilingual]: {ISSUES}/check-subject/issue.toml: subject (bilingual) shortened to fit 70 "
        "characters: each language's joined make 90; write subject.bilingual in issue.toml to choose its words",
        f"WARNING preheader [ar]: {ISSUES}/check-subject/issue.toml: preheader.ar is 4 characters; aim for 40 to 110",
        f"WARNING subject [en]: {ISSUES}/check-subject/issue.toml: subject.en is 75 characters; inboxes show about 70",
        f"WARNING preheader [en]: {ISSUES}/check-subject/issue.toml: preheader.en repeats the subject; it is wasted space in the inbox",
    ]


def test_html_over_gmail_clipping_fails(in_root):
    result = check(f"{ISSUES}/check-size", "--no-spamassassin")
    assert result.exit_code == 1
    errors = lines(result, "ERROR")
    assert len(errors) == 1 and errors[0].startswith("ERROR   size [bilingual]: ")
    assert errors[0].endswith("KB of HTML: Gmail clips messages over about 102 KB")


def test_unsupported_html_and_css_fail(in_root):
    result = check(f"{ISSUES}/gaps", "--config", "tests/fixtures/templates-unsupported/newsletter.toml", "--no-spamassassin")
    assert result.exit_code == 1
    errors = [line for line in lines(result, "ERROR") if "[ar]" in line]
    assert errors == [
        "ERROR   support [ar]: <bdi>: Gmail, every Outlook and Yahoo drop it; use <span dir>",
        "ERROR   support [ar]: text-align:start/end: Outlook for Windows, Yahoo and the Gmail apps ignore it; use left/right",
        "ERROR   support [ar]: display:flex/grid: Outlook for Windows and several webmails ignore it",
        "ERROR   support [ar]: external stylesheet: Gmail drops <link> stylesheets, and loading one is a third-party request",
    ]


@pytest.mark.spamassassin
def test_spam_score_over_the_limit_fails_and_names_the_rules(in_root):
    result = check(f"{ISSUES}/check-spam", "--max-spam-score", "2", "--format", "json")
    assert result.exit_code == 1
    spam = {r["variant"]: r for r in json.loads(result.output) if r["check"] == "spamassassin"}
    assert spam["ar"]["level"] == "ok"
    assert spam["en"]["level"] == "error" and spam["en"]["score"] > 2
    assert any(rule.startswith("DEAR_FRIEND") for rule in spam["en"]["rules"])


@pytest.mark.parametrize("name", ["missing-language", "bad-issue-toml"])
def test_bad_input_exits_2(name, in_root):
    result = check(f"{ISSUES}/{name}", "--no-spamassassin")
    assert result.exit_code == 2
    assert result.output.startswith("Error: ")


def test_url_like_text_that_is_not_a_link_is_listed(in_root):
    """Bare URLs and addresses are links (markdown-it's linkify); what still looks like one is named."""
    result = check(f"{ISSUES}/links-and-lists", "--no-spamassassin")
    assert result.exit_code == 0, result.output
    assert lines(result, "WARNING") == [
        f"WARNING links [en]: {ISSUES}/links-and-lists/01-contacts.en.md:7: 'http//broken.example.org' looks like a "
        "link but is not one; write it as <https://…> or [text](https://…)",
    ]
    # the bilingual inbox line issue.toml gives is checked like the others
    assert "OK      subject [bilingual]: subject.bilingual: 53 characters" in result.output
    assert "OK      preheader [bilingual]: preheader.bilingual: 80 characters" in result.output


def test_a_long_bilingual_subject_warns(in_root, tmp_path):
    issue = tmp_path / "issues" / "long"
    shutil.copytree(f"{ISSUES}/links-and-lists", issue)
    toml = (issue / "issue.toml").read_text(encoding="utf-8")
    toml = toml.replace('bilingual = "للتواصل مع غرفة الاختبار | How to reach the Test Room"',
                        'bilingual = "للتواصل مع غرفة الاختبار في كل وقت | How to reach the Test Room at any time"')
    (issue / "issue.toml").write_text(toml, encoding="utf-8")
    result = check(str(issue), "--config", "tests/fixtures/project/newsletter.toml", "--no-spamassassin")
    assert result.exit_code == 0, result.output
    warning = [line for line in lines(result, "WARNING") if line.startswith("WARNING subject")]
    assert warning == [f"WARNING subject [bilingual]: {issue / 'issue.toml'}: subject.bilingual is 75 characters; inboxes show about 70"]
