"""`python -m bench --against REV` (and `scripts/bench --against REV`): the same measures run
against the code of git revision REV and against the working tree, side by side on this
machine, so that a regression shows as a ratio.

REV's code is a detached `git worktree` in a temporary folder, removed at the end (also on
Ctrl-C, SIGTERM or a failure); the measured processes import its `newsletter` package through
PYTHONPATH and use its templates/, issues/ and newsletter.toml (bench/harness/trees.py), and
each side's first process says where it imported the package from (checked before any
measure). The harness (sink, SES stub, load generator, launcher, project set-up,
PostgreSQL) is always this tree's, and one sink, one stub, one PostgreSQL serve both sides.
The sides run in turn, old then new, run after run (A B A B …), so that what else the
shared machine does touches both; each figure is a median per side, with the ratio new/old.

`--only smtp,ses,unsubscribe,startup,build,compose` picks the measures (default: smtp, ses,
unsubscribe, startup; bench/side_measures.py); `--runs N` the runs per side (default 3,
`--quick` 1 at small sizes). Where the older revision cannot run a measure (an option, a
schema or a module it lacks) the output says so, with the reason, and the other side's
figures stand alone.

Written: dist/bench-against-REV.json and dist/bench-against-REV.md (the markdown section,
old | new | new/old per figure). docs/benchmarks.md includes it through a full run: `python
-m bench` (without --quick) appends the section of the newest dist/bench-against-*.json to
the page it writes (bench/side_by_side.py's latest_section).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT
from bench.harness.trees import CodeTree, checkout, describe, git, make_tree, measuring, newsletter_file
from bench.side_by_side import markdown_side_by_side
from bench.side_measures import DEFAULT, MEASURES, QUICK_SIZES, SIZES, Measure, medians


def choose(only: str | None) -> list[str]:
    """The measures --only names, in the order given; SystemExit(2) with the known names otherwise."""
    names = [n.strip() for n in only.split(",") if n.strip()] if only else list(DEFAULT)
    unknown = [n for n in names if n not in MEASURES]
    if unknown or not names:
        print(f"--only: {', '.join(unknown) or 'nothing'}: not a measure; choose among {', '.join(MEASURES)}", file=sys.stderr)
        raise SystemExit(2)
    return names


def _reason(exc: BaseException) -> str:
    """What stopped a side, in a line or two: the error's first line, and its last when it differs."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [type(exc).__name__]
    return lines[0] if len(lines) == 1 else f"{lines[0]} … {lines[-1]}"


def _brief(sample: dict, measure: Measure) -> str:
    return ", ".join(f"{label} {format(sample[key], spec)}" for key, label, spec in measure.figures[:4] if key in sample)


def run_measure(measure: Measure, trees: list[CodeTree], sizes: dict, log) -> dict:
    samples: dict[str, list[dict]] = {tree.side: [] for tree in trees}
    failed: dict[str, str] = {}
    try:
        with measure.resources(sizes) as resources:
            for round_ in range(sizes["runs"]):
                for tree in trees:
                    if tree.side in failed:
                        continue
                    started = time.perf_counter()
                    with measuring(tree):
                        try:
                            sample = measure.once(resources, tree, round_, sizes)
                        except Exception as exc:  # noqa: BLE001 - a side that cannot run this measure is reported, not fatal
                            failed[tree.side] = _reason(exc)
                            log(f"  {measure.name}, {tree.side} ({tree.label}): cannot run: {failed[tree.side]}")
                            continue
                    samples[tree.side].append(sample)
                    log(f"  {measure.name}, run {round_ + 1}/{sizes['runs']}, {tree.side}: {_brief(sample, measure)} "
                        f"({time.perf_counter() - started:.0f} s)")
    except Exception as exc:  # noqa: BLE001 - its set-up failed (PostgreSQL missing, say): both sides
        reason = _reason(exc)
        log(f"  {measure.name}: cannot run: {reason}")
        failed = {tree.side: failed.get(tree.side, reason) for tree in trees}
    sides = {}
    for tree in trees:
        got = samples[tree.side]
        sides[tree.side] = {"label": tree.label, "runs": len(got), "medians": medians(got) if got else {}, "samples": got}
        if tree.side in failed:
            sides[tree.side]["cannot_run"] = failed[tree.side]
    old, new = sides["old"]["medians"], sides["new"]["medians"]
    ratio = {key: new[key] / old[key] for key, _label, _spec in measure.figures if key in old and key in new and old[key]}
    return {"title": measure.title, "figures": measure.figures, "sides": sides, "ratio": ratio}


