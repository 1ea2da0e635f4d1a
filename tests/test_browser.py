"""Render the sample issue and check it in headless Chromium (Debian's /usr/bin/chromium).

Per variant and width: no horizontal scrolling, computed direction and alignment of every
Arabic and English block, Latin addresses inside Arabic displayed in logical order, nothing
fetched from the network, and a full-page screenshot in dist/screenshots/ for a human to look at.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import re
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from image_letters import image_issue
from newsletter.languages import wrap_html
from newsletter.editor.output import build_files
from newsletter.letter.render import build_issue

ROOT = Path(__file__).resolve().parents[1]
ISSUE = ROOT / "issues" / "2022-12-year-end"
SCREENSHOTS = ROOT / "dist" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
CONTACT = "contact@cssrweb.org"

pytestmark = pytest.mark.browser

# The language of an element is that of its nearest [lang] ancestor: <html lang="ar"> wraps
# the English block of the bilingual variant, so a plain `[lang=ar] p` selector would match it.
BLOCKS_JS = """() => [...document.body.querySelectorAll('p, h1, h2, h3, h4, li')]
  .filter(e => e.getClientRects().length && e.textContent.trim())
  .map(e => { const s = getComputedStyle(e);
    return {lang: e.closest('[lang]')?.getAttribute('lang'), tag: e.tagName, direction: s.direction,
            align: s.textAlign, text: e.textContent.trim().slice(0, 40)}; })"""

# x of each character of every occurrence of `needle` in the visible text, per occurrence.
# Text nodes are concatenated in document order so an occurrence may span several nodes.
POSITIONS_JS = """([needle, lang]) => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const nodes = []; let text = '';
  for (let n = walker.nextNode(); n; n = walker.nextNode()) { nodes.push([n, text.length]); text += n.data; }
  const locate = i => { let k = nodes.length - 1; while (nodes[k][1] > i) k--; return [nodes[k][0], i - nodes[k][1]]; };
  const found = [];
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
    const [first] = locate(at);
    if (first.parentElement.closest('[lang]')?.getAttribute('lang') !== lang) continue;
    found.push([...needle].map((ch, i) => {
      const [node, offset] = locate(at + i);
      const range = document.createRange(); range.setStart(node, offset); range.setEnd(node, offset + 1);
      const r = range.getBoundingClientRect();
      return {ch, x: r.left, width: r.width};
    }));
  }
  return found;
}"""


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium package (apt-get install chromium)", pytrace=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    return build_files(build_issue(ISSUE))


@contextlib.contextmanager
def page_opener(browser, folder: Path, block):
    """open_(html, width, name) → page: the HTML written to `folder` and opened in a context of its
    own, each request through `block`; every context closed at the end."""
    contexts = []

    def open_(html: str, width: int, name: str = "page"):
        path = folder / f"{name}.html"
        path.write_text(html, encoding="utf-8")
        context = browser.new_context(viewport={"width": width, "height": 800})
        contexts.append(context)
        context.route("**/*", block)
        page = context.new_page()
        page.goto(path.as_uri(), wait_until="load")
        return page

    try:
        yield open_
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def open_html(browser, tmp_path):
    """open_html(html, width) → page; every request other than file: or data: is aborted and recorded."""
    attempted: list[str] = []

    def block(route):
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            attempted.append(url)
            route.abort()

    with page_opener(browser, tmp_path, block) as open_:
        open_.attempted = attempted
        yield open_


def out_of_order(chars: list[dict]) -> list[str]:
    """Adjacent characters whose x does not increase, e.g. ["'+' at 310.0 then '9' at 280.0"]."""
    return [f"{a['ch']!r} at {a['x']:.1f} then {b['ch']!r} at {b['x']:.1f}"
            for a, b in zip(chars, chars[1:]) if not b["x"] > a["x"]]


@pytest.mark.parametrize("width", [375, 600])
@pytest.mark.parametrize("variant", ["ar", "en", "bilingual"])
def test_variant_in_chromium(open_html, files, variant, width):
    page = open_html(files[f"{variant}.html"].decode("utf-8"), width, variant)

    sizes = page.evaluate("""() => ({inner: window.innerWidth, html: document.documentElement.scrollWidth,
                                     body: document.body.scrollWidth})""")
    assert sizes["html"] <= sizes["inner"] and sizes["body"] <= sizes["inner"], f"horizontal scrolling: {sizes}"

    blocks = page.evaluate(BLOCKS_JS)
    expected = {"ar": {"ar"}, "en": {"en"}, "bilingual": {"ar", "en"}}[variant]
    assert {b["lang"] for b in blocks} == expected, f"languages found: {sorted({str(b['lang']) for b in blocks})}"
    want = {"ar": ("rtl", "right"), "en": ("ltr", "left")}
    wrong = [b for b in blocks if (b["direction"], b["align"]) != want[b["lang"]]]
    assert not wrong, f"blocks with the wrong direction or alignment: {wrong}"

    if "ar" in expected:
        occurrences = page.evaluate(POSITIONS_JS, [CONTACT, "ar"])
        assert len(occurrences) >= 2, f"{CONTACT} expected in the Arabic closing and footer, found {len(occurrences)}"
        for chars in occurrences:
            assert all(c["width"] > 0 for c in chars), f"{CONTACT} not displayed: {chars}"
            assert not out_of_order(chars), f"{CONTACT} displayed out of order: {out_of_order(chars)}"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{variant}-{width}.png"), full_page=True)
    assert open_html.attempted == [], f"network requests attempted: {open_html.attempted}"


PHONE = "+966 11 234 5678"
URL = "https://example.org/path/"
SENTENCE = f"اتصلوا بنا على {PHONE} أو زوروا {URL} اليوم"


def sample_page(body: str) -> str:
    return (f'<!doctype html><html><head><meta charset="utf-8"></head>'
            f'<body style="font-family:sans-serif;font-size:16px"><p dir="rtl" lang="ar">{body}</p></body></html>')


def test_order_check_fails_without_wrapping(open_html):
    raw = open_html(sample_page(SENTENCE), 600, "raw")
    wrapped = open_html(sample_page(wrap_html(SENTENCE, "rtl")), 600, "wrapped")

    def chars(page, needle):
        found = page.evaluate(POSITIONS_JS, [needle, "ar"])
        assert len(found) == 1, f"{needle!r} found {len(found)} times"
        return {c["ch"] + str(i): c["x"] for i, c in enumerate(found[0])}, found[0]

    for needle in (PHONE, URL):
        _, ordered = chars(wrapped, needle)
        assert not out_of_order(ordered), f"wrapped {needle!r} out of order: {out_of_order(ordered)}"

    phone, _ = chars(raw, PHONE)
    url, _ = chars(raw, URL)
    plus_left_of_nine = phone["+0"] < phone["91"]
    slash_right_of_h = url[f"/{len(URL) - 1}"] > url["h0"]
    assert not (plus_left_of_nine and slash_right_of_h), "raw text displayed in order: the check cannot fail"
    assert open_html.attempted == []


# --- a letter with images -------------------------------------------------------------------------

IMAGES_JS = """() => [...document.images].map(i => ({src: i.currentSrc.slice(0, 40), complete: i.complete,
  natural: i.naturalWidth, shown: i.getBoundingClientRect().width}))"""


@pytest.fixture(scope="module")
def image_letter(tmp_path_factory):
    build = build_issue(image_issue(tmp_path_factory.mktemp("image-letter") / "project"))
    return build, build_files(build)


def as_a_mail_client_shows_it(eml: bytes) -> str:
    """The message's HTML with each cid: reference answered from the message's own image parts."""
    msg = email.message_from_bytes(eml, policy=email.policy.default)
    html = msg.get_body(("html",)).get_content()
    for part in msg.walk():
        if part.get_content_maintype() == "image":
            data = base64.b64encode(part.get_content()).decode("ascii")
            html = html.replace(f"cid:{part['Content-ID'].strip('<>')}", f"data:{part.get_content_type()};base64,{data}")
    return html


@pytest.mark.parametrize("width", [375, 600])
@pytest.mark.parametrize("variant", ["ar", "en", "bilingual"])
def test_letter_with_images_fetches_nothing_outside_the_message(open_html, tmp_path, image_letter, variant, width):
    build, files = image_letter
    for name, content in files.items():  # the build folder: the images beside the .html
        if not name.endswith((".html", ".txt", ".eml")):
            (tmp_path / name).write_bytes(content)
    pages = {
        "build folder": open_html(files[f"{variant}.html"].decode("utf-8"), width, f"{variant}-folder"),
        "message": open_html(as_a_mail_client_shows_it(files[f"{variant}.eml"]), width, f"{variant}-message"),
    }
    shown = {"ar": 1, "en": 2, "bilingual": 3}[variant]  # the photo in each language, the logo in English
    for how, page in pages.items():
        images = page.evaluate(IMAGES_JS)
        assert len(images) == shown, (how, images)
        assert all(i["complete"] and i["natural"] > 0 and 0 < i["shown"] <= width for i in images), (how, images)
        sizes = page.evaluate("() => ({inner: window.innerWidth, html: document.documentElement.scrollWidth})")
        assert sizes["html"] <= sizes["inner"], f"{how}: horizontal scrolling: {sizes}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages["message"].screenshot(path=str(SCREENSHOTS / f"images-{variant}-{width}.png"), full_page=True)
    assert open_html.attempted == [], f"requests outside the message: {open_html.attempted}"


# --- phone numbers on one line, lists counted like the sections (issue 13) ------------------------

LINKS_ISSUE = ROOT / "tests" / "fixtures" / "project" / "issues" / "links-and-lists"
FIXTURE_PHONE = "+963 11 234 5678"

# For each occurrence of `needle` in the visible text: the distinct tops of its characters' boxes.
LINES_JS = """(needle) => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const nodes = []; let text = '';
  for (let n = walker.nextNode(); n; n = walker.nextNode()) { nodes.push([n, text.length]); text += n.data; }
  const locate = i => { let k = nodes.length - 1; while (nodes[k][1] > i) k--; return [nodes[k][0], i - nodes[k][1]]; };
  const found = [];
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
    const tops = new Set();
    for (let i = 0; i < needle.length; i++) {
      if (needle[i] === ' ') continue;
      const [node, offset] = locate(at + i);
      const range = document.createRange(); range.setStart(node, offset); range.setEnd(node, offset + 1);
      tops.add(Math.round(range.getBoundingClientRect().top));
    }
    found.push([...tops]);
  }
  return found;
}"""


@pytest.fixture(scope="module")
def links_files() -> dict[str, bytes]:
    return build_files(build_issue(LINKS_ISSUE))


def without_style_blocks(html: str) -> str:
    """The HTML as a client that drops <style> shows it: inline styles only."""
    return re.sub(r"<style\b.*?</style>", "", html, flags=re.S | re.I)


@pytest.mark.parametrize("style_block", [True, False])
def test_phone_numbers_stay_on_one_line_at_320_px(open_html, links_files, style_block):
    html = links_files["ar.html"].decode("utf-8")
    if not style_block:
        html = without_style_blocks(html)
        assert "<style" not in html
    page = open_html(html, 320, f"phones-{style_block}")
    found = page.evaluate(LINES_JS, FIXTURE_PHONE)
    assert len(found) == 8
    assert all(len(tops) == 1 for tops in found), f"a phone number broken across lines: {found}"
    sizes = page.evaluate("() => ({inner: window.innerWidth, html: document.documentElement.scrollWidth})")
    assert sizes["html"] <= sizes["inner"], f"horizontal scrolling: {sizes}"
    # the check can fail: without nowrap, some of the eight numbers (each further along its line) break
    loose = open_html(html.replace("white-space:nowrap", ""), 320, f"phones-loose-{style_block}")
    assert any(len(tops) > 1 for tops in loose.evaluate(LINES_JS, FIXTURE_PHONE))
    assert open_html.attempted == []


LISTS_JS = """() => ({
  lists: [...document.querySelectorAll('ol')].map(o => ({lang: o.closest('[lang]').getAttribute('lang'),
                                                       style: getComputedStyle(o).listStyleType})),
  labels: [...document.querySelectorAll('.nl-label')].map(s => ({lang: s.closest('[lang]').getAttribute('lang'),
                                                                 text: s.textContent.trim()}))})"""


def test_arabic_lists_count_in_the_sections_digits(open_html, links_files):
    page = open_html(links_files["bilingual.html"].decode("utf-8"), 600, "lists")
    found = page.evaluate(LISTS_JS)
    styles = {item["lang"]: item["style"] for item in found["lists"]}
    labels = {item["lang"]: item["text"] for item in found["labels"]}
    assert labels["ar"][0] in "٠١٢٣٤٥٦٧٨٩" and styles["ar"] == "arabic-indic"
    assert labels["en"][0] in "0123456789" and styles["en"] == "decimal"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "lists-bilingual-600.png"), full_page=True)
    assert open_html.attempted == []


# --- images blocked, or cid: parts unresolved: no letter wider than the screen (issue 19) ---------

SCROLL_JS = """() => ({inner: window.innerWidth, html: document.documentElement.scrollWidth,
  loaded: [...document.images].filter(i => i.complete && i.naturalWidth > 0).length,
  right: Math.max(0, ...[...document.images].map(i => i.getBoundingClientRect().right))})"""
OLD_IMAGE_STYLE = re.compile(r"display:block; width:100%; max-width:\d+px")  # as premailer writes it


@pytest.fixture
def open_without_images(browser, tmp_path):
    """open_without_images(html, width, name) → page: as a client with images off shows it (every
    image request aborted), nothing fetched beyond the file itself."""

    def block(route):
        request = route.request
        if request.resource_type == "image" or not request.url.startswith(("file:", "data:")):
            route.abort()
        else:
            route.continue_()

    with page_opener(browser, tmp_path, block) as open_:
        yield open_


def message_html(eml: bytes) -> str:
    """The message's HTML as a client that does not resolve cid: parts shows it."""
    return email.message_from_bytes(eml, policy=email.policy.default).get_body(("html",)).get_content()


