"""Sign-up confirmations: the pending sign-up recorded, its message sent through the provider
outside any campaign, the link read, the confirmation made. Double opt-in: nobody is subscribed
without pressing the button behind the link sent to their address.

The form's answer never depends on whether the address is known, suppressed or new: all of this
runs after the answer (`after_answer`). A suppressed address (forgotten, complained,
hard-bounced) gets no message at all; someone already on the list is told so, with the link to
their own page; an address gets at most one message every 10 minutes. What a provider answered
is logged without the address or the name it may quote.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from newsletter.audience.signup import SOURCE, SignupForm
from newsletter.config import Config
from newsletter.config.signup import SignupSettings
from newsletter.keys import ConfirmationTokens, TokenSigner, unsubscribe_url
from newsletter.message.composer import Outgoing
from newsletter.message.confirmation import already_subscribed_message, confirmation_message
from newsletter.store import Store
from newsletter.store.database import redact
from newsletter.store.signups import EXPIRED, UNKNOWN, Confirmation, KnownSubscriber, PendingSignup, SignupRequest

log = logging.getLogger("newsletter.signup")

VALID_FOR = dt.timedelta(days=7)


# What the confirmation page can show for a link.
VALID = "valid"
INVALID = "invalid"


class NotRecorded(RuntimeError):
    """The store failed; what it said is left out, as it may quote the person."""


@dataclass(frozen=True)
class LinkState:
    state: str  # VALID, INVALID (not genuine), EXPIRED, UNKNOWN (used or replaced)
    signup: PendingSignup | None = None


def without_person(text: str, address: str, name: str) -> str:
    """A provider's reply fit for a log line: no address (`redact`), nor the person's name, nor
    the local part of their address standing alone (`550 user jane unknown`)."""
    cleaned = redact(text) or ""
    local = address.rpartition("@")[0].split("+", 1)[0]
    words = [name, *name.split(), local]
    for word in sorted({w for w in words if len(w) >= 3}, key=len, reverse=True):
        cleaned = re.sub(re.escape(word), "<person>", cleaned, flags=re.IGNORECASE)
    return cleaned


class Signups:
    """The sign-up service for `newsletter serve`: the store, the settings and a way to send."""

    def __init__(
        self,
        config: Config,
        store: Store,
        secret: bytes,
        send: Callable[[Outgoing], str],
    ):
        if config.signup is None:
            raise ValueError("no [signup] in newsletter.toml")
        self.config = config
        self.settings: SignupSettings = config.signup
        self.store = store
        self.secret = secret
        self.tokens = ConfirmationTokens(secret)
        self.pages = TokenSigner(secret)  # the reader's own page, for someone already on the list
        self.send = send
        self.now = store.db.now  # one clock for the links and the store's records

    def after_answer(self, form: SignupForm) -> None:
        """Everything a sign-up does, once its answer is on its way: never raises, and a failure
        is logged without the address or the name."""
        try:
            outcome = self.request(form)
            if isinstance(outcome, PendingSignup):
                self.send_confirmation(outcome)
            elif isinstance(outcome, KnownSubscriber):
                self.send_reminder(outcome)
        except Exception as exc:  # noqa: BLE001 - a database error's text quotes the row's values
            log.warning("signup: the sign-up could not be completed (%s)", type(exc).__name__)

    def request(self, form: SignupForm) -> PendingSignup | KnownSubscriber | None:
        """Record the sign-up: the pending sign-up whose confirmation is to be sent now, the person
        already on the list to be told so, or None (nothing to send)."""
        return self.store.signups.request(
            SignupRequest(
                email=form.email,
                name=form.name,
                language=form.language,
                list_name=self.settings.list_name,
                consent_version=self.settings.consent_version,
                source=SOURCE,
            ),
            self.secret,
            valid_for=VALID_FOR,
        )

    def send_confirmation(self, pending: PendingSignup) -> bool:
        """Send the confirmation message; on failure the address may ask again at once."""
        token = self.tokens.make(pending.token_key, pending.requested_at)
        message = confirmation_message(self.config, pending.email, pending.language, token, self.now())
        return self._sent(message, pending.email, pending.name, lambda: self.store.signups.not_sent(pending.token_key))

    def send_reminder(self, person: KnownSubscriber) -> bool:
        """Tell someone already on the list that they are, with the link to their page."""
        page = unsubscribe_url(self.config.base_url, self.pages.make(person.token_key))
        message = already_subscribed_message(self.config, person.email, person.language, page, self.now())
        return self._sent(message, person.email, person.name, lambda: self.store.signups.not_told(person))

    def _sent(self, message: Outgoing, address: str, name: str, undo: Callable[[], None]) -> bool:
        try:
            self.send(message)
        except Exception as exc:  # noqa: BLE001 - any provider failure: logged, the person can retry
            log.warning("signup: a message could not be sent: %s", without_person(str(exc), address, name))
            try:
                undo()
            except Exception as failed:  # noqa: BLE001 - as in after_answer
                log.warning("signup: the failure could not be recorded (%s)", type(failed).__name__)
            return False
        return True

    def link(self, token: str) -> LinkState:
        """What a confirmation link stands for; changes nothing."""
        found = self.tokens.read(token)
        if found is None:
            return LinkState(INVALID)
        key, issued = found
        if issued + VALID_FOR <= self.now():
            return LinkState(EXPIRED)
        pending = self.store.signups.pending(key)
        if pending is None:
            return LinkState(UNKNOWN)
        if pending.expires_at <= self.now():
            return LinkState(EXPIRED)
        return LinkState(VALID, pending)

    def confirm(self, token: str) -> Confirmation | LinkState:
        state = self.link(token)
        if state.state != VALID or state.signup is None:
            return state
        try:
            return self.store.signups.confirm(state.signup.token_key, self.secret)
        except Exception as exc:
            # a database error's text quotes the row it wrote (address, name): the server's log
            # gets its kind only
            raise NotRecorded(f"signup: the confirmation could not be recorded ({type(exc).__name__})") from None
