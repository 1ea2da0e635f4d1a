"""The reader's page behind the unsubscribe link, and what its forms post:

- GET  /u/<token>              the page, in the reader's language(s); changes nothing
- POST /u/<token>              unsubscribes: RFC 8058 one-click (any body) or the page's form
- POST /u/<token>/resubscribe  undoes an unsubscribe made by mistake
- POST /u/<token>/language     the language of the next letters (per-recipient layout only)

The page says only what is true for the layout: it is in the languages of the letter the person
gets (each of them for the bilingual letter, theirs first), it offers a choice of language only
where the letters follow it (the per-recipient layout) and only to a person who receives them;
after leaving, it says how to come back and nothing else.

A token that is not genuine costs the same lookup as one whose person is unknown or forgotten,
and all three get the same 404. The test copy's token (PREVIEW_TOKEN) says what the link does
in real letters and changes nothing.
"""

from __future__ import annotations

import secrets
import weakref
from collections.abc import Callable
from typing import Any

from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter.audience.signup import choices
from newsletter.config import Config
from newsletter.domain import ACTIVE, UNSUBSCRIBED, Subscriber
from newsletter.keys import (
    LANGUAGE_ROUTE,
    RESUBSCRIBE_ROUTE,
    UNSUBSCRIBE_ROUTE,
    language_path,
    resubscribe_path,
    unsubscribe_path,
)
from newsletter.languages import BOTH, LANGUAGES, Language, word
from newsletter.message.composer import PREVIEW_TOKEN
from newsletter.web.answers import form_fields, html_answer, html_page, not_found, read_body, too_large
from newsletter.web.pages import Block, Pages, received, shown_address
from newsletter.web.services import Services, services_of

MAX_FORM_BODY = 16 * 1024  # the one-click body is 26 bytes; the page's forms are as small

Form = Callable[[Language], dict[str, Any]]  # a form of the page, made in each of its languages
FormsOf = Callable[[Services, Subscriber, str], tuple[Form, ...]]  # a page's forms for a reader and token


def no_key() -> str:
    """Looked up for a token that is not genuine: like an unknown key, a random place in the index
    (a fixed one stays cached and answers faster), but one character short of a key: finds nobody."""
    return secrets.token_hex(16)[:31]


def read_token(services: Services, request: Request) -> tuple[str, int]:
    """The token's key and campaign; `no_key()` for a token that is not genuine, so that it is looked
    up like any other and a forged token cannot be told from a forgotten person's by its timing."""
    return services.signer.read(request.path_params["token"]) or (no_key(), 0)


# --- what is true for the layout (pure) -----------------------------------------------------


def reader_languages(config: Config, chosen: str | None) -> list[Language]:
    """The page's languages: those of the reader's letter, their own first."""
    choice = received(config, chosen)
    if choice != BOTH:
        return [LANGUAGES[choice]]
    return [LANGUAGES[code] for code in sorted(config.codes, key=lambda code: code != chosen)]


# --- the page and its forms ----------------------------------------------------------------


def page(
    services: Services,
    subscriber: Subscriber,
    token: str,
    key: str,
    forms: tuple[FormsOf, ...] = (),
    *,
    extra: str | None = None,
) -> Response:
    """A block per language of the reader's letter: the sentence `key` about `subscriber` (their
    address masked), the sentence `extra`, and the forms (posted to `token`'s paths), each in that
    language. Rendered once per kind of page; the reader's address and token put in its copy."""
    kinds = _rendered.setdefault(services.pages, {})
    kind = (subscriber.language, subscriber.status, key, forms, extra)
    if (html := kinds.get(kind)) is None:
        html = kinds[kind] = _render(services, subscriber, key, forms, extra)
    # the address last: nothing is looked for in what it puts in
    html = html.replace(TOKEN, escape(token)).replace(ADDRESS, shown_address(subscriber.email))
    return html_answer(html)


# Where the reader's own parts go in a page's rendering: the template escapes neither mark, and
# what replaces them is escaped as the template would have (the token is a path segment of a form).
ADDRESS, TOKEN = "\x00address\x00", "\x00token\x00"
_rendered: weakref.WeakKeyDictionary[Pages, dict[tuple, str]] = weakref.WeakKeyDictionary()


def _render(services: Services, subscriber: Subscriber, key: str, forms: tuple[FormsOf, ...], extra: str | None) -> str:
    """The page of one kind, ADDRESS and TOKEN in place of the reader's own."""
    pages, blocks = services.pages, []
    made = [form for forms_of in forms for form in forms_of(services, subscriber, TOKEN)]
    for language in reader_languages(services.config, subscriber.language):
        # the sentence is escaped; the organisation is escaped by format; the address stays markup
        sentence = Markup(escape(language.words[key])).format(
            address=Markup(ADDRESS), organisation=pages.organisation(language)
        )
        paragraphs = [sentence, *([language.word(extra)] if extra else [])]
        blocks.append(Block(language, language.word("page_title"), paragraphs, [form(language) for form in made]))
    return pages.html(blocks)


def page_of_a_test_copy(services: Services) -> Response:
    """The unsubscribe link of a test copy: says what it does in real letters; changes nothing."""
    blocks = [
        Block(language, language.word("page_title"), [language.word("page_test_copy")])
        for language in reader_languages(services.config, None)
    ]
    return html_page(services.pages, blocks)


