"""Benchmarks for newsletter. Figures are medians of repeated runs.

Run with scripts/bench (`--quick` for smaller sizes); writes dist/bench.json and
docs/benchmarks.md. In process: building the year-end letter, and composing per-recipient
messages (scripts/bench_compose.py). As child processes (scripts/bench_send.py): the peak
memory of a 100,000-recipient dry run, and sending through SMTP to an aiosmtpd sink
(scripts/bench_sink.py) at 500/s; the throwaway projects come from scripts/bench_project.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from newsletter.build import build_issue  # noqa: E402
from newsletter.config import find_config, load_config  # noqa: E402
from newsletter.errors import Problems  # noqa: E402
from newsletter.issue import load_issue  # noqa: E402
from newsletter.letter import assemble  # noqa: E402
from newsletter.render import render_variants, variant_names  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
from bench_compose import bench_compose  # noqa: E402
from bench_send import bench_dry_run, bench_smtp  # noqa: E402

ISSUE = ROOT / "issues" / "2022-12-year-end"

FULL = {
    "build_repeat": 50,
    "compose_messages": 20_000, "compose_runs": 5,
    "dry_run_recipients": 100_000, "dry_run_runs": 3,
    "smtp_messages": 5_000, "smtp_runs": 3,
}
QUICK = {
    "build_repeat": 10,
    "compose_messages": 2_000, "compose_runs": 3,
    "dry_run_recipients": 5_000, "dry_run_runs": 1,
    "smtp_messages": 1_000, "smtp_runs": 1,
}


def median_ms(fn, repeat: int) -> tuple[float, list[float]]:
    fn()  # warm caches (template compilation) as a long-lived process would have them
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), samples


def bench_build(repeat: int) -> dict:
    config = load_config(find_config(ISSUE))
    results: dict[str, float] = {}

    def one(name: str):
        problems = Problems()
        issue = load_issue(ISSUE, config, problems)
        letters = assemble(issue, config)
        render_variants(letters, config, problems, only=[name])

    for name in variant_names(config):
        results[name], _ = median_ms(lambda: one(name), repeat)
    results["all three (one build_issue call)"], _ = median_ms(lambda: build_issue(ISSUE), repeat)
    return results


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def load() -> float:
    """The 1-minute load average: other work on this shared machine moves the figures."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return -1.0


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmarks; writes dist/bench.json and docs/benchmarks.md.")
    parser.add_argument("--repeat", type=int, default=None, help="build runs per variant (default 50, --quick 10)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes: the whole run in well under a minute")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    repeat = args.repeat or sizes["build_repeat"]
    started = time.perf_counter()

    def log(text: str) -> None:
        print(text, flush=True)

    report: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "quick": args.quick, "load_average": {"start": load()}}
    log(f"building the year-end letter ({repeat} runs per variant) …")
    report["build_ms"] = bench_build(repeat)
    log(f"composing {sizes['compose_messages']} messages × {sizes['compose_runs']} runs per variant …")
    report["compose"] = bench_compose(ISSUE, sizes["compose_messages"], sizes["compose_runs"])
    log(f"dry run of {sizes['dry_run_recipients']} recipients …")
    report["dry_run"] = bench_dry_run(sizes["dry_run_recipients"], sizes["dry_run_runs"], log=log)
    report["load_average"]["before_smtp"] = load()
    log(f"sending {sizes['smtp_messages']} messages to an SMTP sink at 500/s …")
    report["smtp"] = bench_smtp(sizes["smtp_messages"], sizes["smtp_runs"], rate=500, workers=4, log=log)
    report["load_average"]["end"] = load()
    report["total_s"] = time.perf_counter() - started

    out = ROOT / "dist" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    lines = markdown(report)
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    print(f"wrote {out.relative_to(ROOT)} and docs/benchmarks.md in {report['total_s']:.0f} s")


def _meets(ok: bool) -> str:
    return "meets the target" if ok else "**misses the target**"


