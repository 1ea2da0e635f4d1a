"""`newsletter serve`: the public endpoints, an ASGI app (Starlette) behind the HTTPS proxy.

- GET  /u/<token>              the unsubscribe page, in the person's language; changes nothing
- POST /u/<token>              unsubscribes: RFC 8058 one-click (any body) or the page's form
- POST /u/<token>/resubscribe  undoes an unsubscribe made by mistake
- POST /sns                    Amazon SNS deliveries of SES feedback: validate → normalise → act
- GET  /archive/…              the public archive of published letters (newsletter.web.archive)

Bodies are counted as they arrive and refused (413) past their limit, never read further.
A token that is not genuine costs the same lookup as one whose person is unknown or forgotten,
and all three get the same 404.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from newsletter.audience.signup import choices
from newsletter.config import Config
from newsletter.domain import ACTIVE, UNSUBSCRIBED, Subscriber
from newsletter.feedback.policy import FeedbackPolicy
from newsletter.feedback.ses_events import FeedbackFormatError, events_from_envelope
from newsletter.feedback.sns import CertificateCache, SNSVerificationError, fetch_certificate, verify_sns_message
from newsletter.languages import word
from newsletter.message.composer import PREVIEW_TOKEN, Outgoing
from newsletter.sending.confirmations import Signups
from newsletter.store import Store
from newsletter.tokens import TokenSigner
from newsletter.web.archive import archive_app
from newsletter.web.limits import RateLimit
from newsletter.web.pages import SECURITY_HEADERS, Block, Pages, shown_address
from newsletter.web.serving import ServeError
from newsletter.web.signup import form_fields, signup_routes

log = logging.getLogger("newsletter.web")

MAX_SNS_BODY = 256 * 1024
MAX_FORM_BODY = 16 * 1024  # the one-click body is 26 bytes; the page's forms are as small
MAX_JSON_DEPTH = 32  # an SNS envelope is one flat object


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it passes `limit` bytes: counted chunk by chunk, never buffered past it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


# a JSON string, its end optional so that an unterminated one is consumed once, not rescanned
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON nests arrays and objects deeper than `limit`, found on the bytes, before any parser recurses."""
    depth = 0
    for byte in _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        depth += 1 if byte in b"[{" else -1
        if depth > limit:
            return True
    return False


def no_key() -> str:
    """Looked up for a token that is not genuine: like an unknown key, a random place in the index
    (a fixed one stays cached and answers faster), but one character short of a key: finds nobody."""
    return secrets.token_hex(16)[:31]