def _uncommitted() -> list[str]:
    return [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines() if line.strip()]


def run_against(rev: str, only: str | None, quick: bool, runs: int | None, stock_sink: bool, about, log=print) -> dict:
    """`about`: bench/__main__.py's (machine, load): the machine's description, the load average."""
    machine, load = about
    names = choose(only)
    try:
        sha, subject = describe(rev)
    except RuntimeError:
        print(f"--against: {rev}: not a commit git knows in {ROOT}", file=sys.stderr)
        raise SystemExit(2) from None
    sizes = dict(QUICK_SIZES if quick else SIZES, stock_sink=stock_sink)
    if runs:
        sizes["runs"] = runs
    result: dict = {
        "against": rev, "old_commit": sha, "old_subject": subject, "new_commit": git("rev-parse", "HEAD"),
        "new_uncommitted": _uncommitted(), "machine": machine, "date": time.strftime("%Y-%m-%d %H:%M"), "quick": quick,
        "sizes": {k: (v if not isinstance(v, dict) else {str(a): b for a, b in v.items()}) for k, v in sizes.items()},
        "load_average": {"start": load()}, "measures": {},
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-trees-") as scratch_dir:
        scratch = Path(scratch_dir)
        with checkout(sha, scratch / "old") as old_root:
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(old_root / "newsletter")], check=False,
                           capture_output=True, timeout=300)  # both sides start with their bytecode written
            trees = [make_tree("old", rev if sha.startswith(rev) else f"{rev} ({sha[:7]})", old_root, scratch), make_tree("new", "working tree", ROOT, scratch)]
            result["imports"] = {}
            for tree in trees:
                found = newsletter_file(tree, scratch)
                if not Path(found).resolve().is_relative_to(tree.root.resolve()):
                    raise RuntimeError(f"the {tree.side} side imports newsletter from {found}, not from {tree.root}")
                result["imports"][tree.side] = found
                log(f"{tree.side}: {tree.label}, newsletter imported from {found}")
            for name in names:
                log(f"{name}: {sizes['runs']} run(s) per side, old and new in turn …")
                result["load_average"][f"before_{name}"] = load()
                result["measures"][name] = run_measure(MEASURES[name], trees, sizes, log)
    result["load_average"]["end"] = load()
    result["total_s"] = time.perf_counter() - started
    return result


def write(result: dict) -> list[Path]:
    stem = "bench-against-" + re.sub(r"[^A-Za-z0-9._-]+", "-", result["against"])
    data, page = ROOT / "dist" / f"{stem}.json", ROOT / "dist" / f"{stem}.md"
    data.parent.mkdir(exist_ok=True)
    data.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    page.write_text("\n".join(markdown_side_by_side(result)), encoding="utf-8")
    return [data, page]


def main(rev: str, only: str | None, quick: bool, runs: int | None, stock_sink: bool, about) -> None:
    def log(text: str) -> None:
        print(text, flush=True)

    result = run_against(rev, only, quick, runs, stock_sink, about, log)
    written = write(result)
    print("\n".join(markdown_side_by_side(result)))
    print(f"wrote {' and '.join(str(p.relative_to(ROOT)) for p in written)} in {result['total_s']:.0f} s")
    failed = [f"{name} ({side})" for name, m in result["measures"].items() for side, s in m["sides"].items()
              if "cannot_run" in s and side == "new"]
    if failed:  # the working tree must run every measure; an old revision may lack one
        print(f"the working tree could not run: {', '.join(failed)}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    print("run it as python -m bench --against REV", file=sys.stderr)
    raise SystemExit(2)

