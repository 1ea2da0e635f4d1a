"""`python -m bench` (run by scripts/bench): every benchmark in turn, then the report.

Figures are medians of repeated runs. Whole commands from start to exit: `newsletter --help`,
`newsletter build` and the reference `mjml` command (bench.startup). In process: building the year-end letter and MJML
alone (bench.build), composing per-recipient messages (bench.compose). As child processes
(bench.send): the peak memory of a 100,000-recipient dry run, and sending through SMTP to a
sink at 500/s. With a real PostgreSQL: sending through a simulated SES with 1, 2 and 4
worker processes (bench.ses), and the peak memory of dry runs of 100,000 and 1,000,000
recipients (bench.memory). And the one-click unsubscribe of `newsletter serve` under load
(bench.unsubscribe), and its 404 for forged, unknown and forgotten tokens timed alike
(bench.unsubscribe.bench_token_timing); the sign-up form's answer timed alike for suppressed,
active and new addresses (bench.signup); and the peak memory of importing a 200 MB sheet
(bench.imports), and reading every message of the bounce corpus (bench.bounces).
`python -m bench.ses --profile 4` and
`python -m bench.unsubscribe --profile cpu` show where the CPU goes.

`python -m bench --against REV [--only smtp,ses,…] [--runs N]` runs measures side by side
against git revision REV's code instead (bench/against.py), writing dist/bench-against-REV.*;
a full run's docs/benchmarks.md ends with the newest of those sections. The SMTP measure
counts the SQL statements of the whole send (bench/harness/sqlcount.py); `--stock-sink`
runs it against aiosmtpd unmodified rather than the bench's sink (bench/harness/sink.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from pathlib import Path

from bench import report as bench_report
from bench.bounces import bench_bounces
from bench.build import ISSUE, bench_build, bench_mjml
from bench.compose import bench_compose
from bench.harness import ROOT
from bench.harness.postgres import Postgres, pg_bin
from bench.imports import bench_import
from bench.memory import bench_memory
from bench.send import bench_dry_run, bench_smtp
from bench.side_by_side import latest_section
from bench.ses import bench_ses, profile_ses
from bench.signup import bench_signup_timing
from bench.startup import bench_startup
from bench.unsubscribe import bench_token_timing, bench_unsubscribe, profile_unsubscribe

FULL = {
    "startup_runs": 7, "build_repeat": 50,
    "compose_messages": 20_000, "compose_runs": 5,
    "dry_run_recipients": 100_000, "dry_run_runs": 3,
    "smtp_messages": 5_000, "smtp_runs": 3,
    "ses_counts": {1: 2_400, 2: 3_600, 4: 6_000}, "ses_runs": 3,
    "mem_small": 100_000, "mem_large": 1_000_000, "mem_runs": 3, "mem_large_runs": 1, "mem_worker": True,
    "unsub_subscribers": 100_000, "unsub_runs": 3, "unsub_duration": 10.0, "unsub_max": 25_000,
    "token_requests": 2_000,
    "signup_per_kind": 60, "import_mb": 200,
}
QUICK = {
    "startup_runs": 3, "build_repeat": 10,
    "compose_messages": 2_000, "compose_runs": 3,
    "dry_run_recipients": 5_000, "dry_run_runs": 1,
    "smtp_messages": 1_000, "smtp_runs": 1,
    "ses_counts": {1: 300, 2: 400, 4: 800}, "ses_runs": 1,
    "mem_small": 5_000, "mem_large": 20_000, "mem_runs": 1, "mem_large_runs": 1, "mem_worker": False,
    "unsub_subscribers": 10_000, "unsub_runs": 1, "unsub_duration": 3.0, "unsub_max": 5_000,
    "token_requests": 500,
    "signup_per_kind": 15, "import_mb": 5,
}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")).split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    postgres = ""
    try:
        postgres = ", " + subprocess.run([pg_bin("postgres"), "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (RuntimeError, OSError, subprocess.SubprocessError):
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}{memory}, Python {platform.python_version()}{postgres}"


def load() -> float:
    """The 1-minute load average: other work on this shared machine moves the figures."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return -1.0


