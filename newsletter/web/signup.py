"""The sign-up pages of `newsletter serve` (with `[signup]` in newsletter.toml):

- GET  /subscribe           the form in every language (the primary first) or the one `?lang=` names
- POST /subscribe           "check your inbox", the same bytes, by the same path in the same time,
                            whoever the address belongs to: the store is asked about the address,
                            and a message sent, only after the answer
- GET  /confirm/<token>     what the link is for, and a button; changes nothing (link scanners GET)
- POST /confirm/<token>     the person active on the list, consent recorded

A post is checked for the honeypot first (a robot is answered as if it had succeeded), then the
form, then weighed against the rate limits (newsletter.web.limits: 429 past a network's or a
domain's; past a mailbox's, the usual answer and nothing else). No IP address or user agent is
stored. Without `[signup]` these routes are not mounted; mounted all the same, they answer 404.
"""

from __future__ import annotations

from markupsafe import Markup
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter.audience.signup import FormProblems, is_bot, read_form
from newsletter.keys import CONFIRM_ROUTE, SUBSCRIBE_ROUTE
from newsletter.sending.confirmations import INVALID, VALID, LinkState
from newsletter.store.signups import CONFIRMED, EXPIRED
from newsletter.web.answers import form_fields, html_page, not_found, read_body, too_large
from newsletter.web.limits import ADMITTED, REFUSED
from newsletter.web.pages import Block, received, shown_address
from newsletter.web.services import Services, services_of

MAX_SIGNUP_BODY = 8 * 1024


def form_page(
    services: Services,
    codes: list[str],
    values: dict[str, str] | None = None,
    errors: tuple[str, ...] = (),
    status: int = 200,
) -> Response:
    """The form in each of `codes`, with what was typed and what is wrong with it."""
    pages = services.pages
    blocks = []
    for code in codes:
        language = pages.language(code)
        paragraphs: list = [pages.say(language, "signup_intro")]
        paragraphs += [{"text": pages.say(language, key), "error": True} for key in errors]
        form = pages.signup_form(language, SUBSCRIBE_ROUTE, values)
        blocks.append(Block(language, str(pages.say(language, "signup_title")), paragraphs, [form]))
    return html_page(pages, blocks, status=status)


def check_inbox(services: Services, code: str, background: BackgroundTask | None = None) -> Response:
    pages = services.pages
    language = pages.language(code)
    response = html_page(
        pages, [Block(language, str(pages.say(language, "check_title")), [pages.say(language, "check_inbox")])]
    )
    response.background = background
    return response


def too_many(services: Services, code: str, retry_after: int) -> Response:
    pages = services.pages
    language = pages.language(code)
    block = Block(language, str(pages.say(language, "signup_title")), [pages.say(language, "too_many")])
    return html_page(pages, [block], status=429, headers={"Retry-After": str(retry_after)})


def link_page(services: Services, state: str) -> Response:
    """A link that leads nowhere says why, in every language (whose it was is not known)."""
    pages, config = services.pages, services.config
    key, status = {INVALID: ("link_invalid", 404), EXPIRED: ("link_expired", 410)}.get(state, ("link_used", 404))
    blocks = []
    for code in config.codes:
        language = pages.language(code)
        paragraphs: list = [pages.say(language, key)]
        if state == EXPIRED and config.signup is not None:
            again = pages.say(language, "signup_again")
            paragraphs.append(Markup('<a href="{}?lang={}">{}</a>').format(SUBSCRIBE_ROUTE, code, again))
        blocks.append(Block(language, str(pages.say(language, "confirm_title")), paragraphs))
    return html_page(pages, blocks, status=status)


# --- the handlers ----------------------------------------------------------------------------


async def subscribe_page(request: Request) -> Response:
    services = services_of(request)
    if services.signups is None:
        return not_found()
    wanted = request.query_params.get("lang")
    codes = [wanted] if wanted in services.config.codes else list(services.config.codes)
    return form_page(services, codes)


async def subscribe(request: Request) -> Response:
    services = services_of(request)
    signups, limit, config = services.signups, services.limit, services.config
    if signups is None or limit is None:
        return not_found()
    body = await read_body(request, MAX_SIGNUP_BODY)
    if body is None:
        return too_large()
    fields = form_fields(body)
    page_code = fields.get("form_language") or ""
    page_code = page_code if page_code in config.codes else config.primary.code
    if is_bot(fields):
        return check_inbox(services, page_code)
    form = read_form(fields, config)
    if isinstance(form, FormProblems):
        return form_page(services, [form.page_language], form.values, form.keys, status=400)
    client = request.client.host if request.client else ""
    verdict = await run_in_threadpool(limit.weigh, services.store, services.secret, client, form.email)
    if verdict.outcome == REFUSED:
        return too_many(services, form.page_language, verdict.retry_after)
    # whatever the address is (new, on the list, suppressed), the store is asked only after the answer
    task = BackgroundTask(run_in_threadpool, signups.after_answer, form) if verdict.outcome == ADMITTED else None
    return check_inbox(services, form.page_language, task)


async def confirm_page(request: Request) -> Response:
    services = services_of(request)
    if services.signups is None:
        return not_found()
    state = await run_in_threadpool(services.signups.link, request.path_params["token"])
    if state.state != VALID or state.signup is None:
        return link_page(services, state.state)
    pages, pending = services.pages, state.signup
    language = pages.language(pending.language)
    question = pages.say(language, "confirm_question", address=shown_address(pending.email))
    form = {"action": request.url.path, "fields": [], "label": str(pages.say(language, "confirm_button"))}
    return html_page(pages, [Block(language, str(pages.say(language, "confirm_title")), [question], [form])])


async def confirm(request: Request) -> Response:
    services = services_of(request)
    if services.signups is None:
        return not_found()
    if await read_body(request, MAX_SIGNUP_BODY) is None:
        return too_large()
    outcome = await run_in_threadpool(services.signups.confirm, request.path_params["token"])
    if isinstance(outcome, LinkState):
        return link_page(services, outcome.state)
    if outcome.outcome != CONFIRMED or outcome.subscriber is None:
        return link_page(services, outcome.outcome)
    pages, person = services.pages, outcome.subscriber
    language = pages.language(person.language)
    # what they will really receive: under the bilingual layout everyone gets every language
    choice = pages.in_choice(language, received(services.config, person.language))
    key = "confirmed_every" if services.config.layout == "bilingual" else "confirmed"  # no language to change
    done = pages.say(language, key, address=shown_address(person.email), choice=choice)
    return html_page(pages, [Block(language, str(pages.say(language, "confirm_title")), [done])])


ROUTES = [
    Route(SUBSCRIBE_ROUTE, subscribe_page, methods=["GET", "HEAD"]),
    Route(SUBSCRIBE_ROUTE, subscribe, methods=["POST"]),
    Route(CONFIRM_ROUTE, confirm_page, methods=["GET", "HEAD"]),
    Route(CONFIRM_ROUTE, confirm, methods=["POST"]),
]
