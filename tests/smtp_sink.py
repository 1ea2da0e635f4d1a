"""A real SMTP server on loopback (aiosmtpd) that records what it receives, for tests.

`SinkHandler` keeps every accepted message (envelope sender, envelope recipients, raw
bytes) behind a lock, because the server runs in its own thread while the test reads.
It can refuse a seeded-random fraction of messages with a 4xx at the end of DATA (the
"throttled, try again" every bulk sender meets), refuse the sender at MAIL FROM, refuse
logins, refuse named recipients with a 550 at RCPT TO, drop the connection after DATA and
before its 354 (nothing of the message has left the client), and go down: new connections
are closed at once and sessions get a 421 at their next command (an outage, or a server
shutting down between transactions). Each can be changed while the server runs. It offers
PIPELINING (RFC 2920) unless told not to (`pipelining=False`), as real servers do.

Use the `smtp_sink` fixture: `sink = smtp_sink(refuse_fraction=0.3, seed=1)` starts a
server and returns its handler, which knows its `port`; every server started through
the fixture is stopped at the end of the test.
"""

from __future__ import annotations

import email
import email.policy
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

THROTTLED = "451 4.7.0 Throttling failure: try again later"
SENDER_REFUSED = "550 5.7.1 Sender address rejected: not allowed to send"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    at: float = 0.0  # time.monotonic() when the server accepted it (one clock for every process)

    def parse(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)


class SinkHandler:
    def __init__(self, *, refuse_fraction: float = 0.0, seed: int = 0, refuse_reply: str = THROTTLED,
                 mail_from_reply: str | None = None, credentials: tuple[str, str] | None = None,
                 keep_raw: bool = True, refuse_recipients: tuple[str, ...] = (), drop_before_354: float = 0.0,
                 pipelining: bool = True):
        self.lock = threading.Lock()
        self.refuse_fraction = refuse_fraction
        self.refuse_reply = refuse_reply
        self.rng = random.Random(seed)
        self.mail_from_reply = mail_from_reply  # e.g. SENDER_REFUSED; None accepts the sender
        self.credentials = credentials  # the one login accepted when the server requires auth
        self.keep_raw = keep_raw  # False: record envelopes only (big runs)
        self.refuse_recipients = {a.lower() for a in refuse_recipients}  # answered 550 at RCPT TO
        self.drop_before_354 = drop_before_354  # fraction of DATA commands met by a dropped connection
        self.down = False  # an outage: connections closed, sessions answered 421
        self.pipelining = pipelining  # offered in EHLO (RFC 2920), as Postfix, Exim and SES do
        self.dropped = 0
        self.messages: list[Received] = []
        self.refused = 0  # messages refused at the end of DATA
        self.refused_senders = 0
        self.refused_logins = 0
        self.port = 0

    # --- aiosmtpd hooks (run in the server's thread) ----------------------------------------

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:  # aiosmtpd reads one command line at a time: pipelined ones wait their turn
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.down:
            server.transport.close()
            return "421 4.3.2 Service shutting down, try again later"
        with self.lock:
            reply = self.mail_from_reply
            if reply:
                self.refused_senders += 1
                return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            if address.lower() in self.refuse_recipients:
                return f"550 5.1.1 <{address}>: Recipient address rejected"  # quoting it, as servers do
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def drops_this_data(self) -> bool:
        with self.lock:
            drop = bool(self.drop_before_354) and self.rng.random() < self.drop_before_354
            self.dropped += drop
            return drop

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        with self.lock:
            if self.refuse_fraction and self.rng.random() < self.refuse_fraction:
                self.refused += 1
                return self.refuse_reply
            self.messages.append(
                Received(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(raw) if self.keep_raw else b"", time.monotonic())
            )
        return "250 OK: queued"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        with self.lock:
            good = self.credentials
            ok = good is not None and (auth_data.login, auth_data.password) == (good[0].encode(), good[1].encode())
            if not ok:
                self.refused_logins += 1
        return AuthResult(success=ok, handled=False)

    # --- for the test (any thread) ----------------------------------------------------------

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.messages)

    def timestamps(self) -> list[float]:
        """When each accepted message arrived (time.monotonic()), in order of arrival."""
        with self.lock:
            return [message.at for message in self.messages]

    def per_recipient(self) -> Counter[str]:
        """How many messages each envelope recipient got (addresses lower-cased)."""
        counts: Counter[str] = Counter()
        for message in self.received():
            for rcpt in message.rcpt_tos:
                counts[rcpt.lower()] += 1
        return counts

    def configure(self, **changes) -> None:
        with self.lock:
            for name, value in changes.items():
                if not hasattr(self, name):
                    raise AttributeError(name)
                setattr(self, name, value)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FaultySMTP(SMTP):
    """aiosmtpd's server with the sink's connection-level faults."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if self.event_handler.down:
            transport.close()

    async def smtp_DATA(self, arg: str) -> None:
        if self.event_handler.drops_this_data():
            self.transport.close()  # before the 354: the client has sent nothing of the message
            return
        await super().smtp_DATA(arg)


class FaultyController(Controller):
    def factory(self):
        return FaultySMTP(self.handler, **self.SMTP_kwargs)


def start_sink(*, require_auth: bool = False, **options) -> tuple[SinkHandler, Controller]:
    handler = SinkHandler(**options)
    last_error: Exception | None = None
    for _ in range(5):  # the free port can be taken between the check and the bind
        port = free_port()
        kwargs = dict(hostname="127.0.0.1", port=port, ready_timeout=10)
        if require_auth:
            kwargs.update(authenticator=handler.authenticate, auth_required=True, auth_require_tls=False)
        controller = FaultyController(handler, **kwargs)
        try:
            controller.start()
        except Exception as exc:  # noqa: BLE001 - retried on another port
            last_error = exc
            continue
        handler.port = port
        return handler, controller
    raise RuntimeError(f"cannot start the SMTP sink: {last_error}")


@pytest.fixture
def smtp_sink():
    """A factory: `smtp_sink(**options)` starts a sink on loopback and returns its handler."""
    controllers: list[Controller] = []

    def start(**options) -> SinkHandler:
        handler, controller = start_sink(**options)
        controllers.append(controller)
        return handler

    yield start
    for controller in controllers:
        controller.stop()


def smtp_config(port: int, *, rate: float = 2000, workers: int = 4, max_attempts: int = 8) -> str:
    """TOML to append to a test project's newsletter.toml to send to a sink."""
    return (
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 10\n\n'
        f"[send]\nrate = {rate}\nthreads = {workers}\nmax_attempts = {max_attempts}\n"
    )
