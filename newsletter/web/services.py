"""What the public handlers work with, in one typed object that the app factory puts on
`app.state.services`: the handlers are plain functions of a request, so any one of them can be
mounted alone with the services it needs (as tests/test_web_handlers.py does)."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from newsletter.archive.site import Files, generated
from newsletter.config import Config
from newsletter.feedback.policy import FeedbackPolicy
from newsletter.keys import TokenSigner
from newsletter.message.composer import Outgoing
from newsletter.sending.confirmations import Signups
from newsletter.store import Store
from newsletter.web.batches import Batches
from newsletter.web.limits import RateLimit
from newsletter.web.pages import Pages
from newsletter.web.serving import ServeError


class ArchiveFiles:
    """/archive/'s files: the indexes and feeds made again only when the store's archive version
    changes (an issue published or its pages replaced); an issue's pages as they were published."""

    def __init__(self, config: Config, store: Store):
        self.config = config
        self.store = store
        self._lock = threading.Lock()
        self._version: tuple[int, str] | None = None
        self._indexes: Files = {}

    def indexes(self) -> Files:
        version = self.store.archive.version()
        with self._lock:
            if self._version != version:
                self._indexes = generated(self.config, self.store.archive.publications())
                self._version = version
            return self._indexes

    def find(self, path: str) -> tuple[str, bytes] | None:
        """(media type, bytes) of the file at `path` under /archive/, or None."""
        if path in ("", "/"):
            path = "index.html"
        if "/" not in path:
            return self.indexes().get(path)
        slug, _, name = path.partition("/")
        if not name or "/" in name:
            return None
        return self.store.archive.file(slug, name)


@dataclass(frozen=True)
class Services:
    config: Config
    store: Store
    secret: bytes  # the store's data key: it signs the links and keys the feedback's hashes
    signer: TokenSigner
    pages: Pages
    archive: ArchiveFiles
    policy: FeedbackPolicy
    certificates: Callable[[str], bytes]  # an SNS signing certificate's PEM, by URL
    confirm_topic: Callable[[str], None]  # visits a verified SNS SubscribeURL
    now: Callable[[], dt.datetime] | None = None  # the clock SNS messages are checked against
    signups: Signups | None = None  # with [signup] only
    limit: RateLimit | None = None  # the sign-up form's, with [signup] only (counted in the store)
    batches: Batches = field(default_factory=Batches)  # concurrent one-click unsubscribes, one commit


def services_of(request: Request) -> Services:
    return request.app.state.services


def provider_sender(config: Config) -> Callable[[Outgoing], str]:
    """Sends one message (a sign-up's confirmation) through `[signup] provider`, else `[send] provider`."""
    from newsletter.sending.engine import provider_factory

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
