"""`newsletter feedback mailbox`: the bounce mailbox, read over IMAP (TLS or STARTTLS).

Each round logs in, takes every message of `[mailbox] folder` in order, reads it
(newsletter.feedback.bounces), checks its delivery token, has the store act on it, and only
then moves it to `[mailbox] processed_folder` (created when missing). Messages are fetched
with BODY.PEEK, so one that is not stored stays as it was, unread, for the next round: the
first store failure ends the round. A message is known to the store by the hash of its bytes,
so one stored but not moved (the connection dropped) changes nothing the second time. Nothing
is ever deleted.

Only a verified token acts on a person. A message without one (a bounce that quotes our
Message-ID, say: anyone holding a reply or a forwarded letter can quote it) is counted and
reported, never stored or acted on; a token that is not ours changes nothing, and neither does
an auto-reply. Only the first SIZE_LIMIT bytes of a message are fetched (IMAP's partial fetch:
a 50 MB message costs 1 MB), and at most RECIPIENT_LIMIT of its recipients are stored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import imaplib
import os
import re
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parseaddr

from newsletter.config import Config
from newsletter.config.mail import PASSWORD_ENV, MailboxSettings
from newsletter.errors import BadInput, NewsletterError
from newsletter.feedback.bounces import RECIPIENT_LIMIT, SIZE_LIMIT, Addresses, Reading, read_message
from newsletter.feedback.policy import FeedbackPolicy, is_hard_bounce, is_soft_bounce
from newsletter.feedback.sink import FeedbackSink
from newsletter.keys import DeliveryTokens


class MailboxError(NewsletterError):
    """The mailbox cannot be read: one line that says why."""


class LoginRefused(MailboxError):
    """Retrying will not help: the user or password is wrong."""


@dataclass
class MailboxStats:
    messages: int = 0
    kinds: Counter[str] = field(default_factory=Counter)  # bounce, complaint, unsubscribe, delay, auto-reply…
    # (a message with a forged token is counted in `forged` alone, one without a token in `untokened`)
    hard: int = 0
    soft: int = 0
    ours: int = 0  # bounces for our sending or our letter (SPF, DKIM, reputation…): nobody's fault but ours
    forged: int = 0
    untokened: int = 0  # would act, but name no delivery through a token of ours: counted, never acted on
    too_large: int = 0  # over SIZE_LIMIT: only the first SIZE_LIMIT bytes read
    beyond_limit: int = 0  # recipients over RECIPIENT_LIMIT in one message: counted, not stored
    bounced: int = 0
    complained: int = 0
    unsubscribed: int = 0
    unknown: int = 0  # events naming no delivery of ours
    duplicates: int = 0  # messages already acted on (stored, then not moved)
    failed: int = 0  # not stored: left where they were
    moved: int = 0
    errors: int = 0  # rounds the mailbox could not be read


def mailbox_password(environ: dict[str, str] | None = None) -> str:
    value = (environ if environ is not None else os.environ).get(PASSWORD_ENV, "")
    if not value:
        raise BadInput.single(PASSWORD_ENV, "not set: the password of [mailbox] user comes from the environment only")
    return value


def settings_of(config: Config) -> MailboxSettings:
    if config.mailbox is None:
        raise BadInput.single(str(config.path), "[mailbox]: missing; `feedback mailbox` needs at least host and user")
    return config.mailbox


class Mailbox:
    """One IMAP session on the folder: list, fetch, move. imaplib's errors become MailboxError."""

    def __init__(self, settings: MailboxSettings, password: str):
        self.s = settings
        self.where = f"IMAP {settings.host}:{settings.port}"
        self.conn = self._open(password)

    def _open(self, password: str) -> imaplib.IMAP4:
        s = self.s
        context = ssl.create_default_context()
        conn: imaplib.IMAP4 | None = None
        try:
            if s.security == "tls":
                conn = imaplib.IMAP4_SSL(s.host, s.port, ssl_context=context, timeout=s.timeout)
            else:
                conn = imaplib.IMAP4(s.host, s.port, timeout=s.timeout)
                conn.starttls(ssl_context=context)
        except (OSError, imaplib.IMAP4.error) as exc:  # ssl.SSLError is an OSError
            _close(conn)
            raise MailboxError(f"{self.where}: cannot connect securely ({s.security}): {_said(exc)}") from None
        try:
            conn.login(s.user, password)
        except imaplib.IMAP4.abort as exc:
            _close(conn)
            raise MailboxError(f"{self.where}: the connection dropped at login: {_said(exc)}") from None
        except imaplib.IMAP4.error as exc:
            _close(conn)
            raise LoginRefused(
                f"{self.where} refused the login for {s.user!r}: {_said(exc)} (password from {PASSWORD_ENV})"
            ) from None
        except OSError as exc:
            _close(conn)
            raise MailboxError(f"{self.where}: the connection failed at login: {_said(exc)}") from None
        self.conn = conn
        try:
            self.can_move = b"MOVE" in self._capabilities()
            if not self._ok(conn.list('""', _quoted(s.processed_folder))):
                self._ok(conn.create(_quoted(s.processed_folder)), f"cannot create the folder {s.processed_folder!r}")
            self._ok(conn.select(_quoted(s.folder)), f"cannot open the folder {s.folder!r}")
        except MailboxError:
            _close(conn)
            raise
        except (imaplib.IMAP4.error, OSError) as exc:
            _close(conn)
            raise MailboxError(f"{self.where}: {_said(exc)}") from None
        return conn

    def _capabilities(self) -> set[bytes]:
        data = self._ok(self.conn.capability(), "CAPABILITY")
        return {word.upper() for line in data if isinstance(line, bytes) for word in line.split()}

    def _ok(self, answer: tuple[str, list], what: str | None = None) -> list:
        """The data of an OK answer; otherwise MailboxError (or, without `what`, an empty list)."""
        status, data = answer
        if status == "OK":
            return [item for item in data if item is not None]
        if what is None:
            return []
        raise MailboxError(f"{self.where}: {what}: {status} {_said(data)}")

    def _call(self, what: str, *args: str) -> list:
        try:
            return self._ok(self.conn.uid(*args), what)
        except (imaplib.IMAP4.error, OSError) as exc:
            raise MailboxError(f"{self.where}: {what}: {_said(exc)}") from None

    def uids(self) -> list[str]:
        data = self._call("SEARCH", "SEARCH", "UNDELETED")
        return [uid.decode("ascii") for line in data for uid in line.split()]

    def fetch(self, uid: str) -> tuple[bytes, int] | None:
        """The message's first SIZE_LIMIT bytes, fetched without marking it read, and its whole
        size; None when it is gone."""
        data = self._call(f"FETCH {uid}", "FETCH", uid, f"(RFC822.SIZE BODY.PEEK[]<0.{SIZE_LIMIT}>)")
        said = b" ".join(item[0] if isinstance(item, tuple) else item for item in data if item)
        size = re.search(rb"RFC822\.SIZE (\d+)", said)
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                return item[1], int(size.group(1)) if size else len(item[1])
        return None

    def move(self, uid: str) -> None:
        target = _quoted(self.s.processed_folder)
        self._call(f"STORE {uid}", "STORE", uid, "+FLAGS.SILENT", "(\\Seen)")
        if self.can_move:
            self._call(f"MOVE {uid}", "MOVE", uid, target)
        else:  # copied, then flagged: left for the owner to expunge, never deleted here
            self._call(f"COPY {uid}", "COPY", uid, target)
            self._call(f"STORE {uid}", "STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")

    def close(self) -> None:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            self.conn.logout()
        _close(self.conn)


