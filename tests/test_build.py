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
from newsletter.letter.render import build_issue
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
    assert titles == ["Part\u00a001", "Part\u00a005", "Part\u00a010"]  # a title's last word never alone on its line


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


# --- the reading fixes of issue 13 ------------------------------------------------------------------

LINKS = FIXTURES / "project" / "issues" / "links-and-lists"
LRM = "\u200e"


@pytest.fixture(scope="module")
def links_build():
    return build_issue(LINKS)


def test_bilingual_jump_has_an_empty_named_anchor_and_the_english_page_beside_it(year_end_build):
    html = year_end_build.variants["bilingual"].html
    # Gmail's webmail and Outlook for Windows jump only to an empty <a name>
    assert re.search(r'<a name="nl-en"[^>]*></a>', html)
    assert html.index('<a name="nl-en"') < html.index('id="nl-en"')
    # where in-message anchors do nothing (the Gmail and Outlook apps), the English page itself
    jump = re.search(r'<a href="#nl-en"[^>]*>Read in English</a> · <a href="([^"]+)"[^>]*>or in your browser</a>', html)
    assert jump and jump.group(1) == "https://news.example.org/archive/2022-12-year-end/en.html"


def test_each_variant_links_its_own_page_near_the_top_in_the_readers_language(year_end_build):
    words = {"ar": "اعرض هذه الرسالة في المتصفح", "en": "View this letter in your browser", "bilingual": "اعرض هذه الرسالة في المتصفح"}
    for name, variant in year_end_build.variants.items():
        url = f"https://news.example.org/archive/2022-12-year-end/{name}.html"
        link = f'<a href="{url}" style="color:#1a5d8f">{words[name]}</a>'
        assert link in variant.html, name
        assert variant.html.index(link) < variant.html.index('id="nl-'), f"{name}: the link is not near the top"
        assert variant.text.splitlines()[0].startswith(words[name]) and url in variant.text.splitlines()[0]


def padded_cells_with_direction(html: str) -> list[str]:
    """Table cells (Outlook's ghost tables inside conditional comments included) that have both
    padding and `direction` or `dir`: Outlook for Windows draws a 1 px line along them."""
    found = []
    for cell in re.findall(r"<td\b[^>]*>", html):
        style = re.search(r'style="([^"]*)"', cell)
        rules = [rule.partition(":") for rule in (style.group(1) if style else "").split(";")]
        padded = any(k.strip().startswith("padding") and re.search(r"[1-9]", v) for k, _, v in rules)
        directed = any(k.strip() == "direction" for k, _, _ in rules) or re.search(r'\bdir="', cell)
        if padded and directed:
            found.append(cell)
    return found


def test_no_padded_cell_carries_direction(year_end_build, links_build):
    for build in (year_end_build, links_build):
        for name, variant in build.variants.items():
            assert len(re.findall(r"<td\b", variant.html)) > 10
            assert padded_cells_with_direction(variant.html) == [], name
    # the check can fail: a section padded as the layout had it gets both on one cell
    from mjml import mjml2html

    old = mjml2html(
        '<mjml><mj-body><mj-section direction="rtl" padding="28px 0 8px"><mj-column>'
        "<mj-text>نص</mj-text></mj-column></mj-section></mj-body></mjml>"
    )
    assert padded_cells_with_direction(old)


def test_the_bilingual_inbox_line_carries_both_languages(year_end_build):
    from newsletter.languages import HAS_ARABIC
    from newsletter.message.composer import sample_message

    variant = year_end_build.variants["bilingual"]
    latin = re.compile(r"[A-Za-z]{4}")
    for value in (variant.subject, variant.preheader):
        assert HAS_ARABIC.search(value) and latin.search(value), value
        assert value.index(" | ") and HAS_ARABIC.search(value.split(" | ")[0]), "the primary language first"
    assert len(variant.subject) <= 70 and len(variant.preheader) <= 110  # what `check` asks for
    hidden = re.search(r'<div style="display:none[^>]*>([^<]*)</div>', variant.html).group(1)
    assert hidden == variant.preheader
    msg = email.message_from_bytes(sample_message(variant, year_end_build.config), policy=email.policy.default)
    assert msg["Subject"] == variant.subject
    assert msg["From"].addresses[0].display_name == "غرفة دعم المجتمع المدني | Civil Society Support Room"
    # the one-language variants keep their own
    assert year_end_build.variants["ar"].subject == "تحديث نهاية العام لغرفة دعم المجتمع المدني – ديسمبر 2022"


