"""The reader's page is rendered once per kind (language, status, sentence, forms) and each reader's
masked address and token put into its copy (newsletter/web/unsubscribe.py's page): whatever the
address and the token, the answer is the page rendered for that reader alone, escaped alike."""

from __future__ import annotations

import datetime as dt
import string

import pytest
from conftest import Project
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup, escape

from newsletter import domain as d
from newsletter.domain import Subscriber
from newsletter.web import unsubscribe
from newsletter.web.pages import Block, shown_address
from newsletter.web.public import open_services

TOKEN_ALPHABET = string.ascii_letters + string.digits + "-_"
KINDS = [  # (status, sentence, forms, extra) as the handlers ask for them
    (d.UNSUBSCRIBED, "page_done", (unsubscribe.rejoining,), "page_resubscribe_offer"),
    (d.ACTIVE, "page_question", (unsubscribe.leaving, unsubscribe.choosing), None),
    (d.UNSUBSCRIBED, "page_already", (unsubscribe.rejoining,), None),
    (d.BOUNCED, "page_already", (), None),
]


@pytest.fixture(scope="module", params=["bilingual", "per-recipient"])
def services(request, tmp_path_factory):
    project = Project(tmp_path_factory.mktemp(request.param) / "project")
    if request.param == "per-recipient":
        text = project.config_path.read_text(encoding="utf-8").replace('layout = "bilingual"', 'layout = "per-recipient"')
        project.config_path.write_text(text, encoding="utf-8")
    return open_services(project.config(), None, b"k" * 32)  # the page needs no store


def alone(services, subscriber: Subscriber, token: str, key: str, forms, extra) -> str:
    """The page rendered for this reader alone, nothing kept from another."""
    made = [form for forms_of in forms for form in forms_of(services, subscriber, token)]
    blocks = []
    for language in unsubscribe.reader_languages(services.config, subscriber.language):
        sentence = Markup(escape(language.words[key])).format(
            address=shown_address(subscriber.email), organisation=services.pages.organisation(language)
        )
        paragraphs = [sentence, *([language.word(extra)] if extra else [])]
        blocks.append(Block(language, language.word("page_title"), paragraphs, [form(language) for form in made]))
    return services.pages.html(blocks)


@settings(max_examples=60, deadline=None)
@given(
    local=st.text(min_size=1, max_size=12).filter(lambda text: "@" not in text),
    # the marks in an address are shown as they are: it goes in last, and nothing is looked for in it
    domain=st.text(min_size=1, max_size=12) | st.sampled_from([unsubscribe.TOKEN, unsubscribe.ADDRESS]),
    token=st.text(TOKEN_ALPHABET, min_size=1, max_size=40),  # a genuine token's (base64url)
    language=st.sampled_from(["ar", "en", "xx"]),
    kind=st.sampled_from(KINDS),
)
def test_every_reader_gets_the_page_rendered_for_them_alone(services, local, domain, token, language, kind):
    status, key, forms, extra = kind
    person = Subscriber(1, f"{local}@{domain}", "P", language, status, "0" * 32, dt.datetime.now(dt.UTC))
    answer = unsubscribe.page(services, person, token, key, forms, extra=extra)
    assert answer.body.decode("utf-8") == alone(services, person, token, key, forms, extra)

