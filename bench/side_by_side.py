"""The markdown of a side-by-side run (`python -m bench --against REV`, bench/against.py):
one table per measure, old | new | new/old per figure, and `latest_section`, which a full
run's docs/benchmarks.md ends with (bench/report.py)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.harness import ROOT


def _cell(medians: dict, key: str, spec: str) -> str:
    return format(medians[key], spec) if key in medians else "–"


def markdown_measure(name: str, m: dict) -> list[str]:
    old, new = m["sides"]["old"], m["sides"]["new"]
    lines = [f"### {m['title']}", ""]
    for side in (old, new):
        if "cannot_run" in side:
            lines.append(f"{side['label']} **cannot run this measure**: {side['cannot_run']}" +
                         (f" (after {side['runs']} run{'s' if side['runs'] != 1 else ''})" if side["runs"] else ""))
    if any("cannot_run" in side for side in (old, new)):
        lines.append("")
    if not old["medians"] and not new["medians"]:
        return lines
    lines += [
        f"| | old: {old['label']} | new: {new['label']} | new/old |",
        "|---|---:|---:|---:|",
    ]
    for key, label, spec in m["figures"]:
        if key not in old["medians"] and key not in new["medians"]:
            continue
        ratio = m["ratio"].get(key)
        lines.append(f"| {label} | {_cell(old['medians'], key, spec)} | {_cell(new['medians'], key, spec)} | "
                     f"{'–' if ratio is None else f'{ratio:.2f}×'} |")
    lines += ["", f"Medians of {old['runs']} (old) and {new['runs']} (new) runs, the sides in turn.", ""]
    return lines


def markdown_side_by_side(result: dict) -> list[str]:
    uncommitted = result["new_uncommitted"]
    load = result["load_average"]
    lines = [
        f"## Side by side: {result['against']} and the working tree",
        "",
        f"Made by `python -m bench --against {result['against']}{' --quick' if result['quick'] else ''}` on {result['date']}: "
        f"{result['machine']}.",
        f"Old: {result['old_commit'][:10]} \"{result['old_subject']}\", from a temporary `git worktree`. New: the working tree at "
        f"{result['new_commit'][:10]}" + (f" with {len(uncommitted)} uncommitted file(s) ({', '.join(uncommitted[:8])}"
                                           f"{' …' if len(uncommitted) > 8 else ''})" if uncommitted else "") + ".",
        f"Each side's processes import its own `newsletter` (old: `{result['imports']['old']}`; new: `{result['imports']['new']}`)",
        "and use its templates/, issues/ and newsletter.toml; the harness (sink, SES stub, load generator,",
        "launcher, PostgreSQL) is this tree's, one of each for both sides. The sides run in turn, old then new,",
        "run after run; medians per side; new/old below 1 is less of that figure in the new code.",
        f"1-minute load average at the start {load['start']:g}, at the end {load['end']:g}.",
        "",
    ]
    for name, m in result["measures"].items():
        lines += markdown_measure(name, m)
    return lines


def latest_section(dist: Path = ROOT / "dist") -> list[str]:
    """The side-by-side section of the newest dist/bench-against-*.json, or nothing."""
    found = sorted(dist.glob("bench-against-*.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        return []
    try:
        return markdown_side_by_side(json.loads(found[-1].read_text(encoding="utf-8")))
    except (ValueError, KeyError):  # written by an older bench: left out rather than failing the report
        return []
