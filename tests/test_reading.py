"""The letter as readers see it (issue 19): the bilingual subject that keeps its date, titles
without a lone last word, phone numbers whole and left to right, signatures on their lines.

In process: the pure rules (Hypothesis where input is free text), the year-end letter built
with and without its own bilingual inbox line, and `newsletter check` printing what is sent.
"""

from __future__ import annotations

import dataclasses
import html
import re
import shutil
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, YEAR_END
from newsletter.cli import cli
from newsletter.languages import LANGUAGES, LRM, NBSP, keep_last_words, ltr_digits, wrap_html
from newsletter.letter import markdown
from newsletter.letter.assemble import SUBJECT_MAX, inbox_line, joined, keep_end, shorten, start_cut, without_name
from newsletter.letter.render import build_issue

AR_SUBJECT = "تحديث نهاية العام لغرفة دعم المجتمع المدني – ديسمبر 2022"
EN_SUBJECT = "Civil Society Support Room Year-End Update – December 2022"
AUTOMATIC = "تحديث نهاية العام… – ديسمبر 2022 | Year-End Update – December 2022"
BY_HAND = "تحديث نهاية العام – ديسمبر 2022 | Year-End Update – December 2022"


# --- the bilingual subject keeps the end of each half --------------------------------------------


def without_bilingual_line(letters):
    return [dataclasses.replace(x, bilingual_subject=None, bilingual_preheader=None) for x in letters.values()]


def test_the_year_end_subject_keeps_its_date_in_both_halves(year_end_build):
    assert year_end_build.variants["bilingual"].subject == BY_HAND  # issue.toml's subject.bilingual
    line = inbox_line(without_bilingual_line(year_end_build.letters))  # the automatic rule
    assert line.subject == AUTOMATIC
    ar, en = line.subject.split(" | ")
    assert ar.endswith("ديسمبر 2022") and en.endswith("December 2022") and len(line.subject) <= SUBJECT_MAX
    assert line.long_subject == f"{AR_SUBJECT} | {EN_SUBJECT}" and set(line.shortened) == {"subject", "preheader"}


def test_the_old_rule_lost_the_date_and_the_new_one_does_not():
    """The check can fail: cutting each half's end, as before, drops "2022" from both."""
    old = shorten(AR_SUBJECT, 33) + " | " + shorten(EN_SUBJECT, 34)
    assert "2022" not in old
    assert "2022" in keep_end(AR_SUBJECT, 33) and "2022" in keep_end(EN_SUBJECT, 34)


def test_the_organisations_name_goes_first_then_the_head_then_the_start():
    assert without_name(AR_SUBJECT, "غرفة دعم المجتمع المدني") == "تحديث نهاية العام… – ديسمبر 2022"
    assert without_name(EN_SUBJECT, "Civil Society Support Room") == "Year-End Update – December 2022"
    assert without_name("The Civil Society Support Room's Update – May 2023", "Civil Society Support Room") == (
        "The… Update – May 2023"
    )
    assert keep_end(EN_SUBJECT, 24) == "Civil… – December 2022"  # no name given: the head's end is cut
    assert keep_end("An update on the working groups and the platform in 2022", 24) == "…the platform in 2022"
    assert start_cut("word", 1) == "…"


words = st.text(alphabet="abcdefgh تحديثنهاية", min_size=1, max_size=9).map(str.strip).filter(bool)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(words, min_size=1, max_size=12),
    st.sampled_from(["", " – December 2022", " – ديسمبر 2022"]),
    st.integers(min_value=1, max_value=80),
)
def test_keep_end_fits_keeps_short_text_and_the_date(head, tail, width):
    text = " ".join(head) + tail
    kept = keep_end(text, width)
    assert len(kept) <= width
    if len(text) <= width:
        assert kept == text
    elif tail and width >= len(tail) + 4:
        assert kept.endswith(tail), (text, width, kept)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=90), st.text(max_size=90))
def test_any_bilingual_subject_fits(ar, en):
    assert len(joined([ar, en], SUBJECT_MAX, [keep_end, keep_end])) <= SUBJECT_MAX


def issue_without_bilingual_line(tmp_path: Path) -> Path:
    issue = tmp_path / "issues" / "2022-12-year-end"
    shutil.copytree(YEAR_END, issue)
    toml = (issue / "issue.toml").read_text(encoding="utf-8")
    toml = "\n".join(line for line in toml.splitlines() if not line.startswith("bilingual = "))
    (issue / "issue.toml").write_text(toml + "\n", encoding="utf-8")
    return issue


def check_lines(*args: str) -> list[str]:
    result = CliRunner().invoke(cli, ["check", *args, "--no-spamassassin"])
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_check_prints_the_subject_and_preheader_as_sent(in_root, year_end_build):
    lines = check_lines("issues/2022-12-year-end")
    for name, variant in year_end_build.variants.items():
        assert f"OK      subject [{name}]: subject ({name}, as sent): {variant.subject}" in lines
        assert f"OK      preheader [{name}]: preheader ({name}, as sent): {variant.preheader}" in lines
    assert f"OK      subject [bilingual]: subject (bilingual, as sent): {BY_HAND}" in lines
    assert not [line for line in lines if line.startswith("WARNING")]


