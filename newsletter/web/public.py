"""`newsletter serve`: the public endpoints, an ASGI app (Starlette) behind the HTTPS proxy,
assembled here from one module per feature, whose handlers take their services from
`app.state.services` (newsletter.web.services):

- /u/<token>, /u/<token>/resubscribe, /u/<token>/language   newsletter.web.unsubscribe
- /subscribe, /confirm/<token> (with [signup])                newsletter.web.signup
- /archive/…                                                  newsletter.web.archive
- POST feedback.sns_path (/sns)                               newsletter.web.sns
- /healthz                                                    newsletter.web.health

The paths themselves are written once, in newsletter.keys.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from newsletter.config import Config
from newsletter.feedback.policy import FeedbackPolicy
from newsletter.feedback.sns import CertificateCache, fetch_certificate
from newsletter.keys import TokenSigner
from newsletter.message.composer import Outgoing
from newsletter.sending.confirmations import Signups
from newsletter.store import Store
from newsletter.web import archive, health, signup, sns, unsubscribe
from newsletter.web.limits import RateLimit
from newsletter.web.pages import Pages
from newsletter.web.services import ArchiveFiles, Services, provider_sender


def open_services(
    config: Config,
    store: Store,
    secret: bytes,
    *,
    load_certificate: Callable[[str], bytes] | None = None,
    confirm: Callable[[str], None] = sns.confirm_subscription,
    now: Callable[[], dt.datetime] | None = None,
    send_message: Callable[[Outgoing], str] | None = None,
) -> Services:
    """The services of the public app; a sign-up's confirmations go through `send_message`, by
    default the provider that newsletter.toml names for them."""
    signups, limit = None, None
    if config.signup is not None:
        signups = Signups(config, store, secret, send_message or provider_sender(config))
        rules = config.signup
        limit = RateLimit(rules.per_client, rules.per_domain, rules.per_mailbox, overall=rules.per_10_minutes)
    return Services(
        config=config,
        store=store,
        secret=secret,
        signer=TokenSigner(secret),
        pages=Pages(config),
        archive=ArchiveFiles(config, store),
        policy=FeedbackPolicy(config.feedback.soft_bounce_limit, config.feedback.soft_bounce_days),
        certificates=load_certificate or CertificateCache(fetch_certificate),
        confirm_topic=confirm,
        now=now,
        signups=signups,
        limit=limit,
    )


def create_app(config: Config, store: Store, secret: bytes, **options: Any) -> Starlette:
    """The public app: its routes over the services `open_services` makes (`options` are its
    keyword arguments: a certificate loader, the SubscribeURL visit, a clock, a message sender)."""
    services = open_services(config, store, secret, **options)
    routes: list[BaseRoute] = [
        *unsubscribe.ROUTES,
        *sns.routes(config.feedback.sns_path),
        *health.ROUTES,
        *archive.ROUTES,
    ]
    if services.signups is not None:  # [signup]: the form, and the confirmation of what it asked
        routes += signup.ROUTES
    app = Starlette(routes=routes)
    app.state.services = services
    return app


def serve(
    config: Config, *, host: str, port: int, log_format: str = "text", forwarded_allow_ips: str = "127.0.0.1"
) -> None:
    """`newsletter serve`: the public app on uvicorn, until SIGINT or SIGTERM."""
    from newsletter.web.serving import listen, run

    listen(host, port).close()  # a taken port says so before anything else starts
    store = Store.open(config.store_url)
    # the store's data key signs the links, so links already sent still work after `keys rotate`
    app = create_app(config, store, store.keys.data_key())
    run(app, host=host, port=port, log_format=log_format, forwarded_allow_ips=forwarded_allow_ips)
