"""Benchmarks for newsletter. Figures are medians of repeated in-process runs.

Run with scripts/bench; writes dist/bench.json and docs/benchmarks.md.
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

ISSUE = ROOT / "issues" / "2022-12-year-end"


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()

    report = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "build_ms": bench_build(args.repeat)}

    out = ROOT / "dist" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    lines = [
        "# Benchmarks",
        "",
        f"Made by `scripts/bench` on {report['date']}: {report['machine']}.",
        "Medians of in-process runs after one warm-up (interpreter start excluded); these",
        "machines are shared, so compare ratios rather than absolute figures.",
        "",
        "## Building the year-end letter",
        "",
        "Load + assemble + render (Jinja2 → MJML → HTML → premailer) + plain text, per variant.",
        "",
        "| variant | median ms |",
        "|---|---:|",
    ]
    for name, ms in report["build_ms"].items():
        lines.append(f"| {name} | {ms:.1f} |")
    lines += ["", "Target: all three variants in under 50 ms together.", ""]
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    print(f"wrote {out.relative_to(ROOT)} and docs/benchmarks.md")


if __name__ == "__main__":
    main()
