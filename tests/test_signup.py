"""Joining by oneself, end to end: `newsletter serve`'s sign-up form on a real uvicorn server on
loopback, its confirmation messages sent through the SMTP provider to an aiosmtpd sink, the
project's own SQLite store, and (for the whole walk) headless Chromium through Playwright.

The store's clock is the one thing set by the tests (to step over the 10 minutes between two
confirmation messages and the 7 days a link lasts); the rate limits are the shipped defaults.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from conftest import SECRET, Project
from hypothesis import given, settings
from hypothesis import strategies as st
from serve_process import Clock, signup_config
from smtp_sink import smtp_sink  # noqa: F401 - fixture
from sqlalchemy import func, select
from uvicorn_server import running

from newsletter.audience.signup import SignupForm, clean_name, read_form
from newsletter.cli import cli
from newsletter.domain import NewSubscriber
from newsletter.store import Store
from newsletter.store import tables as t
from newsletter.keys import TokenSigner
from newsletter.web.public import create_app
from newsletter.web.answers import form_fields
from store_helpers import count_signups, set_status

BASE_URL = "https://news.cssrweb.org"
SECRET_BYTES = SECRET.encode()
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "dist" / "screenshots"
CONFIRM = re.compile(r"https://news\.cssrweb\.org(/confirm/[A-Za-z0-9_-]+)")


CONSENT_VERSION = 'consent_version = "2023-01"\n'


class Site:
    def __init__(self, project: Project, store: Store, url: str, sink, clock: Clock):
        self.project, self.store, self.url, self.sink, self.clock = project, store, url, sink, clock

    def post(self, client: httpx.Client, email_address: str, *, lang: str = "ar", choice: str | None = None,
             name: str = "", website: str = "", client_ip: str | None = None) -> httpx.Response:
        fields = {"form_language": lang, "email": email_address, "name": name, "language": choice or lang,
                  "consent": "yes", "website": website}
        headers = {"X-Forwarded-For": client_ip} if client_ip else {}
        return client.post(f"{self.url}/subscribe", data=fields, headers=headers)

    def messages(self, wait_for: int = 0, timeout: float = 10) -> list:
        """What the sink received, after waiting (up to `timeout`) for at least `wait_for` messages."""
        import time

        deadline = time.monotonic() + timeout
        while self.sink.count() < wait_for and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.sink.received()

    def link(self, message) -> str:
        """The confirmation link of a message, pointed at the test server."""
        text = message.parse().get_body(("plain",)).get_content()
        found = CONFIRM.findall(text)
        assert len(set(found)) == 1, text
        return self.url + found[0]

    def person(self, address: str):
        return self.store.subscribers.by_email(address)

    def pending(self) -> int:
        return count_signups(self.store)

    def cli(self, *args: str):
        return CliRunner().invoke(cli, [*args, "--config", str(self.project.config_path)], env=self.project.env)


@pytest.fixture
def site(tmp_path, secret_env, smtp_sink):  # noqa: F811 - the fixture
    sink = smtp_sink()
    project = Project(tmp_path / "p", extra_config=signup_config(sink.port, CONSENT_VERSION))
    # per-recipient: each reader gets the language they chose
    text = project.config_path.read_text(encoding="utf-8").replace('layout = "bilingual"', 'layout = "per-recipient"', 1)
    project.config_path.write_text(text, encoding="utf-8")
    clock = Clock()
    store = Store.open(project.config().store_url, now=clock)
    with running(create_app(project.config(), store, SECRET_BYTES)) as url:
        yield Site(project, store, url, sink, clock)
    store.close()


@pytest.fixture
def client():
    with httpx.Client(timeout=30) as c:
        yield c


# --- the form ---------------------------------------------------------------------------------------


def test_the_form_in_both_languages_arabic_first_or_the_one_asked_for(site, client):
    page = client.get(f"{site.url}/subscribe")
    assert page.status_code == 200
    html = page.text
    assert html.index('lang="ar" dir="rtl"') < html.index('lang="en" dir="ltr"')
    assert html.count('action="/subscribe"') == 2 and html.count('name="website"') == 2
    assert "<script" not in html and "http://" not in html.replace(site.url, "")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "أوافق على أن تصلني رسائل" in html and "I agree to receive the letters of" in html
    # the archive's pages offer this form when [archive] names no other
    assert site.project.config().archive.signup_url == f"{BASE_URL}/subscribe"
    english = client.get(f"{site.url}/subscribe?lang=en").text
    assert 'dir="rtl"' not in english.split("<main", 1)[1] and 'lang="en" dir="ltr"' in english


def test_a_form_without_consent_or_address_is_shown_again_and_nothing_happens(site, client):
    response = client.post(f"{site.url}/subscribe", data={"form_language": "en", "email": "not an address", "name": "X"})
    assert response.status_code == 400
    assert "Please check the email address" in response.text and "tick the consent sentence" in response.text
    assert 'value="not an address"' in response.text
    assert site.pending() == 0 and site.messages() == []


# --- confirming ---------------------------------------------------------------------------------------


def test_get_on_the_link_changes_nothing_and_post_confirms_with_consent(site, client):
    assert site.post(client, "Salma@Example.org", name="سلمى", choice="both").status_code == 200
    [message] = site.messages(wait_for=1)
    link = site.link(message)
    for _ in range(2):  # a link scanner's GET, then the person's
        page = client.get(link)
        assert page.status_code == 200 and "S•••@example.org" in page.text and "<form" in page.text
    assert site.person("salma@example.org") is None and site.pending() == 1

    done = client.post(link)
    assert done.status_code == 200 and "بالعربية والإنجليزية معًا" in done.text
    person = site.person("salma@example.org")
    assert (person.status, person.language, person.name) == ("active", "both", "سلمى")
    record = site.store.reports.person("salma@example.org", SECRET_BYTES)
    assert record.lists == ["partners"] and record.consent_version == "2023-01"
    assert record.consent_source == "sign-up form"
    assert abs(record.consent_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert site.pending() == 0
    # the same link again: used, nothing changes
    again = client.post(link)
    assert again.status_code == 404 and "used already" in again.text


def test_a_tampered_or_expired_link_changes_nothing_and_says_so(site, client):
    site.post(client, "amal@example.org", lang="en")
    link = site.link(site.messages(wait_for=1)[0])
    token = link.rsplit("/", 1)[1]
    tampered = link[: -len(token)] + ("A" if token[0] != "A" else "B") + token[1:]
    for method in (client.get, client.post):
        response = method(tampered)
        assert response.status_code == 404 and "not valid; nothing was changed" in response.text
        assert "هذا الرابط غير صالح" in response.text
    assert site.person("amal@example.org") is None and site.pending() == 1

    site.clock.offset = dt.timedelta(days=7, seconds=1)
    for method in (client.get, client.post):
        response = method(link)
        assert response.status_code == 410 and "This link has expired; nothing was changed" in response.text
        assert 'href="/subscribe?lang=en"' in response.text
    assert site.person("amal@example.org") is None


def test_one_confirmation_message_per_address_per_ten_minutes(site, client):
    for _ in range(2):
        assert site.post(client, "omar@example.org", lang="en").status_code == 200
    assert len(site.messages(wait_for=2, timeout=2)) == 1
    site.clock.offset = dt.timedelta(minutes=10, seconds=1)
    site.post(client, "omar@example.org", lang="en")
    assert len(site.messages(wait_for=2)) == 2
    first, second = (site.link(m) for m in site.messages())
    assert client.post(first).status_code == 404  # replaced by the newer link
    assert client.post(second).status_code == 200 and site.person("omar@example.org").status == "active"


def test_known_unknown_and_suppressed_addresses_get_the_same_bytes_and_the_forgotten_nothing(site, client):
    site.store.subscribers.import_rows([NewSubscriber("known@example.org", "K", "en")], "partners", SECRET_BYTES)
    site.store.subscribers.import_rows([NewSubscriber("gone@example.org", "G", "en")], "partners", SECRET_BYTES)
    assert site.cli("subscribers", "forget", "gone@example.org").exit_code == 0
    responses = [site.post(client, address, lang="en") for address in
                 ("known@example.org", "new@example.org", "gone@example.org")]
    assert {r.status_code for r in responses} == {200}
    assert responses[0].content == responses[1].content == responses[2].content
    headers = [{k: v for k, v in r.headers.items() if k not in ("date",)} for r in responses]
    assert headers[0] == headers[1] == headers[2]
    received = site.messages(wait_for=2)
    import time

    time.sleep(0.5)  # anything late for the forgotten address would be here by now
    assert sorted(m.rcpt_tos[0] for m in site.messages()) == ["known@example.org", "new@example.org"]
    assert len(received) == 2
    subjects = {m.rcpt_tos[0]: str(m.parse()["Subject"]) for m in received}  # only the mailbox learns which
    assert subjects["known@example.org"].startswith("You are already subscribed")
    assert subjects["new@example.org"].startswith("Confirm your subscription")
    assert site.store.reports.person("gone@example.org", SECRET_BYTES) is None  # nothing of them was kept


def test_an_unsubscribed_person_comes_back_only_by_confirming(site, client):
    site.store.subscribers.import_rows([NewSubscriber("left@example.org", "L", "en")], "partners", SECRET_BYTES)
    set_status(site.store, site.person("left@example.org").id, "unsubscribed")
    site.post(client, "left@example.org", lang="en")
    assert site.person("left@example.org").status == "unsubscribed"
    client.post(site.link(site.messages(wait_for=1)[0]))
    assert site.person("left@example.org").status == "active"


# --- bots -----------------------------------------------------------------------------------------------


def test_robots_meet_the_honeypot_and_one_networks_limit(site, client):
    # a form-filling robot: every field filled, the honeypot too: answered as a success, nothing happens
    codes = [site.post(client, f"bot{n}@example.org", lang="en", website="https://spam.example", name="Bot").status_code
             for n in range(50)]
    assert codes == [200] * 50
    # a cleverer one, honeypot empty, from 40 addresses of one IPv4 /24, to 40 domains: one client
    answers = [site.post(client, f"clever{n}@d{n}.example", lang="en", client_ip=f"198.51.100.{n}")
               for n in range(40)]
    codes = [a.status_code for a in answers]
    print(f"one /24, 40 addresses: {codes.count(200)} answered 200, {codes.count(429)} answered 429")
    assert codes == [200] * 10 + [429] * 30  # per_client: 10 in 10 minutes, per network
    assert all(0 < int(a.headers["retry-after"]) <= 600 for a in answers[10:])
    assert "Too many sign-ups" in answers[-1].text
    received = site.messages(wait_for=10)
    import time

    time.sleep(0.5)  # anything more would be here by now
    assert sorted(m.rcpt_tos[0] for m in site.messages()) == sorted(f"clever{n}@d{n}.example" for n in range(10))
    assert len(received) == 10 and site.pending() == 10
    # a visitor from elsewhere is not held up by any of it
    assert site.post(client, "visitor@example.net", lang="en", client_ip="203.0.113.9").status_code == 200
    assert site.messages(wait_for=11)[-1].rcpt_tos == ("visitor@example.net",)


def test_someone_on_the_list_who_signs_up_again_is_told_so_once_per_ten_minutes(site, client):
    site.post(client, "rana@example.org", lang="en", choice="ar")
    assert client.post(site.link(site.messages(wait_for=1)[0])).status_code == 200
    person = site.person("rana@example.org")
    assert (person.status, person.language) == ("active", "ar")
    # right after confirming, twice: the confirmation was this window's one message
    for _ in range(2):
        assert site.post(client, "Rana@Example.org", lang="en").status_code == 200
    import time

    time.sleep(0.5)
    assert len(site.messages()) == 1 and site.pending() == 0

    site.clock.offset = dt.timedelta(minutes=10, seconds=1)
    again = site.post(client, "rana@example.org", lang="en")
    new = site.post(client, "someone.new@example.org", lang="en")
    assert again.status_code == new.status_code == 200 and again.content == new.content  # the page tells nothing
    [notice] = [m for m in site.messages(wait_for=3)[1:] if m.rcpt_tos == ("rana@example.org",)]
    parsed = notice.parse()
    assert str(parsed["Subject"]).startswith("أنت مشترك من قبل") and parsed["Content-Language"] == "ar"  # her language
    text = parsed.get_body(("plain",)).get_content()
    page = f"/u/{TokenSigner(SECRET_BYTES).make(person.token_key)}"
    assert f"{BASE_URL}{page}" in text and "/confirm/" not in text
    assert client.get(site.url + page).status_code == 200  # her own page: leave, or change the language
    assert site.person("rana@example.org").status == "active" and site.pending() == 1  # only the newcomer's
    assert site.post(client, "rana@example.org", lang="en").status_code == 200
    time.sleep(0.5)
    assert len(site.messages()) == 3  # one message per window


def test_bodies_past_the_limit_are_refused(site, client):
    response = client.post(f"{site.url}/subscribe", content=b"email=" + b"a" * 20000,
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413 and site.pending() == 0


# --- preferences -----------------------------------------------------------------------------------------


def test_the_preferences_page_changes_the_language_by_post_only(site, client):
    site.store.subscribers.import_rows([NewSubscriber("nour@example.org", "نور", "ar")], "partners", SECRET_BYTES)
    token = TokenSigner(SECRET_BYTES).make(site.person("nour@example.org").token_key)
    page = client.get(f"{site.url}/u/{token}")
    assert page.status_code == 200 and f'action="/u/{token}/language"' in page.text
    assert "تصلك الرسائل بالعربية" in page.text
    assert client.get(f"{site.url}/u/{token}/language").status_code == 405
    assert site.person("nour@example.org").language == "ar"
    saved = client.post(f"{site.url}/u/{token}/language", data={"language": "en"})
    assert saved.status_code == 200 and "the next letter will reach you in English" in saved.text
    assert site.person("nour@example.org").language == "en"
    refused = client.post(f"{site.url}/u/{token}/language", data={"language": "fr"})
    assert refused.status_code == 200 and site.person("nour@example.org").language == "en"
    forged = client.post(f"{site.url}/u/{token[:-2]}AA/language", data={"language": "ar"})
    assert forged.status_code == 404 and site.person("nour@example.org").language == "en"


# --- the form to embed ---------------------------------------------------------------------------------------


class Fields(HTMLParser):
    """The fields a browser would post from the first form of a page."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a["action"], "fields": {}})
        elif tag == "input" and self.forms and a.get("type") not in ("radio", "checkbox"):
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")
        elif tag == "input" and (a.get("checked") is not None or a.get("type") == "checkbox"):
            self.forms[-1]["fields"][a["name"]] = a["value"]


