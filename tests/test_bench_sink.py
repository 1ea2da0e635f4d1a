"""The benchmark's SMTP sink (bench/harness/sink.py): its DATA read in one piece must accept
what stock aiosmtpd accepts and hand the handler the same bytes; its PIPELINING must answer
commands sent in one write, in order; its size limit still refuses with 552 after the data."""

from __future__ import annotations

import smtplib
import socket

import pytest
from aiosmtpd.controller import Controller
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.harness.sink import CountingHandler, PipeliningHandler, WholeDataController, WholeDataSMTP, serve


class StockKeeping(CountingHandler):
    def __init__(self):
        super().__init__()
        self.contents: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.contents.append(envelope.content)
        return await super().handle_DATA(server, session, envelope)


class Keeping(StockKeeping, PipeliningHandler):
    pass


class SmallLimit(WholeDataController):
    def factory(self):
        return WholeDataSMTP(self.handler, **{**self.SMTP_kwargs, "data_size_limit": 2000})


@pytest.fixture(scope="module")
def sinks():
    """(ours, stock aiosmtpd, ours with a 2,000-byte limit), each with a keeping handler."""
    started = []
    for kind in (WholeDataController, Controller, SmallLimit):
        handler = StockKeeping() if kind is Controller else Keeping()
        controller, port = serve(handler, kind)
        started.append((controller, handler, port))
    yield started
    for controller, _handler, _port in started:
        controller.stop()


def send_raw(port: int, data: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("bench")
        client.mail("a@example.org")
        client.rcpt("b@example.org")
        code, reply = client.data(data)
    return code, reply


LINES = st.lists(st.sampled_from([b"", b".", b"..", b".x", b"x.", b"text line", b"\xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a", b"a" * 300]),
                 max_size=12)


@settings(max_examples=40, deadline=None)
@given(lines=LINES)
def test_same_bytes_as_stock_aiosmtpd(sinks, lines):
    data = b"\r\n".join(lines) + (b"\r\n" if lines else b"")
    seen = []
    for _controller, handler, port in sinks[:2]:
        before = len(handler.contents)
        code, _reply = send_raw(port, data)
        assert code == 250
        assert len(handler.contents) == before + 1
        seen.append(handler.contents[-1])
    assert seen[0] == seen[1]


def test_pipelined_commands_answered_in_order(sinks):
    _controller, handler, port = sinks[0]
    before = handler.count
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220")
        sock.sendall(b"EHLO bench\r\n")
        ehlo = []
        while not ehlo or ehlo[-1][3:4] == b"-":
            ehlo.append(reader.readline())
        assert b"250-PIPELINING\r\n" in ehlo
        sock.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        assert [reader.readline()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
        # the end of the data, the next transaction and QUIT in one write as well
        sock.sendall(b"Subject: one\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n")
        assert [reader.readline()[:3] for _ in range(4)] == [b"250", b"250", b"250", b"354"]
        sock.sendall(b".\r\nQUIT\r\n")
        assert [reader.readline()[:3] for _ in range(2)] == [b"250", b"221"]
    assert handler.count == before + 2


def test_too_much_data_refused_after_the_data(sinks):
    _controller, handler, port = sinks[2]
    before = handler.count
    code, _reply = send_raw(port, b"x" * 500 + (b"\r\n" + b"y" * 900) * 4 + b"\r\n")
    assert code == 552
    assert send_raw(port, b"small\r\n")[0] == 250  # the session goes on
    assert handler.count == before + 1


def test_stock_sink_does_not_offer_pipelining(sinks):
    _controller, _handler, port = sinks[1]
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("bench")
        assert not client.has_extn("pipelining")

