"""Sign-up confirmations: the pending sign-up recorded, its message sent through the provider
outside any campaign, the link read, the confirmation made. Double opt-in: nobody is subscribed
without pressing the button behind the link sent to their address.

The form's answer never depends on whether the address is known, suppressed or new, and the
confirmation message goes out after the answer; a suppressed address (forgotten, complained,
hard-bounced) gets no message at all, and an address gets at most one every RESEND_AFTER.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from newsletter.audience.signup import SOURCE, SignupForm
from newsletter.config import Config
from newsletter.config.signup import SignupSettings
from newsletter.keys import ConfirmationTokens
from newsletter.message.composer import Outgoing
from newsletter.message.confirmation import confirmation_message
from newsletter.store import Store
from newsletter.store.signups import EXPIRED, UNKNOWN, Confirmation, PendingSignup, SignupRequest

log = logging.getLogger("newsletter.signup")

RESEND_AFTER = dt.timedelta(minutes=10)
VALID_FOR = dt.timedelta(days=7)


# What the confirmation page can show for a link.
VALID = "valid"
INVALID = "invalid"


@dataclass(frozen=True)
class LinkState:
    state: str  # VALID, INVALID (not genuine), EXPIRED, UNKNOWN (used or replaced)
    signup: PendingSignup | None = None


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
        self.send = send
        self.now = store.db.now  # one clock for the links and the store's records

    def request(self, form: SignupForm) -> PendingSignup | None:
        """Record the sign-up; the pending sign-up whose confirmation is to be sent now, or None."""
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
            resend_after=RESEND_AFTER,
            valid_for=VALID_FOR,
        )

    def send_confirmation(self, pending: PendingSignup) -> bool:
        """Send the confirmation message; on failure the address may ask again at once."""
        token = self.tokens.make(pending.token_key, pending.requested_at)
        message = confirmation_message(self.config, pending.email, pending.language, token, self.now())
        try:
            self.send(message)
        except Exception as exc:  # noqa: BLE001 - any provider failure: logged, the person can retry
            log.warning("signup: the confirmation message could not be sent: %s", exc)
            self.store.signups.not_sent(pending.token_key)
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
        return self.store.signups.confirm(state.signup.token_key, self.secret)