def test_signup_form_prints_a_plain_form_that_posts_to_serve(site, client):
    result = site.cli("signup-form")
    assert result.exit_code == 0, result.output
    html = result.output
    assert "<script" not in html and "<link" not in html and "<img" not in html and "<style" not in html
    parser = Fields()
    parser.feed(html)
    assert [form["action"] for form in parser.forms] == [f"{BASE_URL}/subscribe"] * 2
    fields = parser.forms[1]["fields"] | {"email": "embedded@example.org"}
    assert fields["website"] == "" and fields["form_language"] == "en" and fields["consent"] == "yes"
    response = client.post(f"{site.url}/subscribe", data=fields)
    assert response.status_code == 200 and "Check your inbox" in response.text
    assert site.messages(wait_for=1)[0].rcpt_tos == ("embedded@example.org",)
    only = site.cli("signup-form", "--lang", "ar")
    assert only.output.count("<form") == 1 and 'dir="rtl"' in only.output
    bad = site.cli("signup-form", "--lang", "fr")
    assert bad.exit_code == 2 and "'fr' is not one of ar, en" in bad.output


def test_without_signup_there_is_no_form(tmp_path, secret_env, client):
    project = Project(tmp_path / "q")
    store = project.store()
    with running(create_app(project.config(), store, SECRET_BYTES)) as url:
        assert client.get(f"{url}/subscribe").status_code == 404
    result = CliRunner().invoke(cli, ["signup-form", "--config", str(project.config_path)], env=project.env)
    assert result.exit_code == 2 and "add a [signup] table" in result.output