def main() -> None:
    parser = argparse.ArgumentParser(prog="scripts/bench", description="Benchmarks; writes dist/bench.json and docs/benchmarks.md (--quick: dist/ only).")
    parser.add_argument("--repeat", type=int, default=None, help="build runs per variant (default 50, --quick 10)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes in all (CI): writes dist/ only")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="profiled runs (cProfile) of the SES and unsubscribe benchmarks; auto: when a full run misses a target")
    parser.add_argument("--against", metavar="REV", help="side by side: the same measures against git revision REV's code "
                        "and the working tree (bench/against.py); writes dist/bench-against-REV.json and .md")
    parser.add_argument("--only", metavar="NAMES", help="with --against: the measures, comma-separated, among smtp, ses, "
                        "unsubscribe, startup, build, compose (default: smtp,ses,unsubscribe,startup)")
    parser.add_argument("--runs", type=int, default=None, help="with --against: runs per side (default 3, --quick 1)")
    parser.add_argument("--stock-sink", action="store_true", help="send to aiosmtpd unmodified (DATA line by line, "
                        "no PIPELINING) instead of the bench's sink, for comparison")
    args = parser.parse_args()
    if (args.only or args.runs) and not args.against:
        parser.error("--only and --runs go with --against")
    if args.against:
        from bench import against

        against.main(args.against, args.only, args.quick, args.runs, args.stock_sink, (machine(), load))
        return
    sizes = QUICK if args.quick else FULL
    repeat = args.repeat or sizes["build_repeat"]
    started = time.perf_counter()

    def log(text: str) -> None:
        print(text, flush=True)

    report: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "quick": args.quick, "load_average": {"start": load()}}
    log(f"start-up: newsletter --help, newsletter build and the mjml command, {sizes['startup_runs']} runs each …")
    report["startup"] = bench_startup(sizes["startup_runs"], log=log)
    log(f"building the year-end letter ({repeat} runs per variant) …")
    report["build_ms"] = bench_build(repeat)
    log("MJML: mjml-python against the reference compiler (npm mjml) …")
    report["mjml"] = bench_mjml(repeat, log=log)
    log(f"composing {sizes['compose_messages']} messages × {sizes['compose_runs']} runs per variant …")
    report["compose"] = bench_compose(ISSUE, sizes["compose_messages"], sizes["compose_runs"])
    log(f"dry run of {sizes['dry_run_recipients']} recipients …")
    report["dry_run"] = bench_dry_run(sizes["dry_run_recipients"], sizes["dry_run_runs"], log=log)
    report["load_average"]["before_smtp"] = load()
    log(f"sending {sizes['smtp_messages']} messages to an SMTP sink at 500/s …")
    report["smtp"] = bench_smtp(sizes["smtp_messages"], sizes["smtp_runs"], rate=500, workers=4, log=log, stock_sink=args.stock_sink)
    pg = Postgres()
    try:
        report["load_average"]["before_ses"] = load()
        counts = sizes["ses_counts"]
        log(f"sending through a simulated SES with {', '.join(str(w) for w in counts)} workers "
            f"({', '.join(f'{c:,}' for c in counts.values())} messages), {sizes['ses_runs']} run(s) each …")
        report["ses"] = bench_ses(counts, sizes["ses_runs"], log=log, pg=pg)
        if args.profile == "always" or (args.profile == "auto" and not args.quick and report["ses"]["ratio_to_target"] < 1):
            most = max(counts)
            log(f"profiling a run of {most} workers (CPU time of every thread) …")
            report["ses"]["profiled"] = profile_ses(most, counts[most], log=log, pg=pg)
        report["load_average"]["before_memory"] = load()
        log(f"peak memory of dry runs of {sizes['mem_small']:,} and {sizes['mem_large']:,} recipients …")
        report["memory"] = bench_memory(sizes["mem_small"], sizes["mem_large"], sizes["mem_runs"], sizes["mem_large_runs"],
                                        sizes["mem_worker"], log=log, pg=pg)
    finally:
        pg.stop()
    report["load_average"]["before_unsubscribe"] = load()
    log(f"one-click unsubscribes, {sizes['unsub_runs']} run(s) of up to {sizes['unsub_duration']:g} s …")
    report["unsubscribe"] = bench_unsubscribe(sizes["unsub_subscribers"], sizes["unsub_runs"], sizes["unsub_duration"],
                                              sizes["unsub_max"], log=log)
    u = report["unsubscribe"]
    if args.profile == "always" or (args.profile == "auto" and not args.quick and (u["rate_ratio_to_target"] < 1 or u["p99_ratio_to_target"] >= 1)):
        log("profiling the server (CPU time, then wall time) …")
        u["profiled"] = profile_unsubscribe(min(sizes["unsub_subscribers"], 30_000), min(sizes["unsub_duration"], 5.0),
                                            min(sizes["unsub_max"], 10_000), log=log)
    log(f"GET /u/<token> for forged, unknown and forgotten tokens, {sizes['token_requests']:,} each …")
    u["tokens"] = bench_token_timing(sizes["unsub_subscribers"], sizes["token_requests"], log=log)
    report["load_average"]["before_signup"] = load()
    log(f"POST /subscribe for suppressed, active and new addresses, {sizes['signup_per_kind']} first posts each …")
    report["signup"] = bench_signup_timing(sizes["signup_per_kind"], log=log)
    report["load_average"]["before_import"] = load()
    log(f"importing a {sizes['import_mb']} MB sheet …")
    report["imports"] = bench_import(sizes["import_mb"], log=log)
    log("reading every message of the bounce corpus …")
    report["bounces"] = bench_bounces(log=log)
    report["load_average"]["end"] = load()
    report["total_s"] = time.perf_counter() - started

    # a full run's page ends with the newest side-by-side section (bench/against.py)
    lines, written = bench_report.write(report, [] if args.quick else latest_section())
    print("\n".join(lines))
    print(f"wrote {' and '.join(str(path.relative_to(ROOT)) for path in written)} in {report['total_s']:.0f} s")


if __name__ == "__main__":
    main()
