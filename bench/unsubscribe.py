"""One-click unsubscribe throughput and latency of `newsletter serve`.

A throwaway project with its SQLite store (the default: a file beside newsletter.toml)
holding many subscribers and one finished campaign with a delivery each, set up straight
through SQL (bench/harness/bulk.py), which also writes a signed unsubscribe token for each
of them. `newsletter serve` runs as its own process on loopback, exactly as deployed
(uvicorn, access log on, sent to /dev/null); the load generator (bench/harness/loadgen.py)
runs in another, with 32 keep-alive connections in a closed loop, each request a one-click
POST (RFC 8058 body) to a token not used before, for a bounded time and count. After each
run the store is checked: exactly as many people unsubscribed as 200 answers were counted.

`bench_token_timing` (alone: `python -m bench.unsubscribe --tokens 2000`) times GET /u/<token>
for three kinds of token that must all answer the same 404 at the same cost: forged (a real
person's token with its signature altered), unknown (genuine signature, a key nobody has) and
forgotten (genuine, its person forgotten). One keep-alive connection, one request at a time,
the kinds interleaved so that whatever else the machine does touches them alike.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from unittest import mock

from bench.harness.bulk import fill
from bench.harness.children import run_json
from bench.harness.proc import process_cpu_s
from bench.harness.profiling import as_text, highlights, profile_env, summary
from bench.harness.project import bench_env, write_project

CONNECTIONS = 32
TARGET_RATE = 1000  # requests/s
TARGET_P99_MS = 50
WARMUP = 300
TOKEN_KINDS = ("forged", "unknown", "forgotten")
TOKEN_TOLERANCE = 0.10  # the medians of the three kinds within 10 % of each other


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`newsletter serve` on a free loopback port."""

    def __init__(self, config: Path, env: dict[str, str]):
        for _ in range(5):
            self.port = _free_port()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "newsletter", "serve", "--host", "127.0.0.1", "--port", str(self.port), "--config", str(config)],
                cwd=config.parent, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{self.port}/u/not-a-token", timeout=2)  # noqa: S310
                except urllib.error.HTTPError as exc:
                    if exc.code == 404:
                        return
                except OSError:
                    time.sleep(0.1)
            self.close()
        raise RuntimeError("newsletter serve did not start")

    def cpu_s(self) -> float:
        return process_cpu_s(self.proc.pid) or 0.0

    def close(self) -> None:
        if self.proc.poll() is None:
            # SIGINT rather than SIGTERM: uvicorn stops gracefully on both and then raises the
            # signal again; after SIGINT that is a KeyboardInterrupt, so atexit hooks (the
            # profiler's, with --profile) still run
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def load(port: int, tokens: Path, *, skip: int, count: int, duration: float, connections: int, env: dict[str, str]) -> dict:
    return run_json("bench.harness.loadgen", "--port", str(port), "--tokens", str(tokens), "--skip", str(skip),
                    "--max", str(count), "--duration", str(duration), "--connections", str(connections),
                    env=env, timeout=duration + 120)