# --- show and export ---------------------------------------------------------------------------------------


def test_show_and_export_tell_the_consent(site, client):
    site.post(client, "hala@example.org", lang="ar", name="هالة")
    client.post(site.link(site.messages(wait_for=1)[0]))
    csv_file = site.project.root / "people.csv"
    csv_file.write_text("email,name,Organisation\nrami@example.org,Rami,Beit Al-Hikma\n", encoding="utf-8")
    assert site.cli("subscribers", "import", str(csv_file), "--list", "partners").exit_code == 0
    shown = site.cli("subscribers", "show", "hala@example.org")
    assert shown.exit_code == 0, shown.output
    assert "consent version 2023-01" in shown.output.replace("consent text version", "consent version")
    assert "by the sign-up form" in shown.output and "lists:" in shown.output and "partners" in shown.output
    assert "subscribe (web," in shown.output
    rami = site.cli("subscribers", "show", "rami@example.org").output
    assert "not recorded (came by import people.csv)" in rami and "attribute Organisation: Beit Al-Hikma" in rami
    assert site.cli("subscribers", "show", "nobody@example.org").exit_code == 1
    exported = site.cli("subscribers", "export").output.splitlines()
    assert exported[0] == "email,name,language,status,consent_at,consent_version,consent_source,Organisation"
    hala = next(line for line in exported if line.startswith("hala@"))
    assert re.fullmatch(r"hala@example\.org,هالة,ar,active,\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ,2023-01,sign-up form,", hala)
    assert "rami@example.org,Rami,ar,active,,,import people.csv,Beit Al-Hikma" in exported


