"""The measures `python -m bench --against REV` runs on both sides (bench/against.py).

Each `Measure` has a set-up shared by both sides (`resources`: the SMTP sink, a PostgreSQL
server, a scratch folder: this tree's harness, so both sides meet the same ones) and `once`,
one run on the active side (bench/harness/trees.py's `measuring`), returning that run's
figures; `figures` names those the report shows, each (key, label, format).
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.harness.children import SMTPSink, run_json
from bench.harness.project import bench_env
from bench.harness.trees import CodeTree

Figure = tuple[str, str, str]  # key, label, format spec


@dataclass(frozen=True)
class Measure:
    name: str
    title: str
    resources: Callable[[dict], object]  # sizes → a context manager yielding what `once` shares
    once: Callable[[object, CodeTree, int, dict], dict]  # (resources, side, round, sizes) → figures
    figures: list[Figure]


SIZES = {
    "runs": 3, "smtp_messages": 3_000, "smtp_rate": 500, "smtp_threads": 4,
    "ses_counts": {1: 1_200, 4: 3_000},
    "unsub_subscribers": 40_000, "unsub_duration": 5.0, "unsub_max": 10_000,
    "startup_runs": 1, "build_repeat": 20, "compose_messages": 2_000,
}
QUICK_SIZES = {
    "runs": 1, "smtp_messages": 500, "smtp_rate": 500, "smtp_threads": 4,
    "ses_counts": {1: 300, 4: 800},
    "unsub_subscribers": 10_000, "unsub_duration": 3.0, "unsub_max": 3_000,
    "startup_runs": 1, "build_repeat": 5, "compose_messages": 500,
}


@contextmanager
def _scratch(sizes: dict) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-against-") as tmp:
        yield Path(tmp)


@contextmanager
def _sink(sizes: dict) -> Iterator[tuple[SMTPSink, Path]]:
    sink = SMTPSink(stock=sizes.get("stock_sink", False))
    try:
        with _scratch(sizes) as tmp:
            yield sink, tmp
    finally:
        sink.close()


def _smtp(resources, side: CodeTree, round_: int, sizes: dict) -> dict:
    from bench.send import smtp_once

    sink, tmp = resources
    return smtp_once(sink, tmp / f"smtp-{side.side}-{round_}", sizes["smtp_messages"], sizes["smtp_rate"],
                     sizes["smtp_threads"], bench_env())


class _FreshNames:
    """A PostgreSQL server whose create_database never gives a name twice: bench_ses names
    its databases by worker count and run, the same on both sides and every round."""

    def __init__(self, pg):
        self.pg = pg
        self.numbers = itertools.count(1)

    def create_database(self, name: str) -> str:
        return self.pg.create_database(f"{name}_{next(self.numbers)}")

    def __getattr__(self, name: str):
        return getattr(self.pg, name)


@contextmanager
def _postgres(sizes: dict):
    from bench.harness.postgres import Postgres

    pg = Postgres()
    try:
        yield _FreshNames(pg)
    finally:
        pg.stop()


def _ses(pg, side: CodeTree, round_: int, sizes: dict) -> dict:
    from bench.ses import bench_ses

    result = bench_ses(sizes["ses_counts"], 1, log=lambda text: None, pg=pg)
    out = {"ratio": result["ratio"]}
    for workers, w in result["workers"].items():
        for key in ("rate", "cpu_ms_per_message", "phase_sender_cpu_ms_per_message", "phase_postgres_cpu_ms_per_message"):
            out[f"{key}_{workers}"] = w[key]
    return out


def _unsubscribe(resources, side: CodeTree, round_: int, sizes: dict) -> dict:
    from bench.unsubscribe import bench_unsubscribe

    r = bench_unsubscribe(sizes["unsub_subscribers"], 1, sizes["unsub_duration"], sizes["unsub_max"], log=lambda text: None)
    return {key: r[key] for key in ("rate", "p50_ms", "p99_ms", "server_cpu_ms_per_request", "server_cores")}


def _startup(tmp: Path, side: CodeTree, round_: int, sizes: dict) -> dict:
    from bench.startup import startup_once

    if round_ == 0:  # a warm-up per side: files cached, as bench.startup does
        startup_once(side.root, tmp / f"warm-{side.side}")
    return startup_once(side.root, tmp / f"build-{side.side}-{round_}")


def _build(resources, side: CodeTree, round_: int, sizes: dict) -> dict:
    found = run_json("bench.build", "--issue", str(side.root / "issues" / "2022-12-year-end"), "--repeat",
                     str(sizes["build_repeat"]), "--build-only", env=bench_env(), timeout=600)
    return {f"ms_{name}": ms for name, ms in found["build_ms"].items()}


def _compose(resources, side: CodeTree, round_: int, sizes: dict) -> dict:
    found = run_json("bench.compose", "--issue", str(side.root / "issues" / "2022-12-year-end"), "--messages",
                     str(sizes["compose_messages"]), env=bench_env(), timeout=600)
    return {f"us_{name}": v["us_per_message"] for name, v in found["variants"].items()}


SES_FIGURES: list[Figure] = [
    (f"{key}_{w}", f"{label}, {w} worker{'s' if w > 1 else ''}", spec)
    for w in (1, 4)
    for key, label, spec in (("rate", "messages/s at the stub", ".0f"), ("cpu_ms_per_message", "senders' CPU ms/message", ".2f"),
                             ("phase_sender_cpu_ms_per_message", "senders' CPU ms/message while sending", ".2f"),
                             ("phase_postgres_cpu_ms_per_message", "PostgreSQL CPU ms/message while sending", ".2f"))
] + [("ratio", "4 workers / 1 worker (messages/s)", ".2f")]

MEASURES = {m.name: m for m in [
    Measure("smtp", "SMTP: `newsletter send --provider smtp --yes`, `rate = 500`, to the bench's sink", _sink, _smtp, [
        ("cpu_ms_per_message", "sender CPU ms/message (whole command)", ".2f"),
        ("rate", "delivered/s (sink count / the summary's \"in X s\")", ".0f"),
        ("fraction_of_rate", "fraction of the 500/s rate", ".1%"),
        ("sql_per_message", "SQL statements/message (whole command)", ".2f"),
        ("sql_cursor_calls_per_message", "SQL cursor calls/message", ".2f"),
        ("sqlite_traced_per_message", "statements SQLite ran/message (with BEGIN, COMMIT, PRAGMAs)", ".2f"),
        ("sqlite_transactions_per_message", "SQLite transactions/message", ".2f"),
        ("sink_cpu_ms_per_message", "sink CPU ms/message", ".2f"),
        ("elapsed_s", "summary's \"in X s\"", ".1f"),
        ("wall_s", "whole command s", ".1f"),
    ]),
    Measure("ses", "SES: `newsletter send --provider ses --workers N --threads 8` to the 50 ms stub, PostgreSQL",
            _postgres, _ses, SES_FIGURES),
    Measure("unsubscribe", "One-click unsubscribe: `newsletter serve`, SQLite, 32 connections", _scratch, _unsubscribe, [
        ("rate", "requests/s", ".0f"), ("p50_ms", "p50 ms", ".1f"), ("p99_ms", "p99 ms", ".1f"),
        ("server_cpu_ms_per_request", "server CPU ms/request", ".2f"), ("server_cores", "server cores busy", ".2f"),
    ]),
    Measure("startup", "Start-up: whole commands, from the code tree's own folder", _scratch, _startup, [
        ("help_s", "`python -m newsletter --help` s", ".3f"), ("build_s", "`python -m newsletter build` (year-end) s", ".3f"),
    ]),
    Measure("build", "Building the year-end letter in process (child process per side)", _scratch, _build, [
        ("ms_bilingual", "bilingual ms", ".1f"), ("ms_ar", "ar ms", ".1f"), ("ms_en", "en ms", ".1f"),
        ("ms_all three (one build_issue call)", "all three (one build_issue call) ms", ".1f"),
    ]),
    Measure("compose", "Composing messages in process (child process per side)", _scratch, _compose, [
        ("us_bilingual", "bilingual µs/message", ".1f"), ("us_ar", "ar µs/message", ".1f"), ("us_en", "en µs/message", ".1f"),
    ]),
]}
DEFAULT = ("smtp", "ses", "unsubscribe", "startup")


def medians(samples: list[dict]) -> dict:
    """Each numeric figure's median over a side's runs."""
    keys = [k for k, v in samples[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return {k: statistics.median(s[k] for s in samples if k in s) for k in keys}
