"""The year-end letter through the whole build: numbering, variants, direction, MIME."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.editor.output import build_files
from newsletter.letter.build import build_issue
from newsletter.cli import cli

from conftest import FIXTURES, ROOT, YEAR_END

ARABIC_INDIC = "٠١٢٣٤٥٦٧٨٩"


def section_labels(html: str, lang: str) -> list[str]:
    block = html.split(f'id="nl-{lang}"', 1)[1]
    if lang == "ar" and 'id="nl-en"' in block:
        block = block.split('id="nl-en"', 1)[0]
    return re.findall(r'<span class="nl-label"[^>]*>([^<]*)</span>', block)


def test_three_variants(year_end_build):
    assert list(year_end_build.variants) == ["ar", "en", "bilingual"]


def test_arabic_sections_are_numbered_once_each_in_arabic_indic_digits(year_end_build):
    labels = section_labels(year_end_build.variants["ar"].html, "ar")
    assert labels == ["١.", "٢.", "٣.", "٤."]


def test_english_sections_are_numbered_in_western_digits(year_end_build):
    assert section_labels(year_end_build.variants["en"].html, "en") == ["1.", "2.", "3.", "4."]


def test_bilingual_numbers_each_language_block_from_one(year_end_build):
    html = year_end_build.variants["bilingual"].html
    assert section_labels(html, "ar") == ["١.", "٢.", "٣.", "٤."]
    assert section_labels(html, "en") == ["1.", "2.", "3.", "4."]


def test_western_digits_when_configured(tmp_path: Path):
    config = (ROOT / "newsletter.toml").read_text(encoding="utf-8").replace('ar = "arabic-indic"', 'ar = "western"')
    config = config.replace('layout = "bilingual"', f'layout = "bilingual"\ntemplates = "{ROOT / "templates"}"')
    path = tmp_path / "newsletter.toml"
    path.write_text(config, encoding="utf-8")
    build = build_issue(YEAR_END, path)
    assert section_labels(build.variants["ar"].html, "ar") == ["1.", "2.", "3.", "4."]


def test_gaps_in_file_numbers_still_number_consecutively():
    build = build_issue(FIXTURES / "project" / "issues" / "gaps")
    html = build.variants["ar"].html
    assert section_labels(html, "ar") == ["١.", "٢.", "٣."]
    # file order, not name order: 05-middle comes between 01 and 10
    titles = re.findall(r'<span class="nl-label"[^>]*>[^<]*</span> ([^<]*)</h2>', build.variants["en"].html)
    assert titles == ["Part 01", "Part 05", "Part 10"]


def test_plain_text_numbers_sections(year_end_build):
    text = year_end_build.variants["ar"].text
    for label in ["١.", "٢.", "٣.", "٤."]:
        assert text.count(f"\n{label} ") == 1
    en = year_end_build.variants["en"].text
    assert [m for m in re.findall(r"^(\d+)\. ", en, re.M)] == ["1", "2", "3", "4"]


def test_no_mjml_left_and_under_90_kb(year_end_build):
    for variant in year_end_build.variants.values():
        assert "<mj-" not in variant.html
        assert len(variant.html.encode("utf-8")) < 90 * 1024
        assert variant.html.lower().startswith("<!doctype html>")


def test_direction_attributes(year_end_build):
    ar = year_end_build.variants["ar"].html
    assert re.search(r'<html[^>]* lang="ar"[^>]* dir="rtl"', ar)
    # the body wrapper carries them too (webmails drop <html>)
    assert re.search(r'<div[^>]*lang="ar"[^>]*dir="rtl"|<div[^>]*dir="rtl"[^>]*lang="ar"', ar.split("<body", 1)[1])
    assert "direction:rtl" in ar.replace(" ", "")
    for bad in ("text-align:start", "text-align:end", "<bdi"):
        assert bad not in ar.replace(" ", "")
    en = year_end_build.variants["bilingual"].html.split('id="nl-en"', 1)[1]
    assert 'dir="ltr"' in en and 'dir="rtl"' not in en.split("</mj-", 1)[0].split("nl-text", 1)[0]


def test_bilingual_has_jump_link_to_the_other_language(year_end_build):
    html = year_end_build.variants["bilingual"].html
    assert 'href="#nl-en"' in html and 'id="nl-en"' in html
    assert html.index('id="nl-ar"') < html.index('id="nl-en"')


def test_email_in_arabic_text_is_wrapped_ltr(year_end_build):
    html = year_end_build.variants["ar"].html
    assert re.search(r'<span dir="ltr">(<a [^>]*>)?contact@cssrweb\.org', html)


def test_premailer_keeps_important_inside_media_queries(year_end_build):
    html = year_end_build.variants["ar"].html
    media = re.findall(r"@media[^{]*\{(.*?)\}\s*\}", html, re.S)
    assert media and any("!important" in block for block in media)


def test_rendering_never_touches_the_network(monkeypatch: pytest.MonkeyPatch):
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError("network access during rendering")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    build = build_issue(YEAR_END)
    build_files(build)
    assert attempts == []
    for variant in build.variants.values():
        # nothing in the email would make a mail client fetch anything either
        assert not re.search(r'<(img|link|script)[^>]+(src|href)="https?://', variant.html)


def test_sample_eml_is_multipart_alternative_with_encoded_subject(year_end_build):
    files = build_files(year_end_build)
    raw = files["ar.eml"]
    assert raw.isascii()
    header = raw.split(b"\r\n\r\n", 1)[0].decode()
    assert "Subject: =?utf-8?" in header
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["Subject"] == year_end_build.variants["ar"].subject
    assert msg["To"] == "editor@example.org"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Unsubscribe"].startswith("<https://news.example.org/u/")
    assert msg["Content-Language"] == "ar"
    text = msg.get_body(("plain",)).get_content()
    assert "١. تحديث حول مجموعات العمل التخصصية" in text


def test_cli_build_writes_every_file_and_prints_sizes(tmp_path: Path, in_root):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", "issues/2022-12-year-end", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(f"{v}.{ext}" for v in ("ar", "en", "bilingual") for ext in ("html", "txt", "eml"))
    for variant in ("ar", "en", "bilingual"):
        assert re.search(rf"^{variant}\s+html\s+[\d.]+ KB", result.output, re.M)


def test_cli_warns_when_html_is_over_90_kb(tmp_path: Path, in_root):
    project = tmp_path / "project"
    issue = project / "issues" / "big"
    issue.mkdir(parents=True)
    (project / "newsletter.toml").write_text(
        (ROOT / "newsletter.toml").read_text(encoding="utf-8") + f'\n', encoding="utf-8"
    )
    text = (project / "newsletter.toml").read_text(encoding="utf-8")
    (project / "newsletter.toml").write_text(text.replace('layout = "bilingual"', f'layout = "bilingual"\ntemplates = "{ROOT / "templates"}"'), encoding="utf-8")
    (issue / "issue.toml").write_text((YEAR_END / "issue.toml").read_text(encoding="utf-8"), encoding="utf-8")
    paragraph = "كلمة " * 2000
    for lang, title in (("ar", "عنوان"), ("en", "Title")):
        (issue / f"01-big.{lang}.md").write_text(f"# {title}\n\n" + ("\n\n".join([paragraph] * 4)), encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", str(issue), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "Warning: bilingual.html:" in result.output and "Gmail clips" in result.output
    assert "Warning: ar.html" not in result.output  # 79 KB: under the threshold


def test_plain_text_is_not_html_escaped(year_end_build):
    text = year_end_build.variants["en"].text
    assert "'s " in text
    for entity in ("&#39;", "&amp;", "&quot;", "&lt;"):
        assert entity not in text
