"""First-post answer times of POST /subscribe, by what the address is to the store.

The form must answer in the same time whether the address is suppressed (imported, then
forgotten: only its keyed hash is left), active (imported, on the list) or new (unknown): the
store is asked about it only once the answer is on its way, so a stranger timing the answers
learns nothing about who is on the list or who left it.

A throwaway project with `[signup]` sending through the outbox provider (its confirmation and
"already subscribed" messages written as .eml files: no mail server needed); the people come in
with `newsletter subscribers import`, and the suppressed ones are forgotten as `newsletter
subscribers forget` does (its library function). `newsletter serve` runs as its own process on
loopback (bench/unsubscribe.py's `Server`). A few warm-up posts first (a process's first posts
pay for imports); then PER_KIND posts of each kind, one at a time on one keep-alive connection,
interleaved (each kind first in turn), each:

- for an address of one length (reading an address takes longer the longer it is);
- from its own client network (an IPv4 /24 of 198.18.0.0/15, the benchmarking block), so that no
  network's limit is reached: serve believes X-Forwarded-For from loopback, as from its proxy;
- timed from the request's first byte to the answer's last;
- followed by a wait until the work after the answer is over (the message written, for the
  active and new addresses) and a pause, so that it never overlaps the next post.

Every answer must be the same bytes (the date aside). Figures: medians and quartiles per kind,
and the largest difference between two kinds' medians, against the target of 1 ms.
`python -m bench.signup` runs this benchmark alone.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from bench.harness.launcher import newsletter
from bench.harness.project import bench_env, write_project
from bench.unsubscribe import Server

KINDS = ("suppressed", "active", "new")
PER_KIND = 60
WARMUP = 5
PAUSE_S = 0.05  # after each post's work is over, before the next post
TARGET_MS = 1.0  # the largest difference between two kinds' medians
LIST = "partners"
NETWORKS = ipaddress.ip_network("198.18.0.0/15")  # RFC 2544's benchmarking block: 512 /24s
SIGNUP_TOML = f'[signup]\nlist = "{LIST}"\nprovider = "outbox"\n'


def addresses(per_kind: int) -> dict[str, list[str]]:
    """`per_kind` addresses of each kind, all of one length: s00@s00.example.org, a00@…, n00@…"""
    width = max(2, len(str(per_kind - 1)))
    return {kind: [f"{kind[0]}{n:0{width}d}@{kind[0]}{n:0{width}d}.example.org" for n in range(per_kind)] for kind in KINDS}


def client_networks(count: int) -> Iterator[str]:
    """`count` client addresses, each from its own /24."""
    blocks = NETWORKS.subnets(new_prefix=24)
    if count > 2 ** (24 - NETWORKS.prefixlen):
        raise ValueError(f"{count} posts need more client networks than {NETWORKS} has")
    for _ in range(count):
        yield str(next(blocks)[1])


def prepare_people(root: Path, config: Path, people: dict[str, list[str]], env: dict[str, str]) -> None:
    """The suppressed and active people imported onto LIST; the suppressed ones then forgotten."""
    from newsletter.config import load_config
    from newsletter.sending.forget import forget

    sheet = root / "people.csv"
    known = people["suppressed"] + people["active"]
    sheet.write_text("email,name,language\n" + "".join(f"{a},P,en\n" for a in known), encoding="utf-8")
    result = subprocess.run(newsletter("subscribers", "import", str(sheet), "--list", LIST, config=config),
                            cwd=root, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0 or f"{len(known)} added" not in result.stdout:
        raise RuntimeError(f"importing {len(known)} people: exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    settings = load_config(config)
    with mock.patch.dict(os.environ, {"NEWSLETTER_SECRET_KEY": env["NEWSLETTER_SECRET_KEY"]}):  # the store's key opens with it
        for address in people["suppressed"]:
            forget(settings, address)


def form_body(address: str) -> bytes:
    fields = {"form_language": "en", "email": address, "name": "", "language": "en", "consent": "yes", "website": ""}
    return urllib.parse.urlencode(fields).encode("ascii")


class Poster:
    """POST /subscribe on one keep-alive connection; each answer kept (status, headers, body) to compare."""

    def __init__(self, port: int, outbox: Path):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.outbox = outbox
        self.answers: set[tuple] = set()
        self.expected_messages = 0

    def post(self, address: str, client: str, *, sends_message: bool) -> float:
        """ms from the request to the answer's last byte; returns once the work after the answer is over."""
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Forwarded-For": client}
        started = time.perf_counter()
        self.conn.request("POST", "/subscribe", body=form_body(address), headers=headers)
        response = self.conn.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        kept = sorted((k.lower(), v) for k, v in response.getheaders() if k.lower() != "date")
        self.answers.add((response.status, tuple(kept), body))
        self.expected_messages += sends_message
        self._wait_for_messages()
        time.sleep(PAUSE_S)
        return elapsed

    def _wait_for_messages(self, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while self.messages() < self.expected_messages:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.expected_messages} messages expected in {self.outbox}, {self.messages()} there")
            time.sleep(0.005)

    def messages(self) -> int:
        return len(list(self.outbox.glob("*.eml"))) if self.outbox.is_dir() else 0

    def close(self) -> None:
        self.conn.close()