def confirm_subscription(url: str, timeout: float = 10) -> None:
    """Visit an SNS SubscribeURL (only ever called after the message was verified)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not (parts.hostname or "").endswith((".amazonaws.com", ".amazonaws.com.cn")):
        raise SNSVerificationError(f"SubscribeURL is not an https URL of Amazon SNS: {url!r}")
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - checked above
        response.read()


def provider_sender(config: Config) -> Callable[[Outgoing], str]:
    """Sends one message (a sign-up's confirmation) through `[signup] provider`, else `[send] provider`."""
    from newsletter.sending.providers import provider_factory

    assert config.signup is not None
    name = config.signup.provider or config.send.provider
    if name is None:
        raise ServeError(
            f"{config.path}: signup.provider: no provider for confirmation messages; "
            "set [signup] provider (or [send] provider) to smtp or ses"
        )
    factory = provider_factory(name, config, campaign_label="confirmations")

    def send(message: Outgoing) -> str:
        provider = factory.open()
        try:
            return provider.send(message)
        finally:
            provider.close()

    return send


def create_app(
    config: Config,
    store: Store,
    secret: bytes,
    *,
    load_certificate: Callable[[str], bytes] | None = None,
    confirm: Callable[[str], None] = confirm_subscription,
    now: Callable | None = None,
    send_message: Callable[[Outgoing], str] | None = None,
) -> Starlette:
    signer = TokenSigner(secret)
    policy = FeedbackPolicy(config.feedback.soft_bounce_limit, config.feedback.soft_bounce_days)
    certificates = load_certificate or CertificateCache(fetch_certificate)
    pages = Pages(config)
    signups = Signups(config, store, secret, send_message or provider_sender(config)) if config.signup else None

    def page(
        subscriber: Subscriber, key: str, *, forms: list[dict] | None = None, extra: list | None = None
    ) -> Response:
        language = pages.language(subscriber.language)
        organisation = pages.organisation(language)
        # the sentence is escaped; the organisation is escaped by format; the address stays markup
        paragraph = Markup(escape(language.words[key])).format(
            address=shown_address(subscriber.email), organisation=organisation
        )
        return pages.render([Block(language, language.word("page_title"), [paragraph, *(extra or [])], forms or [])])

    def language_form(subscriber: Subscriber, path: str, *, saved: bool = False) -> dict:
        """The reader's choice of language, posted to /u/<token>/language (after saving, the form alone)."""
        language = pages.language(subscriber.language)
        field = pages.language_field(language, subscriber.language) | {"label": ""}
        now = pages.say(language, "language_now", choice=pages.in_choice(language, subscriber.language))
        return {
            "heading": None if saved else word(language.code, "preferences"),
            "intro": None if saved else now,
            "action": f"{path}/language",
            "fields": [field],
            "label": word(language.code, "save"),
            "secondary": True,
        }

    def not_found() -> Response:
        return PlainTextResponse("Not found\n", status_code=404, headers=SECURITY_HEADERS)

    def too_large() -> Response:
        return PlainTextResponse("Too large\n", status_code=413, headers=SECURITY_HEADERS)

    def read_token(request: Request) -> tuple[str, int]:
        """The token's key and campaign; `no_key()` for a token that is not genuine, so that it is looked
        up like any other and a forged token cannot be told from a forgotten person's by its timing."""
        return signer.read(request.path_params["token"]) or (no_key(), 0)

    def test_copy() -> Response:
        """The unsubscribe link of a test copy: says what it does in real letters; changes nothing."""
        language = config.primary
        return pages.render([Block(language, language.word("page_title"), [language.word("page_test_copy")])])

    def token_path(request: Request) -> str:
        return f"/u/{request.path_params['token']}"

    async def unsubscribe_page(request: Request) -> Response:
        """The reader's page behind the unsubscribe link: leave (or rejoin) and their language."""
        if request.path_params["token"] == PREVIEW_TOKEN:
            return test_copy()
        key, _campaign = read_token(request)
        subscriber = await run_in_threadpool(store.subscriber_by_token_key, key)
        if subscriber is None:
            return not_found()
        language = pages.language(subscriber.language)
        choose = [language_form(subscriber, token_path(request))] if len(config.codes) > 1 else []
        if subscriber.status == UNSUBSCRIBED:
            return page(subscriber, "page_already", forms=[rejoin_form(language, request), *choose])
        if subscriber.status != ACTIVE:
            return page(subscriber, "page_already")
        leave = {
            "action": token_path(request),
            "fields": [],
            "name": "List-Unsubscribe",
            "value": "One-Click",
            "label": language.word("page_button"),
        }
        return page(subscriber, "page_question", forms=[leave, *choose])

    def rejoin_form(language, request: Request) -> dict:
        return {
            "action": f"{token_path(request)}/resubscribe",
            "fields": [],
            "name": "resubscribe",
            "value": "1",
            "label": language.word("page_resubscribe"),
            "secondary": True,
        }

    async def unsubscribe(request: Request) -> Response:
        if await read_body(request, MAX_FORM_BODY) is None:
            return too_large()
        if request.path_params["token"] == PREVIEW_TOKEN:
            return test_copy()
        # Any POST to a genuine token unsubscribes: the RFC 8058 body (urlencoded or multipart)
        # and the page's form alike. Link scanners send GET, never POST.
        subscriber, _changed = await run_in_threadpool(store.unsubscribe, *read_token(request))
        if subscriber is None:
            return not_found()
        language = pages.language(subscriber.language)
        if subscriber.status != UNSUBSCRIBED:
            return page(subscriber, "page_already")
        extra = [language.word("page_resubscribe_offer")]
        return page(subscriber, "page_done", forms=[rejoin_form(language, request)], extra=extra)

    async def resubscribe(request: Request) -> Response:
        if await read_body(request, MAX_FORM_BODY) is None:
            return too_large()
        subscriber, _changed = await run_in_threadpool(store.resubscribe, *read_token(request))
        if subscriber is None:
            return not_found()
        key = "page_resubscribed" if subscriber.status == ACTIVE else "page_already"
        return page(subscriber, key)

    async def choose_language(request: Request) -> Response:
        """The reader's language for the next campaign; an unknown choice changes nothing."""
        body = await read_body(request, MAX_FORM_BODY)
        if body is None:
            return too_large()
        chosen = form_fields(body).get("language", "")
        key, _campaign = read_token(request)
        if chosen in choices(config):
            subscriber = await run_in_threadpool(store.set_language, key, chosen)
        else:
            subscriber = await run_in_threadpool(store.subscriber_by_token_key, key)
        if subscriber is None:
            return not_found()
        language = pages.language(subscriber.language)
        saved = pages.say(language, "language_saved", choice=pages.in_choice(language, subscriber.language))
        forms = [language_form(subscriber, token_path(request), saved=True)]
        return pages.render([Block(language, word(language.code, "preferences"), [saved], forms)])

    async def sns(request: Request) -> Response:
        body = await read_body(request, MAX_SNS_BODY)
        if body is None:
            log.warning("sns: body over %d bytes", MAX_SNS_BODY)
            return PlainTextResponse("too large\n", status_code=413)
        if too_deep(body):
            log.warning("sns: JSON nested deeper than %d", MAX_JSON_DEPTH)
            return PlainTextResponse("nested too deeply\n", status_code=400)
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            log.warning("sns: body is not JSON")
            return PlainTextResponse("not JSON\n", status_code=400)
        if not isinstance(message, dict):
            return PlainTextResponse("not an SNS message\n", status_code=400)
        topics = config.feedback.topic_arns
        try:
            if not topics:
                raise SNSVerificationError("no topic is allowed: set feedback.topic_arns in newsletter.toml")
            await run_in_threadpool(
                verify_sns_message,
                message,
                load_certificate=certificates,
                now=now() if now else None,
                topic_arns=topics,
            )
        except SNSVerificationError as exc:
            log.warning("sns: rejected: %s", exc)
            return PlainTextResponse(f"rejected: {exc}\n", status_code=400)
        kind = message.get("Type")
        if kind == "SubscriptionConfirmation":
            try:
                await run_in_threadpool(confirm, message["SubscribeURL"])
            except Exception as exc:  # noqa: BLE001 - SNS retries the confirmation on a 5xx
                log.error("sns: could not confirm the subscription to %s: %s", message.get("TopicArn"), exc)
                return PlainTextResponse("could not confirm\n", status_code=502)
            log.info("sns: confirmed the subscription to %s", message.get("TopicArn"))
            return PlainTextResponse("confirmed\n")
        if kind != "Notification":
            return PlainTextResponse("ok\n")
        try:
            events = events_from_envelope(message)
        except FeedbackFormatError as exc:
            log.warning("sns: %s: malformed SES payload: %s", message.get("MessageId"), exc)
            return PlainTextResponse(f"malformed: {exc}\n", status_code=400)
        try:
            outcome = await run_in_threadpool(
                store.apply_feedback,
                events,
                message_key=f"sns:{message['MessageId']}",
                source="sns",
                policy=policy,
                secret=secret,
            )
        except Exception:  # noqa: BLE001 - a 5xx makes SNS deliver the message again later
            log.exception("sns: storing feedback failed")
            return PlainTextResponse("store unavailable\n", status_code=503)
        log.info(
            "sns: %s: %d recorded, %d duplicates, %d unknown",
            message["MessageId"],
            outcome.recorded,
            outcome.duplicates,
            outcome.unknown,
        )
        return PlainTextResponse("ok\n")

    async def healthz(request: Request) -> Response:
        """200 while the database answers, 503 otherwise; nothing else is said."""
        up = await run_in_threadpool(store.reachable)
        return PlainTextResponse(
            "ok\n" if up else "unavailable\n", status_code=200 if up else 503, headers=SECURITY_HEADERS
        )

    routes = [
        Route("/u/{token}", unsubscribe_page, methods=["GET", "HEAD"]),
        Route("/u/{token}", unsubscribe, methods=["POST"]),
        Route("/u/{token}/resubscribe", resubscribe, methods=["POST"]),
        Route("/u/{token}/language", choose_language, methods=["POST"]),
        Route(config.feedback.sns_path, sns, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Mount("/archive", app=archive_app(config, store)),  # the public archive (newsletter.web.archive)
    ]
    if signups is not None:  # [signup]: the form, and the confirmation of what it asked
        limit = RateLimit(signups.settings.per_client, signups.settings.per_10_minutes)
        routes += signup_routes(signups, pages, read_body, too_large, limit)
    return Starlette(routes=routes)


def serve(
    config: Config, *, host: str, port: int, log_format: str = "text", forwarded_allow_ips: str = "127.0.0.1"
) -> None:
    """`newsletter serve`: the public app on uvicorn, until SIGINT or SIGTERM."""
    from newsletter.web.serving import listen, run

    listen(host, port).close()  # a taken port says so before anything else starts
    store = Store.open(config.store_url)
    # the store's data key signs the links, so links already sent still work after `keys rotate`
    app = create_app(config, store, store.secret_key())
    run(app, host=host, port=port, log_format=log_format, forwarded_allow_ips=forwarded_allow_ips)
