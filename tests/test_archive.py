"""The public archive and "view in browser", end to end.

A throwaway project sends the year-end letter for real (SMTP, to an aiosmtpd sink on loopback)
to a per-recipient list and then to a bilingual one: the first real campaign publishes the
issue. A rehearsal (the outbox) of another issue publishes nothing; `newsletter archive
publish` publishes it and a letter with images. `newsletter serve` (the real Starlette app on
uvicorn) answers /archive/, `newsletter archive build` writes the same site to a folder, the
feeds are read with feedparser, and the pages are opened in headless Chromium (Debian's).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import httpx
import pytest
from click.testing import CliRunner

from conftest import FIXTURES, SECRET, Project
from image_letters import image_issue
from newsletter.cli import cli
from newsletter.web.public import create_app
from smtp_sink import smtp_config, start_sink
from uvicorn_server import running

BASE = "https://news.cssrweb.org"
YEAR_END = "2022-12-year-end"
LINKS = "links-and-lists"
IMAGES = "2022-12-images"
VIEW = {"ar": "اعرض هذه الرسالة في المتصفح", "en": "View this letter in your browser"}
PEOPLE = {  # list → address → (name, language)
    "a": {"nour@example.org": ("نور", "ar"), "sami@example.net": ("سامي", "ar"), "jane@example.org": ("Jane", "en")},
    "b": {"omar@example.org": ("Omar", "en"), "huda@example.net": ("هدى", "ar")},
}
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "dist" / "screenshots"


class Site:
    def __init__(self, project: Project, sink, url: str, store):
        self.project, self.sink, self.url, self.store = project, sink, url, store

    def served(self, archive_url: str) -> str:
        assert archive_url.startswith(BASE + "/archive/"), archive_url
        return self.url + archive_url[len(BASE):]


def cli_ok(project: Project, *args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--config", str(project.config_path)], env=project.env)
    assert result.exit_code == 0, result.output
    return result.output


def set_layout(project: Project, layout: str) -> None:
    text = project.config_path.read_text(encoding="utf-8")
    text = re.sub(r'^layout = "[a-z-]+"', f'layout = "{layout}"', text, count=1, flags=re.M)
    project.config_path.write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    sink, controller = start_sink()
    root = tmp_path_factory.mktemp("archive") / "project"
    project = Project(root, extra_config=smtp_config(sink.port))
    shutil.copytree(FIXTURES / "project" / "issues" / LINKS, root / "issues" / LINKS)
    images = image_issue(root / "with-images")
    for list_name, people in PEOPLE.items():
        csv = root / f"{list_name}.csv"
        csv.write_text("email,name,language\n" + "".join(f"{a},{n},{lang}\n" for a, (n, lang) in people.items()), encoding="utf-8")
        cli_ok(project, "subscribers", "import", str(csv), "--list", list_name)
    store = project.store()
    assert store.archive.publications() == []

    # a rehearsal publishes nothing
    cli_ok(project, "send", str(root / "issues" / LINKS), "--list", "a", "--provider", "outbox", "--yes")
    assert store.archive.publications() == []
    # the first real campaign publishes the issue; the second leaves it as it is
    set_layout(project, "per-recipient")
    cli_ok(project, "send", str(project.issue), "--list", "a", "--provider", "smtp", "--yes")
    assert [p.slug for p in store.archive.publications()] == [YEAR_END]
    first = store.archive.publications()[0].updated_at
    set_layout(project, "bilingual")
    cli_ok(project, "send", str(project.issue), "--list", "b", "--provider", "smtp", "--yes")
    assert store.archive.publications()[0].updated_at == first
    # by hand
    output = cli_ok(project, "archive", "publish", str(root / "issues" / LINKS))
    assert output.startswith(f"Published {LINKS}:") and f"{BASE}/archive/{LINKS}/ar.html" in output
    cli_ok(project, "archive", "publish", str(images))

    with running(create_app(project.config(), store, SECRET.encode())) as url:
        yield Site(project, sink, url, store)
    controller.stop()
    store.close()


@pytest.fixture(scope="module")
def client(site):
    with httpx.Client(base_url=site.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def built(site, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("site") / "archive"
    output = cli_ok(site.project, "archive", "build", "--out", str(out))
    assert "(3 published issues)" in output
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}


# --- "view in browser" ---------------------------------------------------------------------------------


def links_of(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<a href="([^"]*)"[^>]*>([^<]*)</a>', html)


def test_every_message_links_its_page_which_answers_and_holds_nothing_personal(site, client):
    received = site.sink.received()
    people = {a: person for group in PEOPLE.values() for a, person in group.items()}
    assert sorted(m.rcpt_tos[0] for m in received) == sorted(people)
    for message in received:
        address = message.rcpt_tos[0]
        name, language = people[address]
        msg = message.parse()
        variant = {"ar": "ar", "en": "en", "ar,en": "bilingual"}[msg["Content-Language"]]
        assert variant == ("bilingual" if address in PEOPLE["b"] else language)
        html = msg.get_body(("html",)).get_content()
        text = msg.get_body(("plain",)).get_content()
        view = [href for href, label in links_of(html) if label == VIEW["ar" if variant == "bilingual" else variant]]
        assert len(view) == 1, f"{address}: {view}"
        url = view[0]
        assert url == f"{BASE}/archive/{YEAR_END}/{variant}.html"
        assert url in text.splitlines()[0]
        # nothing personal: not the token of the unsubscribe link, not the address or the name
        token = re.search(r"/u/([^>]+)>", str(msg["List-Unsubscribe"])).group(1)
        for personal in (token, address, address.split("@")[0], name, "/u/"):
            assert personal not in url
        response = client.get(site.served(url))
        assert response.status_code == 200, url
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in response.headers["content-security-policy"]
        if variant == "bilingual":  # and the English page beside the jump link
            (english,) = [href for href, label in links_of(html) if label == "or in your browser"]
            assert english == f"{BASE}/archive/{YEAR_END}/en.html"
            assert client.get(site.served(english)).status_code == 200


# --- the site --------------------------------------------------------------------------------------------


def test_archive_build_writes_what_serve_answers(site, client, built):
    expected = {"index.html", "index.ar.html", "index.en.html", "feed.ar.xml", "feed.en.xml"}
    for slug in (YEAR_END, LINKS, IMAGES):
        expected |= {f"{slug}/{v}.html" for v in ("ar", "en", "bilingual")}
    assert expected <= set(built)
    images = [name for name in built if name.startswith(IMAGES) and not name.endswith(".html")]
    assert len(images) == 2 and any(name.endswith(".jpg") for name in images)
    for name, content in built.items():
        response = client.get(f"/archive/{name}")
        assert response.status_code == 200, name
        assert response.content == content, name
    assert client.get("/archive/").content == built["index.ar.html"]
    assert client.get("/archive", follow_redirects=False).status_code in (301, 307, 308)
    for missing in ("/archive/nothing.html", f"/archive/{YEAR_END}/fr.html", "/archive/../newsletter.toml", f"/archive/{YEAR_END}/a/b"):
        assert client.get(missing).status_code == 404, missing


def test_the_pages_hold_no_unsubscribe_link_and_no_subscribers_address(site, built):
    addresses = [a for group in PEOPLE.values() for a in group]
    assert addresses
    for name, content in built.items():
        if not name.endswith((".html", ".xml")):
            continue
        text = content.decode("utf-8")
        assert "/u/" not in text, name
        assert "__NL_" not in text, name
        for address in (*addresses, "editor@example.org"):
            assert address not in text, (name, address)
    page = built[f"{YEAR_END}/ar.html"].decode("utf-8")
    assert "لإلغاء الاشتراك" not in page and "تصلك هذه الرسالة" not in page
    assert 'href="../index.ar.html"' in page and 'href="en.html"' in page
    assert "<script" not in page.lower()


def test_index_lists_the_published_issues_newest_first(built):
    ar = built["index.ar.html"].decode("utf-8")
    assert '<html lang="ar" dir="rtl">' in ar
    order = [m for m in re.findall(r'<h2 dir="rtl"><a href="([^"/]+)/ar.html">', ar)]
    assert order == [LINKS, IMAGES, YEAR_END]
    assert "مارس آذار 2023" in ar and "ديسمبر كانون الأول 2022" in ar
    en = built["index.en.html"].decode("utf-8")
    assert re.findall(r'<a href="([^"/]+)/en.html">', en) == [LINKS, IMAGES, YEAR_END]
    assert 'href="index.ar.html"' in en and 'href="feed.en.xml"' in en


@pytest.mark.parametrize("code", ["ar", "en"])
def test_each_feed_parses_with_one_entry_per_published_issue(built, code):
    parsed = feedparser.parse(built[f"feed.{code}.xml"])
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.language == code
    assert len(parsed.entries) == 3
    assert [e.link for e in parsed.entries] == [f"{BASE}/archive/{slug}/{code}.html" for slug in (LINKS, IMAGES, YEAR_END)]
    titles = {"ar": "تحديث نهاية العام لغرفة دعم المجتمع المدني – ديسمبر 2022",
              "en": "Civil Society Support Room Year-End Update – December 2022"}
    assert parsed.entries[-1].title == titles[code]
    assert all(e.id and e.published_parsed and e.updated_parsed and e.summary for e in parsed.entries)
    # dated by the issue (issue.toml's date = 2022-12-20), not by when the first campaign published it
    year_end = parsed.entries[-1]
    assert (year_end.published, year_end.updated) == ("2022-12-20T00:00:00Z", "2022-12-20T00:00:00Z")


def test_a_feed_entry_is_dated_by_its_issue_and_updated_only_when_its_pages_were_replaced(project):
    import datetime as dt
    import xml.etree.ElementTree as ET

    from newsletter.archive.site import ATOM_NS, feed
    from newsletter.store.archive import Publication

    at = dt.datetime(2023, 1, 9, 14, 30, tzinfo=dt.UTC)  # published three weeks after the issue's date
    details = {"ar": {"title": "رسالة", "preheader": "ملخص"}, "en": {"title": "Letter", "preheader": "Summary"}}
    kept = Publication("2022-12-year-end", dt.date(2022, 12, 20), at, at, details)
    replaced = Publication("2023-03-spring", dt.date(2023, 3, 1), at, at + dt.timedelta(days=70), details)
    root = ET.fromstring(feed(project.config(), [replaced, kept], project.config().language("en")))
    ns = {"a": ATOM_NS}
    dates = [(e.findtext("a:published", namespaces=ns), e.findtext("a:updated", namespaces=ns)) for e in root.iterfind("a:entry", ns)]
    assert dates == [("2023-03-01T00:00:00Z", "2023-03-20T14:30:00Z"), ("2022-12-20T00:00:00Z", "2022-12-20T00:00:00Z")]
    assert root.findtext("a:updated", namespaces=ns) == "2023-03-20T14:30:00Z"  # the feed's: its newest entry's


def test_publishing_again_replaces_the_pages_and_keeps_the_date(site):
    before = {p.slug: p for p in site.store.archive.publications()}
    output = cli_ok(site.project, "archive", "publish", str(site.project.root / "issues" / LINKS))
    after = {p.slug: p for p in site.store.archive.publications()}
    assert output.startswith(f"Published {LINKS}:")
    assert after[LINKS].published_at == before[LINKS].published_at
    assert after[LINKS].updated_at > before[LINKS].updated_at


def test_bad_input_names_the_file_and_exits_2(site, tmp_path):
    result = CliRunner().invoke(
        cli, ["archive", "publish", str(FIXTURES / "project" / "issues" / "missing-language"), "--config", str(site.project.config_path)],
        env=site.project.env,
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "02-outreach.en.md: missing: the English (en) counterpart of 02-outreach.ar.md" in result.output
    bad = tmp_path / "newsletter.toml"
    bad.write_text(site.project.config_path.read_text(encoding="utf-8") + '\n[archive]\nurl = "http://news.cssrweb.org/archive"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["archive", "build", "--out", str(tmp_path / "o"), "--config", str(bad)], env=site.project.env)
    assert result.exit_code == 2
    assert "archive.url: expected an https URL of printable ASCII with a host name, got 'http://news.cssrweb.org/archive'" in result.output


# --- in Chromium --------------------------------------------------------------------------------------------

PAGE_JS = """() => ({inner: window.innerWidth, width: document.documentElement.scrollWidth,
  dir: getComputedStyle(document.body).direction,
  blocks: [...document.body.querySelectorAll('p, h1, h2, li')].filter(e => e.getClientRects().length && e.textContent.trim())
    .map(e => ({lang: e.closest('[lang]')?.getAttribute('lang'), direction: getComputedStyle(e).direction}))})"""


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium package", pytrace=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.mark.browser
@pytest.mark.parametrize("width", [320, 375, 1280])
@pytest.mark.parametrize(
    ("path", "lang"),
    [("index.ar.html", "ar"), ("index.en.html", "en"), (f"{YEAR_END}/ar.html", "ar"), (f"{YEAR_END}/en.html", "en"),
     (f"{YEAR_END}/bilingual.html", "ar"), (f"{IMAGES}/ar.html", "ar"), (f"{IMAGES}/en.html", "en")],
)
def test_archive_pages_in_chromium(site, browser, path, lang, width):
    origin = site.url
    requests: list[str] = []
    context = browser.new_context(viewport={"width": width, "height": 800})
    try:
        page = context.new_page()
        page.on("request", lambda request: requests.append(request.url))
        response = page.goto(f"{origin}/archive/{path}", wait_until="load")
        assert response and response.status == 200
        found = page.evaluate(PAGE_JS)
        assert found["width"] <= found["inner"], f"sideways scrolling: {found['width']} > {found['inner']}"
        assert found["blocks"]
        want = {"ar": "rtl", "en": "ltr"}
        assert found["dir"] == want[lang]
        wrong = [b for b in found["blocks"] if b["direction"] != want[b["lang"]]]
        assert not wrong, wrong
        if path.startswith(IMAGES):
            images = page.evaluate("() => [...document.images].map(i => i.complete && i.naturalWidth > 0)")
            assert images and all(images)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"archive-{path.replace('/', '-')[:-5]}-{width}.png"), full_page=True)
    finally:
        context.close()
    elsewhere = [url for url in requests if f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" != origin]
    assert requests and elsewhere == [], elsewhere


# --- the web edition ----------------------------------------------------------------------------------------


def config_with(tmp_path: Path, extra: str = "", templates: Path | None = None) -> Path:
    root = Path(__file__).resolve().parents[1]
    text = (root / "newsletter.toml").read_text(encoding="utf-8")
    text = text.replace('layout = "bilingual"', f'layout = "bilingual"\ntemplates = "{templates or root / "templates"}"')
    path = tmp_path / "newsletter.toml"
    path.write_text(text + "\n" + extra, encoding="utf-8")
    return path


def test_the_pages_offer_the_signup_page_where_there_is_one(tmp_path):
    from conftest import YEAR_END as year_end
    from newsletter.archive.publish import web_edition
    from newsletter.letter.render import build_issue

    build = build_issue(year_end, config_with(tmp_path, '[archive]\nsignup_url = "https://cssrweb.org/subscribe"\n'))
    pages = {name: data.decode("utf-8") for name, (_type, data) in web_edition(build).items()}
    assert re.search(r'للاشتراك في هذه الرسائل: <a href="https://cssrweb.org/subscribe"[^>]*>اشترك</a>', pages["ar.html"])
    assert re.search(r'To receive these letters: <a href="https://cssrweb.org/subscribe"[^>]*>Subscribe</a>', pages["en.html"])
    assert pages["bilingual.html"].count("https://cssrweb.org/subscribe") == 2
    assert "cssrweb.org/subscribe" not in build.variants["ar"].html  # the email has its unsubscribe link


def test_a_template_that_leaves_a_placeholder_in_a_page_is_refused(site, tmp_path):
    root = Path(__file__).resolve().parents[1]
    templates = tmp_path / "templates"
    shutil.copytree(root / "templates", templates)
    source = (templates / "email.mjml.j2").read_text(encoding="utf-8")
    extra = """<mj-raw><a href="{{ placeholder('unsubscribe_url') }}">x</a></mj-raw>\n  </mj-body>"""
    (templates / "email.mjml.j2").write_text(source.replace("  </mj-body>", extra), encoding="utf-8")
    config = config_with(tmp_path, templates=templates)
    result = CliRunner().invoke(cli, ["archive", "publish", str(site.project.issue), "--config", str(config)], env=site.project.env)
    assert result.exit_code == 2, result.output
    assert f"{templates / 'email.mjml.j2'}: the web page of ar would hold the placeholder(s) unsubscribe_url" in result.output


# --- the store, on SQLite and PostgreSQL -------------------------------------------------------------------


def test_publications_in_the_store(store_url):
    import datetime as dt

    from newsletter.store import Store

    store = Store.open(store_url)
    details = {"ar": {"title": "رسالة", "preheader": "ملخص"}, "en": {"title": "Letter", "preheader": "Summary"}}
    html = ("text/html; charset=utf-8", "<p>رسالة</p>".encode())
    assert store.archive.publish("old", dt.date(2022, 1, 5), details, {"ar.html": html}, replace=False)
    assert store.archive.publish("new", dt.date(2023, 3, 1), details, {"ar.html": html, "p.jpg": ("image/jpeg", b"\xff\xd8")}, replace=False)
    version = store.archive.version()
    assert not store.archive.publish("old", dt.date(2022, 1, 5), {}, {}, replace=False)  # the first campaign's pages stay
    assert store.archive.version() == version
    assert [p.slug for p in store.archive.publications()] == ["new", "old"]
    assert store.archive.publications()[1].details == details
    assert store.archive.file("new", "p.jpg") == ("image/jpeg", b"\xff\xd8")
    assert store.archive.file("new", "en.html") is None and store.archive.file("gone", "ar.html") is None
    assert store.archive.publish("old", dt.date(2022, 1, 5), details, {"en.html": html}, replace=True)
    assert set(store.archive.files("old")) == {"en.html"}
    assert store.archive.version() != version
    store.close()
