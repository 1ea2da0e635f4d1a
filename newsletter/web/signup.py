"""The sign-up pages of `newsletter serve` (with `[signup]` in newsletter.toml):

- GET  /subscribe           the form in every language (the primary first) or the one `?lang=` names
- POST /subscribe           "check your inbox", the same bytes whoever the address belongs to; the
                            confirmation message goes out after the answer
- GET  /confirm/<token>     what the link is for, and a button; changes nothing (link scanners GET)
- POST /confirm/<token>     the person active on the list, consent recorded

A post is weighed against the rate limits first (429 past them), then the honeypot (a robot is
answered as if it had succeeded), then the form. No IP address or user agent is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl

from markupsafe import Markup
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter.audience.signup import FormProblems, is_bot, read_form
from newsletter.sending.confirmations import INVALID, VALID, LinkState, Signups
from newsletter.store.signups import CONFIRMED, EXPIRED
from newsletter.web.limits import RateLimit
from newsletter.web.pages import Block, Pages, shown_address

MAX_SIGNUP_BODY = 8 * 1024
MAX_FIELDS = 20


def form_fields(body: bytes) -> dict[str, str]:
    """An urlencoded body's fields (the first of each name); anything else reads as no fields."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return {}
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def signup_routes(
    signups: Signups, pages: Pages, read_body: Callable, too_large: Callable[[], Response], limit: RateLimit
) -> list[Route]:
    config = signups.config

    def form_page(codes: list[str], values: dict[str, str] | None = None, errors: tuple[str, ...] = (), status=200):
        blocks = []
        for code in codes:
            language = pages.language(code)
            paragraphs: list = [pages.say(language, "signup_intro")]
            paragraphs += [{"text": pages.say(language, key), "error": True} for key in errors]
            form = pages.signup_form(language, "/subscribe", values)
            blocks.append(Block(language, str(pages.say(language, "signup_title")), paragraphs, [form]))
        return pages.render(blocks, status=status)

    def check_inbox(code: str, background: BackgroundTask | None = None) -> Response:
        language = pages.language(code)
        response = pages.render(
            [Block(language, str(pages.say(language, "check_title")), [pages.say(language, "check_inbox")])]
        )
        response.background = background
        return response

    async def subscribe_page(request: Request) -> Response:
        wanted = request.query_params.get("lang")
        codes = [wanted] if wanted in config.codes else list(config.codes)
        return form_page(codes)

    async def subscribe(request: Request) -> Response:
        body = await read_body(request, MAX_SIGNUP_BODY)
        if body is None:
            return too_large()
        fields = form_fields(body)
        page_code = fields.get("form_language") or ""
        page_code = page_code if page_code in config.codes else config.primary.code
        client = request.client.host if request.client else ""
        if not limit.allow(client):
            language = pages.language(page_code)
            block = Block(language, str(pages.say(language, "signup_title")), [pages.say(language, "too_many")])
            return pages.render([block], status=429, headers={"Retry-After": str(limit.retry_after())})
        if is_bot(fields):
            return check_inbox(page_code)
        form = read_form(fields, config)
        if isinstance(form, FormProblems):
            return form_page([form.page_language], form.values, form.keys, status=400)
        pending = await run_in_threadpool(signups.request, form)
        task = BackgroundTask(run_in_threadpool, signups.send_confirmation, pending) if pending else None
        return check_inbox(form.page_language, task)

    def link_page(state: str) -> Response:
        """A link that leads nowhere says why, in every language (whose it was is not known)."""
        key, status = {INVALID: ("link_invalid", 404), EXPIRED: ("link_expired", 410)}.get(state, ("link_used", 404))
        blocks = []
        for code in config.codes:
            language = pages.language(code)
            paragraphs: list = [pages.say(language, key)]
            if state == EXPIRED and config.signup is not None:
                paragraphs.append(
                    Markup('<a href="/subscribe?lang={}">{}</a>').format(code, pages.say(language, "signup_again"))
                )
            blocks.append(Block(language, str(pages.say(language, "confirm_title")), paragraphs))
        return pages.render(blocks, status=status)

    async def confirm_page(request: Request) -> Response:
        state = await run_in_threadpool(signups.link, request.path_params["token"])
        if state.state != VALID or state.signup is None:
            return link_page(state.state)
        pending = state.signup
        language = pages.language(pending.language)
        question = pages.say(language, "confirm_question", address=shown_address(pending.email))
        form = {"action": request.url.path, "fields": [], "label": str(pages.say(language, "confirm_button"))}
        return pages.render([Block(language, str(pages.say(language, "confirm_title")), [question], [form])])

    async def confirm(request: Request) -> Response:
        if await read_body(request, MAX_SIGNUP_BODY) is None:
            return too_large()
        outcome = await run_in_threadpool(signups.confirm, request.path_params["token"])
        if isinstance(outcome, LinkState):
            return link_page(outcome.state)
        if outcome.outcome != CONFIRMED or outcome.subscriber is None:
            return link_page(outcome.outcome)
        person = outcome.subscriber
        language = pages.language(person.language)
        done = pages.say(
            language,
            "confirmed",
            address=shown_address(person.email),
            choice=pages.in_choice(language, person.language),
        )
        return pages.render([Block(language, str(pages.say(language, "confirm_title")), [done])])

    return [
        Route("/subscribe", subscribe_page, methods=["GET", "HEAD"]),
        Route("/subscribe", subscribe, methods=["POST"]),
        Route("/confirm/{token}", confirm_page, methods=["GET", "HEAD"]),
        Route("/confirm/{token}", confirm, methods=["POST"]),
    ]