def test_check_warns_when_the_bilingual_line_was_shortened(in_root, tmp_path):
    issue = issue_without_bilingual_line(tmp_path)
    lines = check_lines(str(issue), "--config", "newsletter.toml")
    assert f"OK      subject [bilingual]: subject (bilingual, as sent): {AUTOMATIC}" in lines
    toml = issue / "issue.toml"
    assert [line for line in lines if line.startswith("WARNING")] == [
        f"WARNING subject [bilingual]: {toml}: subject (bilingual) shortened to fit 70 characters: each "
        "language's joined make 117; write subject.bilingual in issue.toml to choose its words",
        f"WARNING preheader [bilingual]: {toml}: preheader (bilingual) shortened to fit 110 characters: each "
        "language's joined make 211; write preheader.bilingual in issue.toml to choose its words",
    ]


# --- titles: no lone last word -------------------------------------------------------------------


def test_a_titles_last_words_stay_together():
    assert keep_last_words(EN_SUBJECT).endswith(f" December{NBSP}2022")
    assert keep_last_words(AR_SUBJECT).endswith(f" ديسمبر{NBSP}2022")
    assert keep_last_words("Update – 2022") == f"Update{NBSP}–{NBSP}2022"
    assert keep_last_words("Alone") == "Alone"
    long = "A remark uncharacteristically extraordinary"
    assert keep_last_words(long) == long  # its last two words together would not fit a phone's line


def test_built_titles_keep_the_year_with_its_month(year_end_build):
    for name, month in (("ar", "ديسمبر"), ("en", "December")):
        h1 = re.search(r"<h1[^>]*>(.*?)</h1>", year_end_build.variants[name].html, re.S).group(1)
        assert html.unescape(re.sub(r"<[^>]+>", "", h1)).endswith(f"{month}{NBSP}2022"), h1
    assert "December 2022\n" in year_end_build.variants["en"].text  # the text part keeps plain spaces


def test_a_latin_title_in_arabic_stays_one_run_with_its_no_break_space():
    shown = wrap_html(keep_last_words("لقاء مع Swiss Peace"), "rtl")
    assert shown == f'لقاء مع <span dir="ltr" style="white-space:nowrap">Swiss{NBSP}Peace</span>'


# --- phone numbers: whole, and left to right -----------------------------------------------------

PHONE = "+966 11 234 5678"
INDIC = "٠٩٣٣ ١٢٣ ٤٥٦"


def test_english_phone_numbers_are_kept_on_one_line_in_html_and_text():
    assert f'<span dir="ltr" style="white-space:nowrap">{PHONE}</span>' in wrap_html(f"Call {PHONE} today", "ltr")
    text = markdown.to_text(markdown.parse(f"{'word ' * 12}call us on {PHONE} today."), LANGUAGES["en"], width=70)
    assert any(PHONE in line for line in text.splitlines()), text


def test_arabic_indic_phone_numbers_hold_left_to_right_with_marks():
    held = ltr_digits(INDIC)
    assert held == f"٠٩٣٣{LRM} {LRM}١٢٣{LRM} {LRM}٤٥٦"
    assert ltr_digits(PHONE) == PHONE  # western digits keep their order inside dir="ltr" already
    for direction in ("rtl", "ltr"):
        shown = wrap_html(f"هاتف {INDIC} فقط" if direction == "rtl" else f"Phone {INDIC} only", direction)
        assert f'<span dir="ltr" style="white-space:nowrap">{held}</span>' in shown, shown
    text = markdown.to_text(markdown.parse(f"{'كلمة ' * 14}اتصلوا على {INDIC} اليوم."), LANGUAGES["ar"], width=60)
    assert any(f"{LRM}{held}{LRM}" in line for line in text.splitlines()), text


# --- signatures keep their lines -----------------------------------------------------------------

SIGNATURE = "---\ntitle: In closing\n---\n\nThank you.\n\nWith best regards,\nThe team\ncontact@example.org\n"
SECTION = "# News\n\nA paragraph pasted from a message,\nwrapped at its old width.\n"


def test_the_closing_keeps_its_line_breaks_and_sections_join_theirs(tmp_path):
    issue = tmp_path / "issues" / "2022-12-year-end"
    shutil.copytree(YEAR_END, issue)
    (issue / "closing.en.md").write_text(SIGNATURE, encoding="utf-8")
    (issue / "01-working-groups.en.md").write_text(SECTION, encoding="utf-8")
    build = build_issue(issue, ROOT / "newsletter.toml")
    en = build.variants["en"]
    assert re.search(r"With best regards,<br>\s*The team<br>\s*<a [^>]*>contact@example.org</a>", en.html), en.html
    assert "With best regards,\nThe team\ncontact@example.org" in en.text
    assert "A paragraph pasted from a message,\nwrapped" in en.html and "pasted from a message,<br>" not in en.html
    assert "A paragraph pasted from a message, wrapped at its old width." in en.text