def leaving(_services: Services, _subscriber: Subscriber, token: str) -> tuple[Form, ...]:
    return (
        lambda language: {
            "action": unsubscribe_path(token),
            "fields": [],
            "name": "List-Unsubscribe",
            "value": "One-Click",
            "label": language.word("page_button"),
        },
    )


def rejoining(_services: Services, _subscriber: Subscriber, token: str) -> tuple[Form, ...]:
    return (
        lambda language: {
            "action": resubscribe_path(token),
            "fields": [],
            "name": "resubscribe",
            "value": "1",
            "label": language.word("page_resubscribe"),
            "secondary": True,
        },
    )


def choosing(services: Services, subscriber: Subscriber, token: str, *, saved: bool = False) -> tuple[Form, ...]:
    """The choice of language, posted to /u/<token>/language, where it changes the person's letters
    (after saving, the form alone); none elsewhere."""
    pages, config = services.pages, services.config
    if subscriber.status != ACTIVE or not pages.offers_language():
        return ()
    choice = received(config, subscriber.language)

    def form(language: Language) -> dict[str, Any]:
        return {
            "heading": None if saved else word(language.code, "preferences"),
            "intro": None if saved else pages.say(language, "language_now", choice=pages.in_choice(language, choice)),
            "action": language_path(token),
            "fields": [pages.language_field(language, choice) | {"label": ""}],
            "label": word(language.code, "save"),
            "secondary": True,
        }

    return (form,)


# --- the handlers ----------------------------------------------------------------------------


async def unsubscribe_page(request: Request) -> Response:
    """The reader's page behind the unsubscribe link: leave (or rejoin), and their language."""
    services = services_of(request)
    token = request.path_params["token"]
    if token == PREVIEW_TOKEN:
        return page_of_a_test_copy(services)
    key, _campaign = read_token(services, request)
    subscriber = await run_in_threadpool(services.store.subscribers.by_token_key, key)
    if subscriber is None:
        return not_found()
    return reader_page(services, subscriber, token)


def reader_page(services: Services, subscriber: Subscriber, token: str) -> Response:
    """What the link shows: leaving (and the language where it matters), or how to come back."""
    if subscriber.status == UNSUBSCRIBED:
        return page(services, subscriber, token, "page_already", (rejoining,))
    if subscriber.status != ACTIVE:
        return page(services, subscriber, token, "page_already")
    return page(services, subscriber, token, "page_question", (leaving, choosing))


async def unsubscribe(request: Request) -> Response:
    if await read_body(request, MAX_FORM_BODY) is None:
        return too_large()
    services = services_of(request)
    if request.path_params["token"] == PREVIEW_TOKEN:
        return page_of_a_test_copy(services)
    # Any POST to a genuine token unsubscribes: the RFC 8058 body (urlencoded or multipart)
    # and the page's form alike. Link scanners send GET, never POST. Concurrent ones are
    # recorded together (one transaction, one commit), each answered once it is committed.
    link = read_token(services, request)
    subscriber, _changed = await services.batches.run(services.store.feedback.unsubscribe_many, link)
    if subscriber is None:
        return not_found()
    token = request.path_params["token"]
    if subscriber.status != UNSUBSCRIBED:
        return page(services, subscriber, token, "page_already")
    return page(services, subscriber, token, "page_done", (rejoining,), extra="page_resubscribe_offer")


async def resubscribe(request: Request) -> Response:
    if await read_body(request, MAX_FORM_BODY) is None:
        return too_large()
    services = services_of(request)
    subscriber, _changed = await run_in_threadpool(services.store.feedback.resubscribe, *read_token(services, request))
    if subscriber is None:
        return not_found()
    key = "page_resubscribed" if subscriber.status == ACTIVE else "page_already"
    return page(services, subscriber, request.path_params["token"], key)


async def choose_language(request: Request) -> Response:
    """The reader's language for the next campaign. An unknown choice changes nothing, and so does
    any choice where it would not change their letters (the bilingual layout, or after leaving):
    the reader's page answers instead."""
    body = await read_body(request, MAX_FORM_BODY)
    if body is None:
        return too_large()
    services = services_of(request)
    pages, config, token = services.pages, services.config, request.path_params["token"]
    chosen = form_fields(body).get("language", "")
    key, _campaign = read_token(services, request)
    subscriber = await run_in_threadpool(services.store.subscribers.by_token_key, key)
    if subscriber is None:
        return not_found()
    if not choosing(services, subscriber, token) or chosen not in choices(config):
        return reader_page(services, subscriber, token)
    subscriber = await run_in_threadpool(services.store.subscribers.set_language, key, chosen) or subscriber
    blocks = []
    for language in reader_languages(config, subscriber.language):
        choice = pages.in_choice(language, received(config, subscriber.language))
        saved = pages.say(language, "language_saved", choice=choice)
        form = choosing(services, subscriber, token, saved=True)[0](language)
        blocks.append(Block(language, word(language.code, "preferences"), [saved], [form]))
    return html_page(pages, blocks)


ROUTES = [
    Route(UNSUBSCRIBE_ROUTE, unsubscribe_page, methods=["GET", "HEAD"]),
    Route(UNSUBSCRIBE_ROUTE, unsubscribe, methods=["POST"]),
    Route(RESUBSCRIBE_ROUTE, resubscribe, methods=["POST"]),
    Route(LANGUAGE_ROUTE, choose_language, methods=["POST"]),
]
