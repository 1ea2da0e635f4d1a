"""SMTP with smtplib: STARTTLS or implicit TLS, login from the environment, one connection
kept open per worker and opened again when the server drops it. The envelope sender is the
message's VERP address when `[bounces]` is set (newsletter.message.composer), else From."""

from __future__ import annotations

import contextlib
import os
import re
import smtplib
import ssl

from newsletter.config.delivery import SMTPSettings
from newsletter.message.composer import Outgoing
from newsletter.sending.providers.base import SendError

USERNAME_ENV = "NEWSLETTER_SMTP_USERNAME"
PASSWORD_ENV = "NEWSLETTER_SMTP_PASSWORD"


class SMTPProvider:
    def __init__(self, settings: SMTPSettings, username: str | None, password: str | None):
        self.settings = settings
        self.username = username
        self.password = password
        self.conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            if s.security == "tls":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
                )
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                if s.security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            # mail() does not greet by itself (only sendmail() and login() do), and smtplib
            # forgets the greeting after STARTTLS: without this, MAIL FROM comes before EHLO.
            conn.ehlo_or_helo_if_needed()
            if self.username:
                conn.login(self.username, self.password or "")
            return conn
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(
                f"SMTP {s.host}:{s.port} refused the login for {self.username!r}: {_reply(exc)}", fatal=True
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise SendError(f"SMTP {s.host}:{s.port}: {exc}", fatal=True) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"SMTP {s.host}:{s.port}: cannot connect: {exc}", unavailable=True) from exc

    def send(self, message: Outgoing) -> str:
        if self.conn is None:
            self.conn = self._connect()
        conn = self.conn
        stage = "before the message"
        try:
            # with [bounces], the VERP address naming this delivery: bounces come back to it
            code, reply = conn.mail(message.return_path or message.sender)
            if code != 250:
                raise self._reset(_refused(code, reply, "MAIL FROM"))
            code, reply = conn.rcpt(message.recipient)
            if code not in (250, 251):
                raise self._reset(_refused(code, reply, "RCPT TO"))
            # DATA by hand: until the server's 354 nothing of the message has left, so a
            # connection lost before it is a plain retry, never an uncertain delivery
            conn.putcmd("data")
            code, reply = conn.getreply()
            if code != 354:
                raise self._reset(_refused(code, reply, "DATA"))
            stage = "after the message was handed over"
            conn.send(_dot_stuffed(message.data))
            code, reply = conn.getreply()
            if code != 250:
                raise self._reset(_refused(code, reply, "DATA"))
            return message.message_id
        except SendError:
            raise
        except smtplib.SMTPDataError as exc:
            # an error reply to DATA or to its end: the server answered, so it did not take it
            raise self._reset(_refused(exc.smtp_code, exc.smtp_error, "DATA")) from exc
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError, smtplib.SMTPException) as exc:
            self._drop()
            if stage == "before the message":
                raise SendError(f"SMTP connection lost {stage}: {exc}", retryable=True) from exc
            raise SendError(f"SMTP connection lost {stage}; it may have been delivered: {exc}", uncertain=True) from exc

    def _reset(self, error: SendError) -> SendError:
        """After a refusal: RSET for the next message, or a fresh connection if that fails."""
        try:
            if self.conn is not None:
                self.conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()
        return error

    def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):  # closing a broken socket
                self.conn.close()
        self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.conn.quit()
        self._drop()


def _dot_stuffed(data: bytes) -> bytes:
    """The message as smtplib's data() carries it: leading dots doubled, then the final dot."""
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {text}"


def _refused(code: int, reply: bytes | str, step: str) -> SendError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    message = f"SMTP {step} refused: {code} {text}"
    if code in (530, 535) or (step == "MAIL FROM" and code >= 500):
        return SendError(message, fatal=True)  # the sender itself is not allowed to send
    if 400 <= code < 500:
        return SendError(message, retryable=True)
    return SendError(message)


class SMTPFactory:
    name = "smtp"

    def __init__(self, settings: SMTPSettings, environ: dict[str, str] | None = None):
        env = environ if environ is not None else os.environ
        self.settings = settings
        self.username = env.get(USERNAME_ENV) or None
        self.password = env.get(PASSWORD_ENV) or None

    def max_rate(self) -> float | None:
        return None

    def open(self) -> SMTPProvider:
        return SMTPProvider(self.settings, self.username, self.password)