def time_posts(poster: Poster, people: dict[str, list[str]], clients: Iterator[str]) -> dict[str, list[float]]:
    """ms per post, by kind, the kinds interleaved and each first in turn."""
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for n in range(len(people[KINDS[0]])):
        for kind in KINDS[n % 3 :] + KINDS[: n % 3]:
            times[kind].append(poster.post(people[kind][n], next(clients), sends_message=kind != "suppressed"))
    return times


def bench_signup_timing(per_kind: int = PER_KIND, log=print) -> dict:
    """Medians and quartiles of the first post's answer time for suppressed, active and new addresses."""
    env = bench_env()
    people = addresses(per_kind)
    clients = client_networks(WARMUP + len(KINDS) * per_kind)
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-signup-") as tmpdir:
        root = Path(tmpdir)
        config = write_project(root, '[store]\nurl = "newsletter.sqlite3"\n\n' + SIGNUP_TOML)
        prepare_people(root, config, people, env)
        server = Server(config, env)
        poster = Poster(server.port, root / "outbox" / "confirmations")
        try:
            for n in range(WARMUP):
                poster.post(f"warm{n}@warm{n}.example.org", next(clients), sends_message=True)
            times = time_posts(poster, people, clients)
            if poster.messages() != poster.expected_messages:  # a suppressed address was written to
                raise RuntimeError(f"{poster.expected_messages} messages expected, {poster.messages()} written")
        finally:
            poster.close()
            server.close()
    if len(poster.answers) != 1 or next(iter(poster.answers))[0] != 200:
        raise RuntimeError(f"suppressed, active and new addresses were answered differently: {poster.answers}")
    result = summarise(times, per_kind)
    each = ", ".join(f"{kind} {result['median_ms'][kind]:.2f} ms" for kind in KINDS)
    log(f"  POST /subscribe, median of {per_kind} first posts each: {each}; largest difference "
        f"{result['largest_difference_ms']:.2f} ms ({'within' if result['within_target'] else 'NOT within'} {TARGET_MS:g} ms)")
    return result


def summarise(times: dict[str, list[float]], per_kind: int) -> dict:
    medians = {kind: statistics.median(times[kind]) for kind in KINDS}
    difference = max(medians.values()) - min(medians.values())
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = -1.0
    return {
        "per_kind": per_kind,
        "warmup": WARMUP,
        "median_ms": medians,
        "quartiles_ms": {kind: statistics.quantiles(times[kind], n=4) for kind in KINDS},
        "samples_ms": {kind: [round(t, 3) for t in times[kind]] for kind in KINDS},
        "largest_difference_ms": difference,
        "target_ms": TARGET_MS,
        "within_target": difference < TARGET_MS,
        "load_average_after": load,
    }


def markdown_signup_timing(r: dict) -> list[str]:
    """docs/benchmarks.md's section (bench/report.py places it)."""
    rows = [f"| {kind} | {r['median_ms'][kind]:.2f} ms | {r['quartiles_ms'][kind][0]:.2f} ms | {r['quartiles_ms'][kind][2]:.2f} ms |"
            for kind in KINDS]
    ok = r["within_target"]
    return [
        "## The sign-up form's answer, whoever the address is",
        "",
        "`POST /subscribe` to `newsletter serve` (SQLite store, `[signup]` through the outbox provider) for three",
        "kinds of address that must be answered in the same time: suppressed (imported, then forgotten),",
        f"active (on the list) and new. {r['per_kind']} first posts of each kind after {r['warmup']} warm-up posts, one at",
        "a time on one keep-alive connection, the kinds interleaved, every address of one length and every",
        "post from its own client network (X-Forwarded-For from loopback); after each, a wait until the",
        "work after the answer is over (the message written) and a pause. Every answer checked byte for byte.",
        "",
        "| address | median | first quartile | third quartile |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        f"Target: the three medians within {r['target_ms']:g} ms of each other: largest difference "
        f"{r['largest_difference_ms']:.2f} ms: {'meets the target' if ok else '**misses the target**'}"
        f" (1-minute load average just after: {r['load_average_after']:g}).",
        "",
    ]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="sign-up answer times alone (python -m bench runs it with the rest)")
    parser.add_argument("--per-kind", type=int, default=PER_KIND, help=f"posts of each kind of address (default {PER_KIND})")
    args = parser.parse_args()
    print(json.dumps({k: v for k, v in bench_signup_timing(args.per_kind).items() if k != "samples_ms"}, indent=2))
