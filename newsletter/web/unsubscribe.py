"""The reader's page behind the unsubscribe link, and what its forms post:

- GET  /u/<token>              the page, in the person's language; changes nothing
- POST /u/<token>              unsubscribes: RFC 8058 one-click (any body) or the page's form
- POST /u/<token>/resubscribe  undoes an unsubscribe made by mistake
- POST /u/<token>/language     the language of the next letters

A token that is not genuine costs the same lookup as one whose person is unknown or forgotten,
and all three get the same 404. The test copy's token (PREVIEW_TOKEN) says what the link does
in real letters and changes nothing.
"""

from __future__ import annotations

import secrets
from typing import Any

from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter.audience.signup import choices
from newsletter.domain import ACTIVE, UNSUBSCRIBED, Subscriber
from newsletter.keys import (
    LANGUAGE_ROUTE,
    RESUBSCRIBE_ROUTE,
    UNSUBSCRIBE_ROUTE,
    language_path,
    resubscribe_path,
    unsubscribe_path,
)
from newsletter.languages import Language, word
from newsletter.message.composer import PREVIEW_TOKEN
from newsletter.web.answers import form_fields, html_page, not_found, read_body, too_large
from newsletter.web.pages import Block, shown_address
from newsletter.web.services import Services, services_of

MAX_FORM_BODY = 16 * 1024  # the one-click body is 26 bytes; the page's forms are as small


def no_key() -> str:
    """Looked up for a token that is not genuine: like an unknown key, a random place in the index
    (a fixed one stays cached and answers faster), but one character short of a key: finds nobody."""
    return secrets.token_hex(16)[:31]


def read_token(services: Services, request: Request) -> tuple[str, int]:
    """The token's key and campaign; `no_key()` for a token that is not genuine, so that it is looked
    up like any other and a forged token cannot be told from a forgotten person's by its timing."""
    return services.signer.read(request.path_params["token"]) or (no_key(), 0)


# --- the page and its forms ----------------------------------------------------------------


def page(
    services: Services, subscriber: Subscriber, key: str, *, forms: list[dict] | None = None, extra: list | None = None
) -> Response:
    """One sentence of the page's words about `subscriber`, their address masked, and the forms."""
    pages = services.pages
    language = pages.language(subscriber.language)
    organisation = pages.organisation(language)
    # the sentence is escaped; the organisation is escaped by format; the address stays markup
    paragraph = Markup(escape(language.words[key])).format(
        address=shown_address(subscriber.email), organisation=organisation
    )
    return html_page(pages, [Block(language, language.word("page_title"), [paragraph, *(extra or [])], forms or [])])


def page_of_a_test_copy(services: Services) -> Response:
    """The unsubscribe link of a test copy: says what it does in real letters; changes nothing."""
    language = services.config.primary
    return html_page(services.pages, [Block(language, language.word("page_title"), [language.word("page_test_copy")])])


def leave_form(language: Language, token: str) -> dict[str, Any]:
    return {
        "action": unsubscribe_path(token),
        "fields": [],
        "name": "List-Unsubscribe",
        "value": "One-Click",
        "label": language.word("page_button"),
    }


def rejoin_form(language: Language, token: str) -> dict[str, Any]:
    return {
        "action": resubscribe_path(token),
        "fields": [],
        "name": "resubscribe",
        "value": "1",
        "label": language.word("page_resubscribe"),
        "secondary": True,
    }


def language_form(services: Services, subscriber: Subscriber, token: str, *, saved: bool = False) -> dict[str, Any]:
    """The reader's choice of language, posted to /u/<token>/language (after saving, the form alone)."""
    pages = services.pages
    language = pages.language(subscriber.language)
    field = pages.language_field(language, subscriber.language) | {"label": ""}
    now = pages.say(language, "language_now", choice=pages.in_choice(language, subscriber.language))
    return {
        "heading": None if saved else word(language.code, "preferences"),
        "intro": None if saved else now,
        "action": language_path(token),
        "fields": [field],
        "label": word(language.code, "save"),
        "secondary": True,
    }


# --- the handlers ----------------------------------------------------------------------------


async def unsubscribe_page(request: Request) -> Response:
    """The reader's page behind the unsubscribe link: leave (or rejoin) and their language."""
    services = services_of(request)
    token = request.path_params["token"]
    if token == PREVIEW_TOKEN:
        return page_of_a_test_copy(services)
    key, _campaign = read_token(services, request)
    subscriber = await run_in_threadpool(services.store.subscribers.by_token_key, key)
    if subscriber is None:
        return not_found()
    language = services.pages.language(subscriber.language)
    choose = [language_form(services, subscriber, token)] if len(services.config.codes) > 1 else []
    if subscriber.status == UNSUBSCRIBED:
        return page(services, subscriber, "page_already", forms=[rejoin_form(language, token), *choose])
    if subscriber.status != ACTIVE:
        return page(services, subscriber, "page_already")
    return page(services, subscriber, "page_question", forms=[leave_form(language, token), *choose])


async def unsubscribe(request: Request) -> Response:
    if await read_body(request, MAX_FORM_BODY) is None:
        return too_large()
    services = services_of(request)
    if request.path_params["token"] == PREVIEW_TOKEN:
        return page_of_a_test_copy(services)
    # Any POST to a genuine token unsubscribes: the RFC 8058 body (urlencoded or multipart)
    # and the page's form alike. Link scanners send GET, never POST.
    subscriber, _changed = await run_in_threadpool(services.store.feedback.unsubscribe, *read_token(services, request))
    if subscriber is None:
        return not_found()
    if subscriber.status != UNSUBSCRIBED:
        return page(services, subscriber, "page_already")
    language = services.pages.language(subscriber.language)
    rejoin = rejoin_form(language, request.path_params["token"])
    return page(services, subscriber, "page_done", forms=[rejoin], extra=[language.word("page_resubscribe_offer")])


async def resubscribe(request: Request) -> Response:
    if await read_body(request, MAX_FORM_BODY) is None:
        return too_large()
    services = services_of(request)
    subscriber, _changed = await run_in_threadpool(services.store.feedback.resubscribe, *read_token(services, request))
    if subscriber is None:
        return not_found()
    return page(services, subscriber, "page_resubscribed" if subscriber.status == ACTIVE else "page_already")


async def choose_language(request: Request) -> Response:
    """The reader's language for the next campaign; an unknown choice changes nothing."""
    body = await read_body(request, MAX_FORM_BODY)
    if body is None:
        return too_large()
    services = services_of(request)
    pages = services.pages
    chosen = form_fields(body).get("language", "")
    key, _campaign = read_token(services, request)
    if chosen in choices(services.config):
        subscriber = await run_in_threadpool(services.store.subscribers.set_language, key, chosen)
    else:
        subscriber = await run_in_threadpool(services.store.subscribers.by_token_key, key)
    if subscriber is None:
        return not_found()
    language = pages.language(subscriber.language)
    saved = pages.say(language, "language_saved", choice=pages.in_choice(language, subscriber.language))
    forms = [language_form(services, subscriber, request.path_params["token"], saved=True)]
    return html_page(pages, [Block(language, word(language.code, "preferences"), [saved], forms)])


ROUTES = [
    Route(UNSUBSCRIBE_ROUTE, unsubscribe_page, methods=["GET", "HEAD"]),
    Route(UNSUBSCRIBE_ROUTE, unsubscribe, methods=["POST"]),
    Route(RESUBSCRIBE_ROUTE, resubscribe, methods=["POST"]),
    Route(LANGUAGE_ROUTE, choose_language, methods=["POST"]),
]