def _close(conn: imaplib.IMAP4 | None) -> None:
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.shutdown()


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _said(value: object) -> str:
    """What the server or the system said, as one printable line."""
    if isinstance(value, list | tuple):
        value = " ".join(_said(item) for item in value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value) or type(value).__name__
    return "".join(ch if ch.isprintable() else " " for ch in text)[:300]


def delivery_of(reading: Reading, tokens: DeliveryTokens) -> tuple[int | None, bool]:
    """(the delivery its tokens name, whether a token is not ours): every token found must be
    genuine and name the same delivery, or the message changes nothing."""
    found = {tokens.read(token, role) for role, token in reading.tokens}
    if None in found or len(found) > 1:
        return None, True
    return (found.pop() if found else None), False


class Poller:
    def __init__(self, sink: FeedbackSink, config: Config, secret: bytes, password: str, report: Callable[[str], None]):
        self.sink, self.config, self.password, self.report = sink, config, password, report
        self.settings = settings_of(config)
        self.tokens = DeliveryTokens(secret)
        self.secret = secret
        self.policy = FeedbackPolicy(config.feedback.soft_bounce_limit, config.feedback.soft_bounce_days)
        bounces = config.bounces
        unsubscribe = parseaddr(config.unsubscribe_mailto)[1] if config.unsubscribe_mailto else None
        self.addresses = Addresses(
            bounces.address if bounces else None, unsubscribe, bounces.delimiter if bounces else "+"
        )

    def round(self, stats: MailboxStats, stop: threading.Event) -> None:
        """Every message now in the folder, until the first one the store could not take."""
        box = Mailbox(self.settings, self.password)
        try:
            for uid in box.uids():
                if stop.is_set():
                    return
                fetched = box.fetch(uid)
                if fetched is None:
                    continue
                raw, size = fetched
                if not self.handle(uid, raw, stats, size=size):
                    return  # the rest stays unread for the next round
                box.move(uid)
                stats.moved += 1
        finally:
            box.close()

    def handle(self, uid: str, raw: bytes, stats: MailboxStats, *, size: int | None = None) -> bool:
        """Act on one message (`raw`: its first bytes, of `size` in all); False when the store
        failed (the message stays where it is)."""
        reading = read_message(raw, self.addresses, self.sink.now())
        stats.messages += 1
        self._count_limits(uid, reading, len(raw) if size is None else size, stats)
        delivery_id, forged = delivery_of(reading, self.tokens)
        if forged:  # counted apart from the kinds: it is none of them
            stats.forged += 1
            self.report(f"message {uid}: {reading.kind} with a token that is not ours: nothing changed")
            return True
        if reading.acts and delivery_id is None:  # counted apart too: it acts on nobody
            stats.untokened += 1
            self.report(f"message {uid}: {_described(reading)} without a token of ours: counted, nothing changed")
            return True
        stats.kinds[reading.kind] += 1
        if reading.kind == "unreadable":
            self.report(f"message {uid}: not readable ({reading.note}): nothing changed")
        if not reading.acts:
            return True
        try:
            outcome = self.sink.apply_mail(
                reading.events,
                message_key="mail:" + hashlib.sha256(raw).hexdigest(),
                delivery_id=delivery_id,
                occurred_at=reading.occurred_at,
                policy=self.policy,
                secret=self.secret,
            )
        except Exception as exc:  # noqa: BLE001 - the store failed: the message stays for the next run
            stats.failed += 1
            self.report(f"message {uid}: not stored, left unread for the next run: {_said(exc)}")
            return False
        if outcome.repeated_message:
            stats.duplicates += 1
            return True
        bounces = Counter(_bounce_kind(e) for e in reading.events if e.kind == "bounce")
        stats.hard += bounces["hard"]
        stats.soft += bounces["soft"]
        stats.ours += bounces["ours"]
        stats.bounced += outcome.bounced
        stats.complained += outcome.complained
        stats.unsubscribed += outcome.unsubscribed
        stats.unknown += outcome.unknown
        stats.beyond_limit += outcome.beyond_limit
        return True

    def _count_limits(self, uid: str, reading: Reading, size: int, stats: MailboxStats) -> None:
        if size > SIZE_LIMIT:
            stats.too_large += 1
            self.report(f"message {uid}: {size:,} bytes: only its first {SIZE_LIMIT:,} read")
        if reading.beyond_limit:
            stats.beyond_limit += reading.beyond_limit
            self.report(
                f"message {uid}: {len(reading.events) + reading.beyond_limit:,} recipients: "
                f"only the first {RECIPIENT_LIMIT} read, the rest counted"
            )