# --- the whole walk, in Chromium --------------------------------------------------------------------------------


@pytest.mark.browser
def test_a_person_signs_up_in_arabic_at_375px_confirms_and_switches_to_english(site):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium package", pytrace=False)
    from playwright.sync_api import sync_playwright

    foreign: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 375, "height": 800})
            page = context.new_page()
            page.on("request", lambda r: None if r.url.startswith(site.url) else foreign.append(r.url))
            assert page.goto(f"{site.url}/subscribe", wait_until="load").status == 200
            arabic = page.locator("section[lang=ar]")
            looks = page.evaluate("""() => {
                const s = document.querySelector('section[lang=ar]'), p = s.querySelector('p');
                return {inner: window.innerWidth, html: document.documentElement.scrollWidth,
                        body: document.body.scrollWidth, direction: getComputedStyle(p).direction,
                        align: getComputedStyle(p).textAlign,
                        emailDirection: getComputedStyle(s.querySelector('input[type=email]')).direction};
            }""")
            assert looks["direction"] == "rtl" and looks["align"] == "right", looks
            assert looks["emailDirection"] == "ltr", looks
            assert looks["html"] <= looks["inner"] and looks["body"] <= looks["inner"], f"sideways scroll: {looks}"
            arabic.locator("input[name=email]").fill("layla@example.org")
            arabic.locator("input[name=name]").fill("ليلى")
            arabic.locator("input[name=language][value=ar]").check()
            arabic.locator("input[name=consent]").check()
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "signup-ar-375.png"), full_page=True)
            with page.expect_navigation():
                arabic.locator("button[type=submit]").click()
            assert "تحقّق من بريدك" in page.text_content("main")

            [message] = site.messages(wait_for=1)
            parsed = message.parse()
            assert parsed["Content-Language"] == "ar" and str(parsed["Subject"]).startswith("أكّد اشتراكك")
            assert "لتأكيد الاشتراك افتح هذا الرابط" in parsed.get_body(("plain",)).get_content()
            html_part = parsed.get_body(("html",)).get_content()
            assert 'dir="rtl"' in html_part and "<img" not in html_part
            link = site.link(message)

            assert page.goto(link, wait_until="load").status == 200
            assert "هل تريد تأكيد اشتراك العنوان" in page.text_content("main")
            assert site.person("layla@example.org") is None  # opening the link changed nothing
            with page.expect_navigation():
                page.click("button[type=submit]")
            assert "مشترك في رسائل" in page.text_content("main")
            person = site.person("layla@example.org")
            assert (person.status, person.language, person.name) == ("active", "ar", "ليلى")
            record = site.store.reports.person("layla@example.org", SECRET_BYTES)
            assert record.consent_at and record.consent_version == "2023-01" and record.lists == ["partners"]

            # the page behind the unsubscribe link: English from now on
            token = TokenSigner(SECRET_BYTES).make(person.token_key)
            assert page.goto(f"{site.url}/u/{token}", wait_until="load").status == 200
            page.check("input[name=language][value=en]")
            with page.expect_navigation():
                page.click("form[action$='/language'] button")
            assert site.person("layla@example.org").language == "en"
            page.screenshot(path=str(SCREENSHOTS / "preferences-375.png"), full_page=True)
            context.close()
        finally:
            browser.close()
    assert foreign == []

    # the next campaign, through the outbox, sends her the English letter
    result = site.cli("send", str(site.project.issue), "--list", "partners", "--provider", "outbox", "--yes")
    assert result.exit_code == 0, result.output
    [eml] = list((site.project.root / "outbox").rglob("*.eml"))
    sent = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert sent["To"] == "layla@example.org" and sent["Content-Language"] == "en"
    with site.store.db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.signups)).scalar_one() == 0


