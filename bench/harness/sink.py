"""An SMTP sink (aiosmtpd) on loopback, in a process of its own so that its CPU does not
compete with the sender for the same GIL.

    python -m bench.harness.sink [--stock]

Prints `port N` once listening on 127.0.0.1, then answers each line read on stdin:
`stats` → one JSON line {"count", "refused", "first", "last", "cpu_s"} (first/last:
time.monotonic() of the first and last accepted message, comparable across processes on
Linux; cpu_s: the sink process's CPU time so far); `reset` → forgets what was counted;
`quit` or end of input → stops. It accepts every message and keeps nothing but the count.

aiosmtpd as it comes (`--stock`) reads DATA one line at a time, an await and a log.debug
a line: about 800 of them for the 60 KB bilingual message, 2.3–2.4 ms of the sink's CPU a
message, so that at 500/s the sink alone took 1.2 of the machine's 2 cores. By default
the sink is aiosmtpd with two changes a real MTA (Postfix, Exim, SES's SMTP endpoint)
shares: DATA read in one `readuntil(b"\r\n.\r\n")` (`WholeDataSMTP`; the replies, the
session and the size limit's 552 after the data are aiosmtpd's), and PIPELINING (RFC 2920)
advertised in EHLO. aiosmtpd reads one command line at a time from its stream, so
pipelined commands are answered in order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, syntax

TERMINATOR = b"\r\n.\r\n"  # the end of DATA: a line holding a lone dot


class CountingHandler:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        now = time.monotonic()
        with self.lock:
            self.count += 1
            if self.first is None:
                self.first = now
            self.last = now
        return "250 OK: queued"

    def stats(self) -> dict:
        with self.lock:
            stats = {"count": self.count, "refused": 0, "first": self.first, "last": self.last}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        stats["cpu_s"] = usage.ru_utime + usage.ru_stime  # the whole sink process so far
        return stats

    def reset(self) -> None:
        with self.lock:
            self.count = 0
            self.first: float | None = None
            self.last: float | None = None


class PipeliningHandler(CountingHandler):
    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802 - aiosmtpd's hook name
        session.host_name = hostname  # the new-style hook records it itself
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


class WholeDataSMTP(SMTP):
    """aiosmtpd's SMTP with DATA read in one `readuntil` instead of line by line."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's command method
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        reader = self._reader
        line_limit = reader._limit  # the command lines' limit (aiosmtpd's 1001)
        # a whole message must fit the stream's limit, set before the 354 so that the data
        # arriving meanwhile is buffered, not paused at twice 1001 bytes
        reader._limit = (self.data_size_limit or 1 << 30) + len(TERMINATOR)
        try:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            content, too_much = await self._read_data()
        finally:
            reader._limit = line_limit
        await self._after_data(content, too_much)

    async def _read_data(self) -> tuple[bytes, bool]:
        """The content up to the lone dot (its last CRLF kept, dots still doubled); True when
        it passed the size limit (then its bytes are dropped as they come)."""
        # The data starts at a line start, as if after a CRLF: read byte by byte while what
        # came could still be the start of the terminator (an empty message is a lone ".")
        head = b""
        while any((b"\r\n" + head).endswith(TERMINATOR[:k]) for k in range(1, len(TERMINATOR))):
            head += await self._reader.readexactly(1)
            found = (b"\r\n" + head).find(TERMINATOR)
            if found >= 0:
                return head[:found], False
        too_much = False
        while True:
            try:
                rest = await self._reader.readuntil(TERMINATOR)
                break
            except asyncio.LimitOverrunError as error:
                too_much = True
                await self._reader.read(error.consumed)  # dropped; the separator's start stays buffered
        content = head + rest[: -len(TERMINATOR) + 2]
        limit = self.data_size_limit
        return (b"" if too_much else content), too_much or bool(limit and len(content) > limit)

    async def _after_data(self, content: bytes, too_much: bool) -> None:
        """What aiosmtpd's smtp_DATA does once the data is in: the refusals, the dot
        transparency (RFC 5321 4.5.2), the envelope and the handler's DATA hook."""
        if too_much:
            await self.push("552 Error: Too much mail data")
            self._set_post_data_state()
            return
        if max(map(len, content.split(b"\r\n")), default=0) + 2 > self.line_length_limit:
            await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            self._set_post_data_state()
            return
        original = (b"\r\n" + content).replace(b"\r\n.", b"\r\n")[2:]
        if self._decode_data:
            try:
                text = original.decode("utf-8" if self.enable_SMTPUTF8 else "ascii",
                                       errors="surrogateescape" if self.enable_SMTPUTF8 else "strict")
            except UnicodeDecodeError:
                await self.push("500 Error: strict ASCII mode")
                return
            self.envelope.content = text
        else:
            self.envelope.content = original
        self.envelope.original_content = original
        status = await self._call_handler_hook("DATA") if "DATA" in self._handle_hooks else MISSING
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


class WholeDataController(Controller):
    def factory(self):
        return WholeDataSMTP(self.handler, **self.SMTP_kwargs)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(handler, kind: type[Controller]) -> tuple[Controller, int]:
    """A `kind` of controller (Controller: stock aiosmtpd; WholeDataController) listening
    for `handler` on a free loopback port."""
    for _ in range(5):  # the free port can be taken between the check and the bind
        port = free_port()
        candidate = kind(handler, hostname="127.0.0.1", port=port, ready_timeout=10)
        try:
            candidate.start()
        except Exception:  # noqa: BLE001 - retried on another port
            continue
        return candidate, port
    raise SystemExit("bench.harness.sink: cannot start the SMTP sink")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stock", action="store_true", help="aiosmtpd unmodified: DATA line by line, no PIPELINING")
    stock = parser.parse_args().stock
    handler = CountingHandler() if stock else PipeliningHandler()
    controller, port = serve(handler, Controller if stock else WholeDataController)
    print(f"port {port}", flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                print(json.dumps(handler.stats()), flush=True)
            elif command == "reset":
                handler.reset()
                print("ok", flush=True)
            elif command == "quit":
                break
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