@pytest.mark.parametrize("width", [320, 375])
@pytest.mark.parametrize("variant", ["ar", "en", "bilingual"])
def test_no_letter_scrolls_sideways_without_its_images(open_without_images, tmp_path, files, image_letter, variant, width):
    _build, image_files = image_letter
    for name, content in image_files.items():  # the images beside the .html: requested, and refused
        if not name.endswith((".html", ".txt", ".eml")):
            (tmp_path / name).write_bytes(content)
    pages = {
        "year-end, images blocked": files[f"{variant}.html"].decode("utf-8"),
        "year-end, the message's HTML": message_html(files[f"{variant}.eml"]),
        "wide image, images blocked": image_files[f"{variant}.html"].decode("utf-8"),
        "wide image, cid: unresolved": message_html(image_files[f"{variant}.eml"]),
    }
    for n, (how, html) in enumerate(pages.items()):
        sizes = open_without_images(html, width, f"{variant}-{width}-{n}").evaluate(SCROLL_JS)
        assert sizes["loaded"] == 0, f"{how}: an image was shown: {sizes}"
        assert sizes["html"] <= sizes["inner"] and sizes["right"] <= width, f"{how}: wider than the screen: {sizes}"
    # the check can fail: the image as it was styled before (its width attribute, max-width:100%) pushes it wider
    before = OLD_IMAGE_STYLE.sub("display:block; max-width:100%", pages["wide image, cid: unresolved"])
    assert before != pages["wide image, cid: unresolved"]
    sizes = open_without_images(before, width, f"{variant}-{width}-before").evaluate(SCROLL_JS)
    assert sizes["html"] > sizes["inner"], f"the old image style did not scroll sideways: {sizes}"