def test_issue_toml_may_give_the_bilingual_inbox_line(links_build):
    variant = links_build.variants["bilingual"]
    assert variant.subject == "للتواصل مع غرفة الاختبار | How to reach the Test Room"
    assert variant.preheader == "الموقع والبريد والهاتف وخطوات المشاركة | Website, address, phone and how to join"


def test_a_bilingual_key_with_one_language_is_refused(tmp_path: Path):
    project = tmp_path / "p"
    (project / "issues").mkdir(parents=True)
    config = (FIXTURES / "project" / "newsletter.toml").read_text(encoding="utf-8")
    config = config.replace('languages = ["ar", "en"]', 'languages = ["en"]').replace('ar = "غرفة الاختبار"\n', "")
    config = config.replace('ar = "arabic-indic"\n', "").replace("../../../templates", str(ROOT / "templates"))
    (project / "newsletter.toml").write_text(config, encoding="utf-8")
    issue = project / "issues" / "one"
    issue.mkdir()
    (issue / "issue.toml").write_text(
        'date = 2023-01-01\n[subject]\nen = "A subject"\nbilingual = "Both"\n[preheader]\nen = "A preheader"\n',
        encoding="utf-8",
    )
    (issue / "01-news.en.md").write_text("# News\n\nText.\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", str(issue), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "issue.toml:4: subject.bilingual: language 'bilingual' is not in newsletter.toml languages (en)" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("style", "label"),
    [(None, "ديسمبر كانون الأول 2022"), ("both", "ديسمبر كانون الأول 2022"),
     ("levantine", "كانون الأول 2022"), ("egyptian", "ديسمبر 2022")],
)
def test_the_arabic_date_line_names_the_month_as_configured(tmp_path: Path, style, label):
    config = (ROOT / "newsletter.toml").read_text(encoding="utf-8")
    config = config.replace('layout = "bilingual"', f'layout = "bilingual"\ntemplates = "{ROOT / "templates"}"')
    if style:
        config += f'\n[dates]\nar = "{style}"\n'
    path = tmp_path / "newsletter.toml"
    path.write_text(config, encoding="utf-8")
    build = build_issue(YEAR_END, path)
    ar = build.variants["ar"]
    assert f">{label}</p>" in ar.html
    assert f"\n{label}\n" in ar.text
    assert "\nDecember 2022\n" in build.variants["en"].text