def _described(reading: Reading) -> str:
    """`bounce (hard)`, `complaint`: what a message would have done."""
    types = sorted({_bounce_kind(e) for e in reading.events if e.kind == "bounce"})
    return f"{reading.kind} ({', '.join(types)})" if types else reading.kind


def _bounce_kind(event) -> str:
    return "hard" if is_hard_bounce(event) else "soft" if is_soft_bounce(event) else "ours"


def poll_mailbox(
    sink: FeedbackSink,
    config: Config,
    secret: bytes,
    *,
    password: str,
    once: bool = False,
    stop: threading.Event | None = None,
    report: Callable[[str], None] = print,
) -> MailboxStats:
    """Rounds every `[mailbox] interval` seconds until `stop` (one with `once`). With `once`, a
    mailbox that cannot be read raises MailboxError; otherwise it is reported and tried again,
    except a refused login, which no retry mends."""
    poller = Poller(sink, config, secret, password, report)
    stop = stop or threading.Event()
    stats = MailboxStats()
    while not stop.is_set():
        started = dt.datetime.now(dt.UTC)
        try:
            poller.round(stats, stop)
        except LoginRefused:
            raise
        except MailboxError as exc:
            if once:
                raise
            stats.errors += 1
            report(f"{exc}; trying again in {poller.settings.interval:g} s")
        if once:
            break
        waited = (dt.datetime.now(dt.UTC) - started).total_seconds()
        stop.wait(max(poller.settings.interval - waited, 0.0))
    return stats