# --- phone numbers in Arabic-Indic digits, titles' last words (issue 19) -------------------------

INDIC_PHONE = "+٩٦٣ ١١ ٢٣٤ ٥٦٧٨"


def displayed_in_order(page, needle: str, lang: str) -> list[str]:
    """The characters of each occurrence of `needle` (its marks aside) that do not run left to right."""
    found = page.evaluate(POSITIONS_JS, [needle, lang])
    assert found, f"{needle!r} not found"
    return [problem for chars in found for problem in out_of_order([c for c in chars if c["ch"] != "\u200e"])]


@pytest.mark.parametrize("lang", ["ar", "en"])
def test_a_phone_number_in_arabic_indic_digits_reads_left_to_right(open_html, lang):
    from newsletter.languages import ltr_digits

    held = ltr_digits(INDIC_PHONE)
    text = f"اتصلوا بنا على {INDIC_PHONE} اليوم" if lang == "ar" else f"Call us on {INDIC_PHONE} today"
    direction = "rtl" if lang == "ar" else "ltr"
    page = f'<p dir="{direction}" lang="{lang}" style="font-size:16px">{wrap_html(text, direction)}</p>'
    shown = open_html(sample_page(page), 320, f"indic-{lang}")
    assert displayed_in_order(shown, held, lang) == []
    # the check can fail: the same number in a dir="ltr" span without the marks shows its groups swapped
    bare = page.replace(held, INDIC_PHONE)
    assert displayed_in_order(open_html(sample_page(bare), 320, f"indic-bare-{lang}"), INDIC_PHONE, lang) != []
    assert open_html.attempted == []