def test_a_bad_date_style_names_its_key(tmp_path: Path):
    config = (ROOT / "newsletter.toml").read_text(encoding="utf-8") + '\n[dates]\nar = "syriac"\nen = "english"\n'
    path = tmp_path / "newsletter.toml"
    path.write_text(config, encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", str(YEAR_END), "--config", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    line = config.splitlines().index('ar = "syriac"') + 1
    assert f"newsletter.toml:{line}: dates.ar: expected one of both, egyptian, levantine, got 'syriac'" in result.output


def test_bare_urls_addresses_and_www_become_links_in_arabic(links_build):
    html = links_build.variants["ar"].html
    # the Arabic comma after the URL stays outside it; www. links are https
    for href, label in [
        ("https://cssrweb.org/ar/about/", "https://cssrweb.org/ar/about/"),
        ("mailto:info@cssrweb.org", "info@cssrweb.org"),
        ("https://www.cssrweb.org", "www.cssrweb.org"),
    ]:
        assert re.search(rf'<span dir="ltr"><a href="{re.escape(href)}"[^>]*>{re.escape(label)}</a></span>', html), href
    assert "%D8%8C" not in html and "about/،</a>" not in html


def test_phone_numbers_are_kept_on_one_line_in_html_and_text(links_build):
    html = links_build.variants["ar"].html
    phones = re.findall(r'<span dir="ltr" style="white-space:nowrap">\+963 11 234 5678</span>', html)
    assert len(phones) == 8
    text = links_build.variants["ar"].text
    assert text.count(f"{LRM}+963 11 234 5678{LRM}") == 8  # never cut by the text's line wrapping


def _urls_in_text(text: str) -> list:
    from linkify_it import LinkifyIt

    return LinkifyIt().match(text) or []


@pytest.mark.parametrize("issue", ["year-end", "links"])
def test_no_mark_touches_a_url_and_a_link_detector_finds_every_url_of_the_arabic_text(issue, year_end_build, links_build):
    from newsletter.message.composer import preview_text

    build = year_end_build if issue == "year-end" else links_build
    for name in ("ar", "bilingual"):
        variant = build.variants[name]
        text = preview_text(variant.text, build.config, html=False)
        html = preview_text(variant.html, build.config, html=True)
        found = _urls_in_text(text)
        for match in found:
            before = text[match.index - 1] if match.index else ""
            after = text[match.last_index] if match.last_index < len(text) else ""
            assert LRM not in (before, after), f"{name}: a mark touches {match.raw!r}"
            assert LRM not in match.url and "%E2%80%8E" not in match.url
        # every link of the HTML (bar the jump to #nl-en) is found in the text as it is
        hrefs = {h.removeprefix("mailto:") for h in re.findall(r'<a href="([^"#][^"]*)"', html)}
        shown = {m.url.removeprefix("mailto:").removeprefix("http://") for m in found}
        shown |= {m.url.removeprefix("mailto:") for m in found}
        missing = {h for h in hrefs if h not in shown and h.removeprefix("https://") not in shown}
        assert not missing, f"{name}: not found in the text part: {missing}"
        assert len(found) >= len(hrefs)


def test_the_check_of_marks_can_fail():
    """The text part as it was: marks against the URL, which link detectors take in or stop at."""
    old = f"لإلغاء الاشتراك في هذه الرسائل: {LRM}https://news.example.org/u/abc{LRM}"
    assert _urls_in_text(old) == []  # linkify-it finds no link at all
    assert [m.url for m in _urls_in_text(old.replace(LRM, ""))] == ["https://news.example.org/u/abc"]


def test_arabic_ordered_lists_count_like_the_sections(links_build):
    ar = links_build.variants["ar"]
    labels = section_labels(ar.html, "ar")
    assert labels == ["١.", "٢."]
    (ol,) = re.findall(r"<ol\b[^>]*>", ar.html)
    assert "list-style-type:arabic-indic" in ol
    # the text part: the same digits, the items indented under their section's heading
    assert re.findall(r"^  ([٠-٩]+)\. ", ar.text, re.M) == ["١", "٢", "٣"]
    assert re.findall(r"^([٠-٩]+)\. ", ar.text, re.M) == ["١", "٢"]  # the sections, at the margin
    en = links_build.variants["en"]
    assert "list-style-type" not in re.findall(r"<ol\b[^>]*>", en.html)[0]
    assert re.findall(r"^  (\d+)\. ", en.text, re.M) == ["1", "2", "3"]
    assert re.findall(r"^(\d+)\. ", en.text, re.M) == ["1", "2"]


def test_western_sections_keep_western_lists(tmp_path: Path):
    config = (FIXTURES / "project" / "newsletter.toml").read_text(encoding="utf-8")
    config = config.replace('ar = "arabic-indic"', 'ar = "western"').replace("../../../templates", str(ROOT / "templates"))
    path = tmp_path / "newsletter.toml"
    path.write_text(config, encoding="utf-8")
    ar = build_issue(LINKS, path).variants["ar"]
    assert "list-style-type" not in re.findall(r"<ol\b[^>]*>", ar.html)[0]
    assert re.findall(r"^  (\d+)\. ", ar.text, re.M) == ["1", "2", "3"]
