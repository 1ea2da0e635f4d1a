"""A simulated Amazon SES v2 endpoint on loopback, in a process of its own.

    python -m bench.harness.ses_stub [--delay 0.05]

Answers the sesv2 SendEmail call (`POST /v2/email/outbound-emails`) with
`{"MessageId": "<unique>"}` after waiting `--delay` seconds (50 ms: about what SES takes),
one thread per connection (boto3 keeps its connections alive, so one thread per sending
thread of the client). Anything else (GetAccount included) gets a JSON 404, which the
project reads as "no quota known".

Stdlib only. Prints `port N` once listening on 127.0.0.1, then answers each line read on
stdin: `stats` → one JSON line {"count", "first", "last", "p10", "p90", "recipients",
"duplicates", "max_in_flight", "connections", "bytes", "bad", "cpu_s"} (times:
time.monotonic() when a request's body had arrived, comparable across processes on Linux;
p10/p90: the arrival times of the 10th and 90th percentile request, for a steady-state
rate without the ramp-up and the tail; cpu_s: this process's CPU time so far); `reset` →
forgets what was counted; `quit` or end of input → stops.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEND_PATH = "/v2/email/outbound-emails"


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.arrivals: list[float] = []
            self.recipients: set[str] = set()
            self.duplicates = 0
            self.in_flight = 0
            self.max_in_flight = 0
            self.connections = 0
            self.bytes = 0
            self.bad = 0

    def stats(self) -> dict:
        with self.lock:
            times = sorted(self.arrivals)
            out = {
                "count": len(times),
                "first": times[0] if times else None,
                "last": times[-1] if times else None,
                "p10": times[len(times) // 10] if times else None,
                "p90": times[(len(times) * 9) // 10] if times else None,
                "recipients": len(self.recipients),
                "duplicates": self.duplicates,
                "max_in_flight": self.max_in_flight,
                "connections": self.connections,
                "bytes": self.bytes,
                "bad": self.bad,
            }
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out["cpu_s"] = usage.ru_utime + usage.ru_stime
        return out


COUNTERS = Counters()
DELAY = 0.05


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3 expects
    # Headers and body leave in two writes: with Nagle's algorithm on, the body would wait
    # for the client's delayed ACK (40 ms on Linux) and the stub would answer in ~90 ms.
    disable_nagle_algorithm = True
    server_version = "ses-stub"
    sys_version = ""

    def setup(self):
        super().setup()
        with COUNTERS.lock:
            COUNTERS.connections += 1

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json(self, status: int, payload: dict, error_type: str | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", f"stub-{next(COUNTERS.ids)}")
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802
        body = self._body()
        if self.path.split("?", 1)[0] != SEND_PATH:
            self._json(404, {"message": "not simulated"}, "NotFoundException")
            return
        arrived = time.monotonic()
        try:
            request = json.loads(body)
            to = request["Destination"]["ToAddresses"]
            ok = len(to) == 1 and bool(request["Content"]["Raw"]["Data"])
        except (ValueError, KeyError, TypeError):
            to, ok = [], False
        with COUNTERS.lock:
            COUNTERS.arrivals.append(arrived)
            COUNTERS.bytes += len(body)
            if not ok:
                COUNTERS.bad += 1
            for address in to:
                if address in COUNTERS.recipients:
                    COUNTERS.duplicates += 1
                COUNTERS.recipients.add(address)
            COUNTERS.in_flight += 1
            COUNTERS.max_in_flight = max(COUNTERS.max_in_flight, COUNTERS.in_flight)
            message_id = f"0100stub{next(COUNTERS.ids):012d}-{threading.get_ident():x}-000000"
        try:
            time.sleep(DELAY)
            if ok:
                self._json(200, {"MessageId": message_id})
            else:
                self._json(400, {"message": "malformed SendEmail request"}, "BadRequestException")
        finally:
            with COUNTERS.lock:
                COUNTERS.in_flight -= 1

    def do_GET(self):  # noqa: N802 - GetAccount and the rest: not simulated
        self._body()
        self._json(404, {"message": "not simulated"}, "NotFoundException")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512


def main() -> None:
    global DELAY
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.05)
    args = parser.parse_args()
    DELAY = args.delay
    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    print(f"port {server.server_address[1]}", flush=True)
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                print(json.dumps(COUNTERS.stats()), flush=True)
            elif command == "reset":
                COUNTERS.reset()
                print("ok", flush=True)
            elif command == "quit":
                break
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
