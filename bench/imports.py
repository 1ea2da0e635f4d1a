"""Importing a big sheet: `newsletter subscribers import` reads the file as it goes, so its
memory must not grow with the file.

A sheet of about SIZE MB of fictional people (every other one Arabic, `personNNNNNNNN@example.org`)
is written to a temporary folder and imported onto the list "main" of a throwaway project (its
SQLite store beside newsletter.toml) by `newsletter subscribers import`, a child process started
by bench/harness/launcher.py: its peak RSS is the child's own (`ru_maxrss`, as wait4 reports it),
not inherited from this process, whose high-water mark an exec straight from here would carry
over. The same for a 1 MB sheet: the floor (interpreter, imports, store), to compare with.

Target: peak RSS under 200 MB for a 200 MB file. `python -m bench.imports` runs this benchmark
alone (`--size-mb` to change the size).
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

from bench.harness.launcher import measure, newsletter
from bench.harness.project import bench_env, write_project

SIZE_MB = 200
FLOOR_MB = 1  # the small sheet whose peak is the floor
TARGET_MB = 200  # peak RSS for a SIZE_MB file
BLOCK = 10_000  # rows written at a time


def write_sheet(path: Path, size_mb: float) -> int:
    """A sheet of about `size_mb` MB of people; the number of rows."""
    size = int(size_mb * 1024 * 1024)
    rows = written = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("email,name,language\n")
        while written < size:
            block = "".join(
                f"person{n:08d}@example.org,{'مشارك' if n % 2 else 'Participant'} {n},{'ar' if n % 2 else 'en'}\n"
                for n in range(rows, rows + BLOCK)
            )
            fh.write(block)
            written += len(block.encode("utf-8"))
            rows += BLOCK
    return rows


def import_sheet(size_mb: float, env: dict[str, str], log=print) -> dict:
    """One import of a fresh sheet into a fresh project: rows, seconds, peak RSS."""
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-import-") as tmpdir:
        root = Path(tmpdir)
        config = write_project(root, '[store]\nurl = "newsletter.sqlite3"\n')
        sheet = root / "people.csv"
        started = time.perf_counter()
        rows = write_sheet(sheet, size_mb)
        file_mb = sheet.stat().st_size / 2**20
        log(f"  {file_mb:.0f} MB sheet of {rows:,} rows written in {time.perf_counter() - started:.0f} s; importing …")
        usage = measure(newsletter("subscribers", "import", str(sheet), "--list", "main", config=config),
                        cwd=root, env=env, timeout=7200)
    if not re.search(rf"\bmain: {rows} added\b", usage["stdout"]):
        raise RuntimeError(f"importing {rows} rows: {usage['stdout']}\n{usage['stderr']}")
    return {
        "file_mb": file_mb,
        "rows": rows,
        "seconds": usage["wall_s"],
        "rows_per_s": rows / usage["wall_s"],
        "cpu_s": usage["utime_s"] + usage["stime_s"],
        "peak_rss_mb": usage["maxrss_mb"],
    }


def bench_import(size_mb: float = SIZE_MB, log=print) -> dict:
    """`newsletter subscribers import` of a `size_mb` MB sheet and of a FLOOR_MB one: rows, time, peak RSS."""
    env = bench_env()
    floor = import_sheet(FLOOR_MB, env, log=lambda _text: None)
    big = import_sheet(size_mb, env, log=log)
    result = {
        "size_mb": size_mb,
        **big,
        "floor": floor,
        "growth_mb": big["peak_rss_mb"] - floor["peak_rss_mb"],
        "target_mb": TARGET_MB,
        "target_size_mb": SIZE_MB,
        "ratio_to_target": big["peak_rss_mb"] / TARGET_MB,
        "within_target": big["peak_rss_mb"] < TARGET_MB,
    }
    log(f"  {big['rows']:,} rows ({big['file_mb']:.0f} MB) imported in {big['seconds']:.1f} s ({big['rows_per_s']:,.0f} rows/s); "
        f"peak RSS {big['peak_rss_mb']:.1f} MB ({FLOOR_MB} MB sheet: {floor['peak_rss_mb']:.1f} MB)")
    return result


def markdown_import(r: dict) -> list[str]:
    """docs/benchmarks.md's section (bench/report.py places it)."""
    floor = r["floor"]
    if r["size_mb"] >= r["target_size_mb"]:
        verdict = "meets the target" if r["within_target"] else "**misses the target**"
        target = f"{r['peak_rss_mb']:.1f} MB (ratio to target {r['ratio_to_target']:.2f}): {verdict}."
    else:
        target = "not measured at this size (quick run)."
    return [
        "## Importing a big sheet",
        "",
        "`newsletter subscribers import people.csv --list main` of a generated sheet (every other person",
        "Arabic) into a fresh project's SQLite store, as its own child process (bench/harness/launcher.py:",
        "the child's own peak RSS, `ru_maxrss`); one run.",
        "",
        "| sheet | rows | whole command | rows/s | CPU | peak RSS |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {r['file_mb']:.0f} MB | {r['rows']:,} | {r['seconds']:.1f} s | {r['rows_per_s']:,.0f} | {r['cpu_s']:.1f} s | "
        f"{r['peak_rss_mb']:.1f} MB |",
        f"| {floor['file_mb']:.0f} MB (the floor) | {floor['rows']:,} | {floor['seconds']:.1f} s | {floor['rows_per_s']:,.0f} | "
        f"{floor['cpu_s']:.1f} s | {floor['peak_rss_mb']:.1f} MB |",
        "",
        f"Target: a {r['target_size_mb']} MB sheet imported with a peak under {r['target_mb']} MB: {target}",
        "",
    ]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="a big import alone (python -m bench runs it with the rest)")
    parser.add_argument("--size-mb", type=float, default=SIZE_MB, help=f"the sheet's size (default {SIZE_MB})")
    args = parser.parse_args()
    print(json.dumps(bench_import(args.size_mb), indent=2))
