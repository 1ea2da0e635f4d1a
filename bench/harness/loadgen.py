"""An HTTP/1.1 load generator for the one-click unsubscribe, stdlib only.

    python -m bench.harness.loadgen --port P --tokens FILE [--connections 32] [--duration 10] [--max N] [--skip K]

Opens `--connections` keep-alive connections to 127.0.0.1:P and sends, on each, one request
after the other: `POST /u/<token>` with the RFC 8058 body `List-Unsubscribe=One-Click`
(urlencoded), each to a distinct token read from FILE (from line K on), until the tokens
run out, `--max` requests were sent or `--duration` seconds have passed. A closed loop:
each connection waits for its answer before sending the next request, so the concurrency
is the number of connections.

A small asyncio client rather than httpx: client and server share the machine's cores, and
this one costs a fraction of httpx's CPU per request, leaving the cores to the server.

Prints one JSON line: {"requests", "statuses", "errors", "elapsed_s", "rate", "latency_ms":
{"p50", "p90", "p99", "max", "mean"}, "cpu_s", "checked"} (checked: 200 answers whose page
is the confirmation, with its resubscribe form).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections import Counter


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def run(port: int, tokens: list[str], connections: int, duration: float) -> dict:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    checked = 0
    queue = iter(tokens)
    start = time.perf_counter()
    deadline = start + duration
    last_done = start

    async def connection() -> None:
        nonlocal checked, last_done
        reader = writer = None
        try:
            while time.perf_counter() < deadline:
                token = next(queue, None)
                if token is None:
                    return
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                body = b"List-Unsubscribe=One-Click"
                request = (
                    f"POST /u/{token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    "Content-Type: application/x-www-form-urlencoded\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode("ascii") + body
                sent = time.perf_counter()
                try:
                    writer.write(request)
                    status_line = await reader.readline()
                    if not status_line:
                        raise ConnectionError("closed by the server")
                    status = int(status_line.split()[1])
                    length, close, chunked = 0, False, False
                    while True:
                        line = await reader.readline()
                        if line in (b"\r\n", b"\n", b""):
                            break
                        name, _, value = line.decode("latin-1").partition(":")
                        name, value = name.strip().lower(), value.strip()
                        if name == "content-length":
                            length = int(value)
                        elif name == "connection" and value.lower() == "close":
                            close = True
                        elif name == "transfer-encoding" and "chunked" in value.lower():
                            chunked = True
                    if chunked:
                        page = b""
                        while True:
                            size = int((await reader.readline()).split(b";")[0], 16)
                            chunk = await reader.readexactly(size + 2)
                            if size == 0:
                                break
                            page += chunk[:-2]
                    else:
                        page = await reader.readexactly(length)
                except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                    errors[type(exc).__name__] += 1
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    continue
                done = time.perf_counter()
                last_done = max(last_done, done)
                latencies.append(done - sent)
                statuses[status] += 1
                if status == 200 and b"resubscribe" in page:
                    checked += 1
                if close:
                    writer.close()
                    reader = writer = None
        finally:
            if writer is not None:
                writer.close()

    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = last_done - start
    ms = [v * 1000 for v in latencies]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "requests": len(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": dict(errors),
        "elapsed_s": elapsed,
        "rate": len(latencies) / elapsed if elapsed > 0 else 0.0,
        "latency_ms": {
            "p50": percentile(ms, 0.50), "p90": percentile(ms, 0.90), "p99": percentile(ms, 0.99),
            "max": max(ms, default=0.0), "mean": sum(ms) / len(ms) if ms else 0.0,
        },
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "checked": checked,
        "connections": connections,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--max", type=int, default=0, help="at most this many requests (0: as many tokens as there are)")
    parser.add_argument("--skip", type=int, default=0, help="start at this line of the tokens file")
    args = parser.parse_args()
    with open(args.tokens, encoding="ascii") as handle:
        tokens = handle.read().split()[args.skip :]
    if args.max:
        tokens = tokens[: args.max]
    print(json.dumps(asyncio.run(run(args.port, tokens, args.connections, args.duration))), flush=True)


if __name__ == "__main__":
    main()