def lone_year_widths(page) -> list[int]:
    """The phone widths (320 to 480 px) at which the title's year stands alone on its last line."""
    lone = []
    for width in range(320, 481, 4):
        page.set_viewport_size({"width": width, "height": 800})
        tops = page.evaluate(TITLE_LINES_JS)
        if tops["year"] != tops["month"]:
            lone.append(width)
    return lone


@pytest.mark.parametrize("variant", ["ar", "en"])
def test_titles_keep_the_year_with_the_month_at_every_phone_width(open_html, files, variant):
    html = files[f"{variant}.html"].decode("utf-8")
    assert lone_year_widths(open_html(html, 320, f"title-{variant}")) == []
    # the check can fail: with a plain space before the year, some width leaves it alone
    plain = re.sub("(ديسمبر|December)(\u00a0|&nbsp;|&#160;)2022", "\\1 2022", html)
    assert plain != html
    assert lone_year_widths(open_html(plain, 320, f"title-plain-{variant}")) != []
    assert open_html.attempted == []


# The tops of the title's month and year (its last two words), and of its first character.
TITLE_LINES_JS = """() => {
  const h1 = document.querySelector('h1'); const text = h1.textContent;
  const walker = document.createTreeWalker(h1, NodeFilter.SHOW_TEXT);
  const tops = []; let n;
  while ((n = walker.nextNode())) for (let i = 0; i < n.data.length; i++) {
    const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + 1);
    tops.push([n.data[i], Math.round(r.getBoundingClientRect().top)]); }
  const visible = tops.filter(([ch]) => ch.trim() && ch !== '\\u00a0');
  const year = visible.slice(-4), month = visible.slice(-5, -4);
  return {year: year[0][1], month: month[0][1], text};
}"""