# --- hostile values -------------------------------------------------------------------------------------------

HOSTILE = st.text(st.characters(codec="utf-8"), max_size=400) | st.sampled_from(
    ["<script>alert(1)</script>", "\u202eevil\u202c", "a\r\nBcc: x@example.org", "=?utf-8?q?=0D=0A?=", "\x00", "ar"]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["email", "name", "language", "form_language", "consent", "x"]), HOSTILE))
def test_any_posted_fields_read_as_a_form_or_its_problems(fields):
    from conftest import ROOT

    from newsletter.config import load_config

    config = load_config(ROOT / "newsletter.toml")
    form = read_form(fields, config)
    if isinstance(form, SignupForm):
        assert form.language in ("ar", "en", "both") and form.page_language in ("ar", "en")
        assert "\n" not in form.email and "<" not in form.email and form.email.isascii()
        assert form.name == clean_name(form.name)
    else:
        assert form.keys and set(form.keys) <= {"bad_email", "no_consent"}


@settings(max_examples=300, deadline=None)
@given(HOSTILE)
def test_a_cleaned_name_has_no_control_or_direction_character(name):
    cleaned = clean_name(name)
    assert len(cleaned) <= 200 and cleaned == " ".join(cleaned.split())
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c in "\u061c\u200e\u200f\u2028\u2029" or
                   0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 for c in cleaned)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_any_body_reads_as_fields_or_none(body):
    fields = form_fields(body)
    assert isinstance(fields, dict) and len(fields) <= 20


def test_under_the_bilingual_layout_the_form_asks_no_language_and_the_answer_says_both(tmp_path, secret_env, smtp_sink, client):  # noqa: F811
    """Everyone gets the one bilingual letter: a language choice would change nothing, and the
    confirmation must not promise one language."""
    sink = smtp_sink()
    project = Project(tmp_path / "p", extra_config=signup_config(sink.port, CONSENT_VERSION))
    assert 'layout = "bilingual"' in project.config_path.read_text(encoding="utf-8")
    store = Store.open(project.config().store_url, now=Clock())
    with running(create_app(project.config(), store, SECRET_BYTES)) as url:
        form = client.get(f"{url}/subscribe").text
        assert 'name="email"' in form and 'name="language"' not in form
        posted = client.post(f"{url}/subscribe", data={"form_language": "en", "email": "ben@example.org",
                                                       "name": "Ben", "consent": "yes"})
        assert posted.status_code == 200
        site = Site(project, store, url, sink, Clock())
        link = site.link(site.messages(wait_for=1)[0])
        done = client.post(link)
        assert done.status_code == 200
        assert "in Arabic and English" in done.text and "change the language" not in done.text
    store.close()