def unsubscribed(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM subscribers WHERE status = 'unsubscribed'").fetchone()[0]


def bench_unsubscribe(subscribers: int, runs: int, duration: float, max_requests: int, connections: int = CONNECTIONS, log=print,
                      profile_dir: Path | None = None, wall: bool = False) -> dict:
    """`profile_dir`: run the server under cProfile (bench/harness/profiling.py; CPU time, or
    wall time with `wall`), for diagnosis."""
    env = bench_env()
    server_env = env
    if profile_dir is not None:
        server_env = profile_env(env, profile_dir, wall=wall)
    needed = WARMUP + runs * max_requests
    if needed > subscribers:
        raise ValueError(f"{subscribers} subscribers are too few for {runs} runs of up to {max_requests} requests")
    samples = []
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-unsub-") as tmpdir:
        root = Path(tmpdir)
        config = write_project(root, "[store]\nurl = \"newsletter.sqlite3\"\n")
        db = root / "newsletter.sqlite3"
        tokens = root / "tokens.txt"
        fill_info = fill(f"sqlite:///{db}", subscribers, env, "--campaign", "2022-12-year-end",
                         "--tokens", str(tokens), "--tokens-count", str(needed))
        server = Server(config, server_env)
        try:
            warm = load(server.port, tokens, skip=0, count=WARMUP, duration=30, connections=connections, env=env)
            done = unsubscribed(db)
            if done != warm["statuses"].get("200", 0):
                raise RuntimeError(f"warm-up: {done} unsubscribed in the store, {warm['statuses']} answered")
            skip = WARMUP
            for n in range(runs):
                cpu = server.cpu_s()
                sample = load(server.port, tokens, skip=skip, count=max_requests, duration=duration, connections=connections, env=env)
                sample["server_cpu_s"] = server.cpu_s() - cpu
                skip += max_requests
                ok = sample["statuses"].get("200", 0)
                now = unsubscribed(db)
                if now - done != ok or sample["errors"] or ok != sample["requests"] or sample["checked"] != ok:
                    raise RuntimeError(f"run {n + 1}: {now - done} newly unsubscribed in the store; the client saw {sample}")
                done = now
                samples.append(sample)
                log(f"  run {n + 1}/{runs}: {sample['requests']} requests in {sample['elapsed_s']:.1f} s = {sample['rate']:.0f}/s, "
                    f"p50 {sample['latency_ms']['p50']:.1f} ms, p99 {sample['latency_ms']['p99']:.1f} ms; "
                    f"server CPU {sample['server_cpu_s']:.1f} s, client CPU {sample['cpu_s']:.1f} s")
        finally:
            server.close()
    rate = statistics.median(s["rate"] for s in samples)
    p50 = statistics.median(s["latency_ms"]["p50"] for s in samples)
    p99 = statistics.median(s["latency_ms"]["p99"] for s in samples)
    return {
        "subscribers": subscribers,
        "fill_s": fill_info["fill_s"],
        "runs": runs,
        "connections": connections,
        "duration_s": duration,
        "max_requests": max_requests,
        "requests": statistics.median(s["requests"] for s in samples),
        "rate": rate,
        "rate_samples": [round(s["rate"]) for s in samples],
        "p50_ms": p50,
        "p90_ms": statistics.median(s["latency_ms"]["p90"] for s in samples),
        "p99_ms": p99,
        "max_ms": statistics.median(s["latency_ms"]["max"] for s in samples),
        "server_cpu_ms_per_request": statistics.median(s["server_cpu_s"] * 1000 / s["requests"] for s in samples),
        "server_cores": statistics.median(s["server_cpu_s"] / s["elapsed_s"] for s in samples),
        "client_cpu_ms_per_request": statistics.median(s["cpu_s"] * 1000 / s["requests"] for s in samples),
        "target_rate": TARGET_RATE,
        "target_p99_ms": TARGET_P99_MS,
        "rate_ratio_to_target": rate / TARGET_RATE,
        "p99_ratio_to_target": p99 / TARGET_P99_MS,
    }


def timing_tokens(config: Path, db: Path, count: int, secret: bytes) -> dict[str, list[str]]:
    """`count` tokens of each kind; the forgotten ones' people forgotten as `newsletter subscribers
    forget` does (its library function: a process per person would take minutes)."""
    from newsletter.config import load_config
    from newsletter.sending.forget import forget
    from newsletter.keys import TokenSigner

    signer = TokenSigner(secret)
    with sqlite3.connect(db) as conn:
        people = conn.execute("SELECT email, token_key FROM subscribers ORDER BY id LIMIT ?", (2 * count,)).fetchall()
    settings = load_config(config)
    with mock.patch.dict(os.environ, {"NEWSLETTER_SECRET_KEY": secret.decode("utf-8")}):  # the store's key opens with it
        for address, _key in people[:count]:
            forget(settings, address)

    def forged(key: str) -> str:
        raw = bytearray(base64.urlsafe_b64decode(signer.make(key) + "=="))
        raw[-1] ^= 1  # one bit of the signature
        return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode("ascii")

    return {
        "forged": [forged(key) for _address, key in people[count:]],
        "unknown": [signer.make(secrets.token_hex(16)) for _ in range(count)],
        "forgotten": [signer.make(key) for _address, key in people[:count]],
    }


def time_gets(port: int, tokens: dict[str, list[str]]) -> dict[str, list[float]]:
    """ms per GET /u/<token>, by kind; every answer must be the same 404."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    answers = set()
    times: dict[str, list[float]] = {kind: [] for kind in tokens}
    kinds = list(tokens)
    try:
        for n in range(len(tokens[kinds[0]])):
            for kind in kinds[n % len(kinds) :] + kinds[: n % len(kinds)]:  # each kind first in turn
                started = time.perf_counter()
                conn.request("GET", f"/u/{tokens[kind][n]}")
                response = conn.getresponse()
                body = response.read()
                times[kind].append((time.perf_counter() - started) * 1000)
                headers = sorted((k.lower(), v) for k, v in response.getheaders() if k.lower() != "date")
                answers.add((response.status, tuple(headers), body))
    finally:
        conn.close()
    if len(answers) != 1 or next(iter(answers))[0] != 404:
        raise RuntimeError(f"forged, unknown and forgotten tokens were answered differently: {answers}")
    return times


def bench_token_timing(subscribers: int, requests: int, log=print) -> dict:
    """Medians of GET /u/<token> for forged, unknown and forgotten tokens, `requests` each, and their ratios."""
    env = bench_env()
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-tokens-") as tmpdir:
        root = Path(tmpdir)
        config = write_project(root, "[store]\nurl = \"newsletter.sqlite3\"\n")
        db = root / "newsletter.sqlite3"
        fill(f"sqlite:///{db}", subscribers, env)
        tokens = timing_tokens(config, db, requests + WARMUP // 3, env["NEWSLETTER_SECRET_KEY"].encode("utf-8"))
        server = Server(config, env)
        try:
            time_gets(server.port, {kind: t[:WARMUP // 3] for kind, t in tokens.items()})
            times = time_gets(server.port, {kind: t[WARMUP // 3 :] for kind, t in tokens.items()})
        finally:
            server.close()
    medians = {kind: statistics.median(times[kind]) for kind in TOKEN_KINDS}
    spread = max(medians.values()) / min(medians.values())
    result = {
        "subscribers": subscribers,
        "requests": requests,
        "median_ms": medians,
        "p90_ms": {kind: statistics.quantiles(times[kind], n=10)[-1] for kind in TOKEN_KINDS},
        "ratio_to_forged": {kind: medians[kind] / medians["forged"] for kind in TOKEN_KINDS},
        "spread": spread,
        "tolerance": TOKEN_TOLERANCE,
        "within_tolerance": spread <= 1 + TOKEN_TOLERANCE,
    }
    each = ", ".join(f"{kind} {medians[kind]:.3f} ms" for kind in TOKEN_KINDS)
    log(f"  GET /u/<token>, median of {requests:,} each: {each}; slowest/fastest {spread:.3f} "
        f"({'within' if result['within_tolerance'] else 'NOT within'} {TOKEN_TOLERANCE:.0%})")
    return result


PROFILE_ITEMS = [
    ("one-click POST handler, in the event loop (the page included)", "newsletter/web/unsubscribe.py", "(unsubscribe)"),
    ("… the token verified (HMAC)", "newsletter/web/unsubscribe.py", "(read_token)"),
    ("… the page (its kind's copy, the reader's address and token put in)", "newsletter/web/unsubscribe.py", "(page)"),
    ("store.feedback.unsubscribe_many (in a worker thread, once per batch of requests)", "newsletter/store/feedback.py",
     "(unsubscribe_many)"),
    ("… the writer lock and the transaction, begin to commit", "newsletter/store/database.py", "(write)"),
    ("… SQL through SQLAlchemy (every statement)", "sqlalchemy/engine/base.py", "(_execute_clauseelement)"),
    ("… sqlite3 execute", "sqlite3.Cursor", "execute"),
    ("… sqlite3 commit (the WAL's fsync)", "sqlite3.Connection", "commit"),
    ("… the events, one insert per batch", "newsletter/store/feedback.py", "(insert_events)"),
    ("… waiting for a pooled connection", "sqlalchemy/pool/impl.py", "(_do_get)"),
    ("HTTP parsing (uvicorn, httptools)", "uvicorn/protocols/http/httptools_impl.py", "(data_received)"),
    ("HTTP response (uvicorn, httptools)", "uvicorn/protocols/http/httptools_impl.py", "(send)"),
    ("Starlette's routing", "starlette/routing.py", "(matches)"),
    ("access log line", "newsletter/web/serving.py", "(_write)"),
    ("hand-off to the thread pool", "anyio/to_thread.py", "(run_sync)"),
]
# called once per request: what the per-request figures are divided by
PER_REQUEST = ("newsletter/web/unsubscribe.py", "(read_token)")


def per_request(found: dict) -> str:
    """The highlights as lines of ms per one-click request."""
    requests = next((r["calls"] for r in found["rows"] if r["function"].startswith(PER_REQUEST[0]) and
                     r["function"].endswith(PER_REQUEST[1])), 0)
    lines = [f"per request ({requests} requests profiled):"]
    for row in found["rows"]:
        lines.append(f"  {row['s'] * 1000 / max(requests, 1):7.3f} ms  {row['label']} ({row['function']}, {row['calls']} calls)")
    return "\n".join(lines)


def profile_unsubscribe(subscribers: int, duration: float, max_requests: int, log=print) -> dict:
    """Two short runs with the server under cProfile: CPU time (what the core is busy with)
    and wall time (where requests wait: SQLite's write lock, the connection pool). Slower
    than unprofiled runs; for diagnosis."""
    out = {}
    for kind in ("cpu", "wall"):
        with tempfile.TemporaryDirectory(prefix="newsletter-bench-prof-") as prof:
            result = bench_unsubscribe(subscribers, 1, duration, max_requests, profile_dir=Path(prof), wall=kind == "wall",
                                       log=lambda text: log(f"  profiled ({kind} time):{text[1:]}"))
            found = highlights(Path(prof), PROFILE_ITEMS)
            # per request: read_token runs once per one-click POST (the warm-up's included)
            requests = next((r["calls"] for r in found["rows"] if r["function"].startswith(PER_REQUEST[0]) and
                             r["function"].endswith(PER_REQUEST[1])), 0)
            for row in found["rows"]:
                row["ms_per_request"] = row["s"] * 1000 / requests if requests else 0.0
            out[kind] = {"rate": result["rate"], "p99_ms": result["p99_ms"], "requests": requests, "highlights": found}
    return out


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="unsubscribe throughput alone (python -m bench runs it with the rest)")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--max", type=int, default=25_000)
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--profile", choices=("cpu", "wall"), default=None,
                        help="run the server under cProfile and print where its CPU (or wall) time goes")
    parser.add_argument("--tokens", type=int, metavar="N", default=0,
                        help="instead: time GET /u/<token> for forged, unknown and forgotten tokens, N requests each")
    args = parser.parse_args()
    if args.tokens:
        print(json.dumps(bench_token_timing(args.subscribers, args.tokens), indent=2))
        raise SystemExit(0)
    if args.profile:
        with tempfile.TemporaryDirectory(prefix="newsletter-bench-prof-") as prof:
            bench_unsubscribe(args.subscribers, args.runs, args.duration, args.max, args.connections, profile_dir=Path(prof),
                              wall=args.profile == "wall")
            print(as_text(summary(Path(prof), top=60), top=60))
            print(per_request(highlights(Path(prof), PROFILE_ITEMS)))
        raise SystemExit(0)
    print(json.dumps(bench_unsubscribe(args.subscribers, args.runs, args.duration, args.max, args.connections), indent=2))
