"""Reading the bounce corpus: every message of tests/bounce_corpus/ through the bounce mailbox's
reader (newsletter.feedback.bounces.read_message), as the poller reads them.

In a fresh process kept on one CPU core (os.sched_setaffinity where the system has it), CPU
time (time.process_time) of: a first pass over every message, which also pays for what the
reader imports and compiles on first use (flufl.bounce, the phrase tables); then RUNS passes
more, of which the median is the figure. Target: all of the messages in under 1 s of CPU.
Also the slowest message of the last pass, and the messages and bytes read.
`python -m bench.bounces` runs this benchmark alone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import time

from bench.harness import ROOT
from bench.harness.children import run_json

CORPUS = ROOT / "tests" / "bounce_corpus"
RUNS = 5
TARGET_S = 1.0


def bench_bounces(log=print, runs: int = RUNS) -> dict:
    """CPU seconds to read every corpus message, in a process of its own on one core."""
    result = run_json("bench.bounces", "--child", "--runs", str(runs), env=dict(os.environ), timeout=600)
    result["target_s"] = TARGET_S
    result["meets_target"] = result["cpu_s"] < TARGET_S
    log(
        f"bounce corpus: {result['messages']} messages ({result['bytes']:,} bytes) read in {result['cpu_s']:.3f} s "
        f"of CPU (median of {runs}; first pass, imports included, {result['first_pass_cpu_s']:.3f} s); "
        f"slowest {result['slowest']['message']} {result['slowest']['ms']:.1f} ms"
    )
    return result


def _child(runs: int) -> dict:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from newsletter.feedback.bounces import Addresses, read_message

    messages = [(str(path.relative_to(CORPUS)), path.read_bytes()) for path in sorted(CORPUS.glob("*/*.eml"))]
    if not messages:
        raise SystemExit(f"no messages under {CORPUS}")
    addresses = Addresses("bounce@news.example.org", "unsubscribe@news.example.org", "+")
    now = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)

    def one_pass() -> tuple[float, dict[str, float]]:
        each = {}
        started = time.process_time()
        for name, raw in messages:
            before = time.process_time()
            read_message(raw, addresses, now)
            each[name] = time.process_time() - before
        return time.process_time() - started, each

    first, _ = one_pass()
    timed = [one_pass() for _ in range(runs)]
    slowest = max(timed[-1][1].items(), key=lambda item: item[1])
    return {
        "messages": len(messages),
        "families": len({name.split("/", 1)[0] for name, _ in messages}),
        "bytes": sum(len(raw) for _, raw in messages),
        "first_pass_cpu_s": round(first, 4),
        "cpu_s": round(statistics.median(seconds for seconds, _ in timed), 4),
        "runs_cpu_s": [round(seconds, 4) for seconds, _ in timed],
        "slowest": {"message": slowest[0], "ms": round(slowest[1] * 1000, 2)},
        "cores": 1 if hasattr(os, "sched_setaffinity") else None,
        "python": sys.version.split()[0],
    }


def markdown_bounces(result: dict) -> list[str]:
    verdict = "meets the target" if result["meets_target"] else "**misses the target**"
    return [
        "## Reading the bounce corpus",
        "",
        f"Every message of tests/bounce_corpus/ ({result['messages']} messages of {result['families']} families, "
        f"{result['bytes']:,} bytes) read by the bounce mailbox's reader in one process on one core: "
        f"**{result['cpu_s']:.3f} s** of CPU (median of {len(result['runs_cpu_s'])} passes; the first pass, which "
        f"pays for the reader's imports, {result['first_pass_cpu_s']:.3f} s); target under {result['target_s']:.0f} s: "
        f"{verdict}. Slowest message: {result['slowest']['message']}, {result['slowest']['ms']:.1f} ms.",
        "",
    ]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description="reading the bounce corpus alone (the lead hooks it into python -m bench)"
    )
    parser.add_argument("--runs", type=int, default=RUNS, help=f"timed passes after the first (default {RUNS})")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.runs)))
    else:
        print(json.dumps(bench_bounces(log=lambda line: print(line, file=sys.stderr), runs=args.runs), indent=2))
