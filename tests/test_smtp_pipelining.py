"""SMTP pipelining (RFC 2920): MAIL FROM, RCPT TO and DATA in one write when the server offers
PIPELINING, one command at a time when it does not, and every reply judged as before.

Two servers: aiosmtpd (tests/smtp_sink.py), which offers PIPELINING or not, for what is
delivered and how refusals are read; and a scripted server on a raw socket, which records
what had arrived before it sent its first reply to the envelope, for whether the client
really waited or not (aiosmtpd does not say how commands were grouped on the wire).
"""

from __future__ import annotations

import re
import socket
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from smtp_sink import smtp_sink  # noqa: F401 - fixture

from newsletter.config.delivery import SMTPSettings
from newsletter.message.composer import Outgoing
from newsletter.sending.providers.base import SendError
from newsletter.sending.providers.smtp import SMTPProvider, _dot_stuffed

MESSAGE = b"From: news@example.org\r\nTo: {to}\r\nSubject: hello\r\n\r\n.a line starting with a dot\r\nbye\r\n"


def outgoing(to: str, n: int = 1) -> Outgoing:
    return Outgoing("news@example.org", to, f"<m{n}@example.org>", MESSAGE.replace(b"{to}", to.encode()), n)


def provider(port: int) -> SMTPProvider:
    return SMTPProvider(SMTPSettings(host="127.0.0.1", port=port, security="none", timeout=5), None, None)


@pytest.mark.parametrize("pipelining", [True, False])
def test_messages_arrive_whole_with_and_without_pipelining(smtp_sink, pipelining):
    sink = smtp_sink(pipelining=pipelining)
    p = provider(sink.port)
    for n in range(3):
        assert p.send(outgoing(f"reader{n}@example.org", n)) == f"<m{n}@example.org>"
    p.close()
    got = sink.received()
    assert [m.rcpt_tos for m in got] == [(f"reader{n}@example.org",) for n in range(3)]
    assert all(m.mail_from == "news@example.org" for m in got)
    assert b"\r\n.a line starting with a dot\r\n" in got[0].raw  # the doubled dot undone by the server


@pytest.mark.parametrize("pipelining", [True, False])
def test_refusals_are_judged_alike_with_and_without_pipelining(smtp_sink, pipelining):
    sink = smtp_sink(pipelining=pipelining, refuse_recipients=("gone@example.org",))
    p = provider(sink.port)
    with pytest.raises(SendError) as refused:
        p.send(outgoing("gone@example.org"))
    # the recipient's own refusal: failed for this person, not retried, not the campaign's end
    assert not (refused.value.retryable or refused.value.fatal or refused.value.uncertain), refused.value
    assert "RCPT TO refused: 550" in str(refused.value)
    assert p.send(outgoing("next@example.org", 2)) == "<m2@example.org>"  # the session goes on after RSET

    sink.configure(mail_from_reply="550 5.7.1 Sender address rejected: not allowed to send")
    with pytest.raises(SendError) as sender:
        p.send(outgoing("third@example.org", 3))
    assert sender.value.fatal and "MAIL FROM refused: 550" in str(sender.value)
    sink.configure(mail_from_reply=None, drop_before_354=1.0)
    with pytest.raises(SendError) as dropped:
        p.send(outgoing("fourth@example.org", 4))
    assert dropped.value.retryable and not dropped.value.uncertain  # nothing of the message had left
    sink.configure(drop_before_354=0.0)
    assert p.send(outgoing("fifth@example.org", 5)) == "<m5@example.org>"  # a new connection
    p.close()
    assert [m.rcpt_tos[0] for m in sink.received()] == ["next@example.org", "fifth@example.org"]


class ScriptedServer:
    """Answers one message; records the bytes that had arrived when it had to answer MAIL FROM
    (after waiting up to `patience` seconds for more)."""

    def __init__(self, *, offer_pipelining: bool, patience: float = 0.5):
        self.offer = offer_pipelining
        self.patience = patience
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.before_first_reply = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            lines = _Lines(conn)
            conn.sendall(b"220 scripted ESMTP\r\n")
            lines.next()  # EHLO
            extensions = b"250-PIPELINING\r\n" if self.offer else b""
            conn.sendall(b"250-scripted\r\n" + extensions + b"250 8BITMIME\r\n")
            seen = [lines.next()]  # MAIL FROM, then whatever follows it without waiting for a reply
            while len(seen) < 3 and (line := lines.next(patience=self.patience)):
                seen.append(line)
            self.before_first_reply = b"".join(seen)
            replies = {b"mail": b"250 ok\r\n", b"rcpt": b"250 ok\r\n", b"data": b"354 go on\r\n"}
            conn.sendall(b"".join(replies[line[:4].lower()] for line in seen))
            while (line := lines.next()) and line != b".\r\n":  # commands not yet answered, then the message
                if line[:4].lower() in replies:
                    conn.sendall(replies[line[:4].lower()])
            conn.sendall(b"250 queued\r\n")
            if lines.next().lower().startswith(b"quit"):
                conn.sendall(b"221 bye\r\n")

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)


class _Lines:
    def __init__(self, conn: socket.socket):
        self.conn = conn
        self.buffer = b""

    def next(self, patience: float = 5.0) -> bytes:
        """The next CRLF-ended line, or b"" when none came within `patience` seconds."""
        self.conn.settimeout(patience)
        while b"\r\n" not in self.buffer:
            try:
                chunk = self.conn.recv(65536)
            except TimeoutError:
                return b""
            if not chunk:
                return b""
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line + b"\r\n"


@pytest.mark.parametrize("offer", [True, False])
def test_the_envelope_goes_in_one_write_only_when_the_server_offers_pipelining(offer):
    server = ScriptedServer(offer_pipelining=offer)
    p = provider(server.port)
    assert p.send(outgoing("reader@example.org")) == "<m1@example.org>"
    p.close()
    server.close()
    verbs = [line.split(b":")[0].lower() for line in server.before_first_reply.splitlines()]
    assert verbs == ([b"mail from", b"rcpt to", b"data"] if offer else [b"mail from"]), server.before_first_reply


def test_a_line_break_in_an_address_sends_nothing_and_fails_that_delivery_only(smtp_sink):
    sink = smtp_sink()
    p = provider(sink.port)
    with pytest.raises(SendError) as refused:
        p.send(outgoing("reader@example.org\r\nRCPT TO:<other@example.org>"))
    assert not (refused.value.retryable or refused.value.fatal or refused.value.uncertain)
    assert p.send(outgoing("next@example.org", 2)) == "<m2@example.org>"
    p.close()
    assert [m.rcpt_tos for m in sink.received()] == [("next@example.org",)]


@given(st.lists(st.sampled_from([b".", b"..", b"\r\n", b"\n", b"\r", b"a", b"\r\n.", b"\n."]), max_size=30).map(b"".join))
def test_dot_stuffing_is_smtplibs_whatever_the_line_ends(data):
    expected = re.sub(rb"(?m)^\.", b"..", data)  # what smtplib's data() does (after its own CRLF fix)
    expected += b"" if expected.endswith(b"\r\n") else b"\r\n"
    assert _dot_stuffed(data) == expected + b".\r\n"