def markdown(report: dict) -> list[str]:
    lines = [
        "# Benchmarks",
        "",
        f"Made by `scripts/bench{' --quick' if report['quick'] else ''}` on {report['date']}: {report['machine']}.",
        "Medians of repeated runs; these machines are shared, so compare ratios rather than",
        "absolute figures." + (" Quick run: sizes are smaller than the targets assume." if report["quick"] else ""),
        f"1-minute load average at the start {report['load_average']['start']:g}, before the SMTP run "
        f"{report['load_average']['before_smtp']:g},",
        f"at the end {report['load_average']['end']:g} ({os.cpu_count()} cores); the SMTP figure needs about one and a half free cores.",
        "",
        "## Building the year-end letter",
        "",
        "Load + assemble + render (Jinja2 → MJML → HTML → premailer) + plain text, per variant;",
        "in-process runs after one warm-up (interpreter start excluded).",
        "",
        "| variant | median ms |",
        "|---|---:|",
    ]
    for name, ms in report["build_ms"].items():
        lines.append(f"| {name} | {ms:.1f} |")
    lines += ["", "Target: all three variants in under 50 ms together.", ""]

    c = report["compose"]
    lines += [
        "## Personalising and building messages",
        "",
        f"`Composer.compose` for {c['messages_per_run']:,} recipients per run, {c['runs']} runs per variant, one core,",
        "in process (the issue built once): signed unsubscribe token, placeholders filled, both",
        "parts encoded, MIME assembled.",
        "",
        "| variant | median messages/s | µs/message | ratio to target | message KB | encodings (text, html) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, r in c["variants"].items():
        lines.append(
            f"| {name} | {r['messages_per_s']:,.0f} | {r['us_per_message']:.1f} | {r['ratio_to_target']:.2f} | "
            f"{r['message_kb']:.1f} | {', '.join(r['transfer_encodings'])} |"
        )
    worst = min(r["messages_per_s"] for r in c["variants"].values())
    lines += ["", f"Target: at least {c['target_per_s']:,} messages/s per variant: {_meets(worst >= c['target_per_s'])}.", ""]

    d = report["dry_run"]
    lines += [
        "## Peak memory of a dry run",
        "",
        f"`newsletter send ISSUE --list main --dry-run` on a throwaway project (SQLite) with",
        f"{d['recipients']:,} subscribers (every other one Arabic; the bilingual layout sends everyone",
        "the bilingual variant), run as its own child process; peak RSS is its `ru_maxrss`.",
        f"Median of {d['runs']} run{'s' if d['runs'] != 1 else ''}.",
        "",
        "| | median |",
        "|---|---:|",
        f"| peak RSS, {d['recipients']:,} recipients | {d['peak_rss_mb']:.1f} MB |",
        f"| ratio to the 150 MB target | {d['ratio_to_target']:.2f} |",
        f"| peak RSS, 10 recipients (the floor: imports, build) | {d['peak_rss_mb_10_recipients']:.1f} MB |",
        f"| dry-run wall time (whole command) | {d['wall_s']:.1f} s |",
        f"| dry-run CPU time | {d['cpu_s']:.1f} s |",
        f"| messages composed | {d['messages_mb']:.0f} MB in all |",
        f"| `Store.import_subscribers` of {d['recipients']:,} rows | {d['import_s']:.1f} s ({d['import_per_s']:,.0f} rows/s) |",
        "",
        f"Target: under 150 MB for 100,000 recipients: "
        + (_meets(d["peak_rss_mb"] < 150) if d["recipients"] >= 100_000 else "not measured at this size (quick run)")
        + ".",
        "",
    ]

    m = report["smtp"]
    lines += [
        "## Sending through SMTP",
        "",
        f"`newsletter send --provider smtp --yes` to {m['messages']:,} subscribers, `rate = {m['configured_rate']:g}`,",
        f"`workers = {m['workers']}`, plain SMTP on 127.0.0.1 to an aiosmtpd sink in its own process.",
        "Delivered rate = messages the sink accepted / the send summary's \"in X s\" (freezing",
        "the recipients into the ledger + sending). Median of"
        f" {m['runs']} run{'s' if m['runs'] != 1 else ''}, a fresh project each.",
        "",
        "| | median |",
        "|---|---:|",
        f"| delivered | {m['delivered']:,.0f} of {m['messages']:,} |",
        f"| delivered per second | {m['rate']:.0f}/s |",
        f"| fraction of the 500/s rate | {m['fraction_of_rate']:.1%} |",
        f"| ratio to the 90 % target | {m['ratio_to_target']:.2f} |",
        f"| at the sink, first to last message | {m['sink_rate']:.0f}/s ({m['sink_fraction_of_rate']:.1%}) |",
        f"| summary's \"in X s\" | {m['elapsed_s']:.1f} s |",
        f"| whole command (interpreter, build, freeze, send) | {m['wall_s']:.1f} s |",
        f"| sender CPU (user + sys) | {m['cpu_s']:.1f} s ({m['cpu_ms_per_message']:.2f} ms/message; "
        f"user {m['user_s']:.1f} s, sys {m['sys_s']:.1f} s) |",
        f"| sink CPU (its own process) | {m['sink_cpu_s']:.1f} s ({m['sink_cpu_ms_per_message']:.2f} ms/message) |",
        "",
        f"Target: at least 90 % of the configured rate: {_meets(m['fraction_of_rate'] >= 0.9)}.",
        "",
    ]
    return lines


if __name__ == "__main__":
    main()
