"""`newsletter preview`: the live preview server.

In-process (Starlette's TestClient): the error page of a failing or crashing builder and its
recovery, the .eml download, escaping, the watcher and the on-demand SpamAssassin checks.

In Chromium (Debian's /usr/bin/chromium, driven by Playwright): `python -m newsletter preview
--port 0` runs as a subprocess on a copy of the year-end issue; the page shows every variant
at 600 and 375 px, picks up edits without a reload, shows problems in place of the email
until they are fixed, and keeps up with 20 edits in a row. Screenshots go to dist/screenshots/.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import queue
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from conftest import ROOT, YEAR_END, Project
from image_letters import PHOTO_ALT, image_issue, photo
from newsletter.editor.checks import run_checks
from newsletter.editor.results import CheckResult
from newsletter.errors import BadInput, Problem
from newsletter.letter.render import build_issue
from newsletter.web.preview import create_preview_app

SCREENSHOTS = ROOT / "dist" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
AR_TITLE = "تحديث نهاية العام لغرفة دعم المجتمع المدني"
EN_TEXT = "Civil Society Support Room"
SECTION = "01-working-groups.en.md"
VARIANTS = ["ar", "en", "bilingual"]


# --- in-process ---------------------------------------------------------------------------------


def summary(results) -> str:
    """The line the page prints above its table of checks."""
    errors = sum(1 for r in results if r.level == "error")
    oks = sum(1 for r in results if r.level == "ok")
    return f"{errors} failed, {len(results) - errors - oks} warnings, {oks} ok"


class Switch:
    """A builder whose outcome the test sets: a Build to return or an exception to raise."""

    def __init__(self, outcome):
        self.outcome = outcome
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def test_failing_builder_shows_problems_then_recovers(year_end_build):
    bad = BadInput([Problem("issues/x/01-a.en.md", 3, "missing title: <b>add one</b>"),
                    Problem("issues/x/issue.toml", 8, "preheader.en: expected a non-empty string, got ''")])
    builder = Switch(bad)
    app = create_preview_app(builder, lambda: [], watch=False)
    preview = app.state.preview
    client = TestClient(app)

    page = client.get("/")
    assert page.status_code == 200
    assert 'class="failed"' in page.text
    assert "issues/x/01-a.en.md:3: missing title: &lt;b&gt;add one&lt;/b&gt;" in page.text
    assert "issues/x/issue.toml:8: preheader.en: expected a non-empty string, got &#39;&#39;" in page.text
    assert "<b>add one</b>" not in page.text
    state = client.get("/state").json()
    assert state["ok"] is False and state["variants"] == []
    assert "2 problems" in state["sections"]["problems"]
    assert client.get("/variant/en.html").status_code == 404

    builder.outcome = RuntimeError("disk <on> fire")
    preview.rebuild()
    page = client.get("/")
    assert page.status_code == 200
    assert "RuntimeError: disk &lt;on&gt; fire" in page.text
    assert "Traceback" in page.text
    assert client.get("/state").json()["generation"] == state["generation"] + 1

    builder.outcome = year_end_build
    preview.rebuild()
    state = client.get("/state").json()
    assert state["ok"] is True and state["variants"] == VARIANTS and state["sections"]["problems"] == ""
    assert sorted(state["frames"]) == sorted(VARIANTS) and len(set(state["frames"].values())) == 3
    page = client.get("/")
    assert 'class="failed"' not in page.text
    for name in VARIANTS:
        for width in (600, 375):
            assert f'data-variant="{name}" data-width="{width}"' in page.text
    framed = client.get("/variant/en.html")
    assert framed.status_code == 200 and EN_TEXT in framed.text
    assert "__NL_" not in framed.text, "placeholders not filled with the preview values"
    assert "https://news.example.org/u/preview" in framed.text

    # The last good build stays served while a later build fails.
    builder.outcome = bad
    preview.rebuild()
    assert client.get("/state").json()["ok"] is False
    assert client.get("/variant/en.html").status_code == 200
    assert builder.calls == 4


def test_eml_download_headers(year_end_build):
    client = TestClient(create_preview_app(Switch(year_end_build), lambda: [], watch=False))
    for name in VARIANTS:
        response = client.get(f"/variant/{name}.eml")
        assert response.status_code == 200
        assert response.headers["content-type"] == "message/rfc822"
        assert response.headers["content-disposition"] == f'attachment; filename="2022-12-year-end-{name}.eml"'
        assert response.headers["cache-control"] == "no-store"
        message = email.message_from_bytes(response.content, policy=email.policy.default)
        assert message["To"] == year_end_build.config.preview_to
        assert message["Subject"] == year_end_build.variants[name].subject
        assert message.get_content_type() == "multipart/alternative"
    html = client.get("/variant/ar.html")
    assert html.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in html.headers["content-security-policy"]
    assert "content-disposition" not in html.headers
    text = client.get("/variant/ar.txt")
    assert text.headers["content-type"] == "text/plain; charset=utf-8" and AR_TITLE in text.text
    assert client.get("/variant/fr.eml").status_code == 404
    assert client.get("/variant/en.exe").status_code == 404


def test_subject_and_preheader_escaped(year_end_build):
    subject = "<script>alert('subject')</script> & co"
    preheader = '<img src=x onerror="alert(1)">'
    letters = dict(year_end_build.letters)
    letters["en"] = dataclasses.replace(letters["en"], subject=subject, preheader=preheader)
    build = dataclasses.replace(year_end_build, letters=letters)
    client = TestClient(create_preview_app(Switch(build), lambda: [], watch=False))

    page = client.get("/")
    assert page.status_code == 200
    assert "&lt;script&gt;alert(&#39;subject&#39;)&lt;/script&gt; &amp; co" in page.text
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page.text
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    # The page's only script is its own file, and its policy forbids inline ones.
    assert page.text.count("<script") == 1 and '<script src="/preview.js">' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    inbox = client.get("/state").json()["sections"]["inbox"]
    assert "<script>" not in inbox and "&lt;script&gt;" in inbox


def test_the_page_shows_each_variants_inbox_line_as_sent_near_its_top(year_end_build):
    client = TestClient(create_preview_app(Switch(year_end_build), lambda: [], watch=False))
    page = client.get("/").text
    assert page.index('id="inbox"') < page.index('id="email"')
    for name, variant in year_end_build.variants.items():
        assert f"subject ({name}, as sent):</b> <bdi class=\"subject\" dir=\"{variant.dir}\" lang=\"{variant.lang}\">{variant.subject}</bdi>" in page
        assert f"preheader ({name}, as sent):</b>" in page
    assert "shortened to fit" not in page
    # without issue.toml's bilingual line, the joined one is shortened: the page says so and how to choose
    letters = {code: dataclasses.replace(x, bilingual_subject=None) for code, x in year_end_build.letters.items()}
    client = TestClient(create_preview_app(Switch(dataclasses.replace(year_end_build, letters=letters)), lambda: [], watch=False))
    page = client.get("/").text
    assert "subject (bilingual, as sent):</b>" in page and "تحديث نهاية العام… – ديسمبر 2022 | Year-End Update – December 2022" in page
    assert "subject (bilingual) shortened to fit 70 characters: each language&#39;s joined make 117; write subject.bilingual" in page


def test_watcher_rebuilds_on_change(tmp_path, year_end_build):
    folder = tmp_path / "issue"
    folder.mkdir()
    (folder / "a.md").write_text("1", encoding="utf-8")
    config = tmp_path / "newsletter.toml"
    config.write_text("x = 1\n", encoding="utf-8")
    builder = Switch(year_end_build)
    with TestClient(create_preview_app(builder, lambda: [folder, config], interval=0.05)) as client:
        def wait_for(calls: int) -> None:
            deadline = time.monotonic() + 5
            while builder.calls < calls and time.monotonic() < deadline:
                time.sleep(0.02)
            assert builder.calls == calls, f"expected {calls} builds, got {builder.calls}"

        assert builder.calls == 1
        (folder / "a.md").write_text("22", encoding="utf-8")  # every write changes the size too
        wait_for(2)
        (folder / "b.md").write_text("new", encoding="utf-8")
        wait_for(3)
        (folder / "b.md").unlink()
        wait_for(4)
        config.write_text("x = 22\n", encoding="utf-8")
        wait_for(5)
        builder.outcome = BadInput([Problem("issue/a.md", 1, "broken")])
        (folder / "a.md").write_text("333", encoding="utf-8")
        wait_for(6)
        assert client.get("/state").json()["ok"] is False
        (folder / ".a.md.swp").write_text("editor swap file", encoding="utf-8")
        (folder / "a.md~").write_text("backup", encoding="utf-8")
        time.sleep(0.4)
        assert builder.calls == 6, "editor swap and backup files must not trigger a rebuild"


def test_full_checks_on_demand(year_end_build, monkeypatch):
    import newsletter.editor.spam

    calls = []

    def fake_spamassassin(message: bytes, timeout: float = 60):
        calls.append(len(message))
        return 7.5, [(7.5, "FAKE_RULE")]

    monkeypatch.setattr(newsletter.editor.spam, "spamassassin_score", fake_spamassassin)
    client = TestClient(create_preview_app(Switch(year_end_build), lambda: [], watch=False))
    assert calls == [], "the page's own checks must not run SpamAssassin"
    page = client.get("/")
    assert 'href="/checks?spamassassin=1"' in page.text and "FAKE_RULE" not in page.text
    quick = client.get("/checks")
    assert calls == [], "the quick checks must not run SpamAssassin"
    quick_results = run_checks(year_end_build, spamassassin=False)
    assert quick.status_code == 200 and "FAKE_RULE" not in quick.text and summary(quick_results) in quick.text
    full = client.get("/checks?spamassassin=1")
    assert full.status_code == 200
    assert len(calls) == 3
    assert full.text.count("FAKE_RULE 7.5") == 3
    fake = [CheckResult("spamassassin", "error", "", name) for name in VARIANTS]
    assert summary(quick_results + fake) in full.text


def test_preview_serves_the_images_by_file_name(tmp_path):
    issue = image_issue(tmp_path / "project")
    builder = Switch(build_issue(issue))
    app = create_preview_app(builder, lambda: [], watch=False)
    client = TestClient(app)
    framed = client.get("/variant/en.html")
    assert 'src="visit.jpg"' in framed.text and 'src="logo.png"' in framed.text and "cid:" not in framed.text
    policy = framed.headers["content-security-policy"]
    assert "img-src 'self' data:;" in policy and "http" not in policy and "*" not in policy
    image = client.get("/variant/visit.jpg")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content == builder.outcome.variants["en"].images[0].data
    assert client.get("/variant/logo.png").headers["content-type"] == "image/png"
    assert client.get("/variant/other.jpg").status_code == 404
    sections = client.get("/state").json()["sections"]
    assert "2 images" in sections["vhead-en"] and "1 image " in sections["vhead-ar"]

    # An edited image keeps its file name: the frames reload all the same.
    frames = client.get("/state").json()["frames"]
    photo(issue / "visit.jpg", (800, 600), seed=2)
    builder.outcome = build_issue(issue)
    app.state.preview.rebuild()
    assert client.get("/variant/visit.jpg").content == builder.outcome.variants["en"].images[0].data
    changed = client.get("/state").json()["frames"]
    assert all(changed[name] != frames[name] for name in VARIANTS)


# --- in Chromium, against `newsletter preview` in a subprocess -----------------------------------


FRAME_HAS = """([selector, text]) => {
  const frame = document.querySelector(selector);
  const doc = frame && frame.contentDocument;
  return !!(doc && doc.body && doc.body.textContent.includes(text));
}"""

FRAME_SIZES = """(selector) => {
  const frame = document.querySelector(selector);
  const doc = frame.contentDocument;
  return {inner: frame.contentWindow.innerWidth, scroll: doc.documentElement.scrollWidth,
          height: frame.getBoundingClientRect().height, text: doc.body.textContent};
}"""


def frame(variant: str, width: int) -> str:
    return f'iframe.email[data-variant="{variant}"][data-width="{width}"]'


class Served:
    def __init__(self, project: Project, proc: subprocess.Popen, url: str, log: Path, page, attempted: list[str]):
        self.project, self.proc, self.url, self.log, self.page, self.attempted = project, proc, url, log, page, attempted
        self.section = project.issue / SECTION
        self.original = self.section.read_text(encoding="utf-8")

    def wait_in_frame(self, selector: str, text: str, timeout: float = 10) -> float:
        """Seconds until `text` shows in the frame; fails after `timeout`."""
        started = time.monotonic()
        self.page.wait_for_function(FRAME_HAS, arg=[selector, text], polling=25, timeout=timeout * 1000)
        return time.monotonic() - started

    def append(self, sentence: str) -> None:
        with self.section.open("a", encoding="utf-8") as handle:
            handle.write(f"\n{sentence}\n")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium package (apt-get install chromium)", pytrace=False)
    from playwright.sync_api import sync_playwright

    project = Project(tmp_path_factory.mktemp("preview") / "project")
    project.issue.unlink()  # Project links the repository's issue: edit a copy instead
    shutil.copytree(YEAR_END, project.issue)
    log = project.root / "preview.log"
    with log.open("w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "preview", "issues/2022-12-year-end", "--port", "0",
             "--config", str(project.config_path)],
            cwd=project.root, env=project.env, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        url = None
        deadline = time.monotonic() + 20
        while url is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                assert proc.poll() is None, f"preview exited with {proc.returncode}:\n{log.read_text()}"
                continue
            if line.startswith("Preview: "):
                url = line.removeprefix("Preview: ").strip()
        assert url and url.startswith("http://127.0.0.1:") and url.endswith("/"), f"no URL printed:\n{log.read_text()}"

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            context = browser.new_context(viewport={"width": 1560, "height": 1000})
            attempted: list[str] = []

            def local_only(route):
                if route.request.url.startswith(url):
                    route.continue_()
                else:
                    attempted.append(route.request.url)
                    route.abort()

            context.route("**/*", local_only)
            page = context.new_page()
            page.goto(url, wait_until="load")
            yield Served(project, proc, url, log, page, attempted)
            context.close()
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.browser
def test_preview_shows_every_variant_at_both_widths(served):
    page = served.page
    expected = {"ar": [AR_TITLE], "en": [EN_TEXT], "bilingual": [AR_TITLE, EN_TEXT]}
    for variant, texts in expected.items():
        for width in (600, 375):
            for text in texts:
                served.wait_in_frame(frame(variant, width), text)
            sizes = page.evaluate(FRAME_SIZES, frame(variant, width))
            assert sizes["inner"] == width, f"{variant} frame is {sizes['inner']} px wide inside, not {width}"
            assert sizes["scroll"] <= width, f"{variant} at {width} px scrolls sideways: {sizes}"
            assert sizes["height"] > 300, f"{variant} at {width} px: frame not fitted to its email: {sizes}"
    assert AR_TITLE not in page.evaluate(FRAME_SIZES, frame("en", 600))["text"]

    texts = {name: page.locator(f"#text-{name}") for name in expected}
    assert texts["ar"].get_attribute("dir") == "auto" and AR_TITLE in texts["ar"].inner_text()
    assert EN_TEXT in texts["en"].inner_text()
    rows = page.locator(".inbox-desktop .inbox-row")
    assert rows.count() == 3  # ar, en and bilingual, as each is sent
    en_row = page.locator('.inbox-desktop .inbox-row[data-variant="en"]')
    assert en_row.locator(".sender").inner_text() == EN_TEXT
    assert "Year-End Update" in en_row.locator("b.subject").inner_text()
    assert en_row.locator(".line").evaluate("e => getComputedStyle(e).textOverflow") == "ellipsis"
    assert en_row.locator(".line").evaluate("e => e.scrollWidth > e.clientWidth"), "the preheader should be cut on one line"
    assert page.locator('.inbox-desktop .inbox-row[data-variant="ar"]').get_attribute("dir") == "rtl"
    both = page.locator('.as-sent-row[data-variant="bilingual"]')
    assert both.inner_text().startswith("subject (bilingual, as sent): تحديث نهاية العام – ديسمبر 2022 | Year-End")
    assert both.locator(".warn").count() == 0  # issue.toml gives the bilingual line
    assert "KB" in page.locator("#vhead-bilingual").inner_text()
    assert page.locator('a[href="/variant/en.eml"]').count() == 1
    assert page.locator("#checks .summary").inner_text() == summary(run_checks(build_issue(served.project.issue, served.project.config_path), spamassassin=False))
    assert served.attempted == [], f"the page tried the network: {served.attempted}"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "preview-page.png"), full_page=True)
    page.evaluate("() => { document.querySelector('header').style.position = 'static'; }")  # not across the stitched shot
    page.locator("#variant-en").screenshot(path=str(SCREENSHOTS / "preview-en-frames.png"))
    page.locator("#variant-ar").screenshot(path=str(SCREENSHOTS / "preview-ar-frames.png"))
    page.evaluate("() => { document.querySelector('header').style.position = ''; }")


@pytest.mark.browser
def test_edit_shows_without_reload(served, capsys):
    page = served.page
    page.evaluate("() => { window.__noReload = true; }")
    mark = "(sel) => { document.querySelector(sel).contentDocument.body.dataset.mark = 'kept'; }"
    marked = "(sel) => document.querySelector(sel).contentDocument.body.dataset.mark === 'kept'"
    for variant in VARIANTS:
        page.evaluate(mark, frame(variant, 600))
    sentence = f"Preview check {uuid.uuid4().hex}."
    served.append(sentence)
    took = served.wait_in_frame(frame("en", 600), sentence)
    served.wait_in_frame(frame("en", 375), sentence)
    served.wait_in_frame(frame("bilingual", 600), sentence)
    page.wait_for_function("(s) => document.getElementById('text-en').textContent.includes(s)", arg=sentence, timeout=5000)
    assert page.evaluate("() => window.__noReload === true"), "the page reloaded"
    assert page.evaluate(marked, frame("ar", 600)), "the ar frame was reloaded though its email did not change"
    assert not page.evaluate(marked, frame("en", 600)) and not page.evaluate(marked, frame("bilingual", 600))
    with capsys.disabled():
        print(f"\npreview: first edit visible after {took * 1000:.0f} ms")


@pytest.mark.browser
def test_problem_shown_then_preview_returns(served):
    page = served.page
    page.evaluate("() => { window.__noReload = true; }")
    problems = page.locator("#problems")
    email_section = page.locator("#email")
    untitled = served.original.split("---\n", 2)[2]  # the front matter (the title) taken out
    assert "title:" not in untitled
    served.section.write_text(untitled, encoding="utf-8")
    page.wait_for_selector("#problems", state="visible", timeout=10_000)
    text = problems.inner_text()
    assert f"issues/2022-12-year-end/{SECTION}: missing title" in text, text
    assert not email_section.is_visible(), "the email is still shown beside the problems"
    page.screenshot(path=str(SCREENSHOTS / "preview-problems.png"), full_page=False)

    toml = served.project.issue / "issue.toml"
    good_toml = toml.read_text(encoding="utf-8")
    toml.write_text(good_toml.replace("date = 2022-12-20", "date = 2022-12-"), encoding="utf-8")
    page.wait_for_function("() => document.getElementById('problems').textContent.includes('issue.toml')", timeout=10_000)
    toml.write_text(good_toml, encoding="utf-8")

    served.section.write_text(served.original, encoding="utf-8")
    page.wait_for_selector("#problems", state="hidden", timeout=10_000)
    served.wait_in_frame(frame("en", 600), "Update on the thematic working\u00a0groups")  # its last words kept together
    assert email_section.is_visible()
    assert problems.inner_text().strip() == ""
    assert page.evaluate("() => window.__noReload === true"), "the page reloaded"


@pytest.mark.browser
def test_twenty_edits_in_a_row(served, capsys):
    latencies = []
    for n in range(20):
        sentence = f"Edit {n + 1} of twenty, {uuid.uuid4().hex}."
        started = time.monotonic()
        served.append(sentence)
        served.wait_in_frame(frame("en", 600), sentence, timeout=10)
        latencies.append(time.monotonic() - started)
    assert len(latencies) == 20
    frame_text = served.page.evaluate(FRAME_SIZES, frame("en", 600))["text"]
    assert frame_text.count("of twenty, ") == 20
    with capsys.disabled():
        print(f"\npreview: 20 edits, latency median {statistics.median(latencies) * 1000:.0f} ms, "
              f"max {max(latencies) * 1000:.0f} ms, min {min(latencies) * 1000:.0f} ms")
    served.page.screenshot(path=str(SCREENSHOTS / "preview-after-edits.png"), full_page=False)
    assert served.proc.poll() is None, "the preview server stopped"
    log = served.log.read_text(encoding="utf-8")
    assert "Traceback" not in log, log
    assert served.attempted == [], f"the page tried the network: {served.attempted}"


IMAGE_SHOWN = """([selector, alt]) => {
  const doc = document.querySelector(selector).contentDocument;
  const img = doc && [...doc.images].find(i => i.alt === alt);
  return !!(img && img.complete && img.naturalWidth > 0);
}"""


@pytest.mark.browser
def test_an_image_added_to_the_issue_shows_in_the_preview(served):
    photo(served.project.issue / "visit.jpg", (1600, 1000))
    served.append(f"![{PHOTO_ALT['en']}](visit.jpg)")
    for variant in ("en", "bilingual"):
        for width in (600, 375):
            served.page.wait_for_function(IMAGE_SHOWN, arg=[frame(variant, width), PHOTO_ALT["en"]], timeout=10_000)
            sizes = served.page.evaluate(FRAME_SIZES, frame(variant, width))
            assert sizes["scroll"] <= width, f"{variant} at {width} px scrolls sideways: {sizes}"
    assert "1 image " in served.page.locator("#vhead-en").inner_text()
    served.page.locator("#variant-en").screenshot(path=str(SCREENSHOTS / "preview-en-image.png"))
    assert served.attempted == [], f"the page tried the network: {served.attempted}"
