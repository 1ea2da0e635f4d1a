"""Start-up as a user meets it: whole processes, timed from start to exit.

- `newsletter --help`;
- `newsletter build issues/2022-12-year-end` (its files written to a temporary folder);
- the reference compiler's own command line, `mjml` from npm (bench/node/), compiling the
  bilingual MJML alone (`mjml bilingual.mjml -o bilingual.html`): the MJML `newsletter build`
  hands to mjml-python for the bilingual variant.

The three run in turn, RUNS times after one warm-up each (files cached, bytecode written);
figures are medians. `python -m bench.startup` runs this benchmark alone.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.harness import ROOT

ISSUE = "issues/2022-12-year-end"
NODE_DIR = ROOT / "bench" / "node"  # package.json and package-lock.json: the reference compiler, pinned
RUNS = 7
HELP_TARGET_S = 0.10
BUILD_TARGET_RATIO = 0.8  # newsletter build at most 0.8× the mjml CLI


def reference_compiler(log=print) -> Path | None:
    """The `mjml` command of bench/node/, installed from its lock file when missing or older than
    the lock (as scripts/setup does for tests/node); None without Node."""
    command = NODE_DIR / "node_modules" / ".bin" / "mjml"
    modules, lock = NODE_DIR / "node_modules", NODE_DIR / "package-lock.json"
    if command.exists() and modules.stat().st_mtime >= lock.stat().st_mtime:
        return command
    if not shutil.which("node") or not shutil.which("npm"):
        return None
    log("installing the reference compiler (npm ci in bench/node/) …")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR, check=True,
                   capture_output=True, timeout=600)
    modules.touch()
    return command


def reference_version() -> str:
    mjml = json.loads((NODE_DIR / "node_modules" / "mjml" / "package.json").read_text(encoding="utf-8"))["version"]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    return f"mjml {mjml} (npm), Node {node}"


def mjml_sources(issue: Path) -> dict[str, str]:
    """Each variant's MJML as `newsletter build` renders it, caught on its way into mjml-python:
    `build_issue` calls mjml2html once per variant, in the order of its variants."""
    import mjml

    from newsletter.letter.render import build_issue

    original = mjml.mjml2html
    caught: list[str] = []

    def catch(source: str, *args, **kwargs):
        caught.append(source)
        return original(source, *args, **kwargs)

    # wherever it was imported from: the package, or a module that took the name at import
    holders = [module for module in list(sys.modules.values()) if getattr(module, "mjml2html", None) is original]
    for module in holders:
        module.mjml2html = catch
    try:
        build = build_issue(issue)
    finally:
        for module in holders:
            module.mjml2html = original
    if len(caught) != len(build.variants):
        raise RuntimeError(f"expected one MJML render per variant ({list(build.variants)}), caught {len(caught)}")
    return dict(zip(build.variants, caught, strict=True))


def newsletter_command() -> list[str]:
    """`newsletter` as installed (the console script beside this Python), else `python -m newsletter`."""
    script = Path(sys.executable).with_name("newsletter")
    return [str(script)] if script.exists() else [sys.executable, "-m", "newsletter"]


def timed_in_turn(commands: dict[str, list[str]], runs: int, cwd: Path) -> dict[str, list[float]]:
    """Wall seconds of each command, run in turn `runs` times after one warm-up each."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(runs + 1):
        for name, command in commands.items():
            elapsed = _timed(command, cwd, env)
            if round_:
                samples[name].append(elapsed)
    return samples


def _timed(command: list[str], cwd: Path, env: dict[str, str], limit: float = 120.0) -> float:
    """Wall seconds from start to exit. A blocking wait, not subprocess.run(timeout=…): that one
    polls with sleeps growing to 50 ms, which added up to 50 ms to every figure here."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    watchdog = threading.Timer(limit, process.kill)
    watchdog.start()
    try:
        status = process.wait()
    finally:
        watchdog.cancel()
    elapsed = time.perf_counter() - start
    if status != 0:
        raise subprocess.CalledProcessError(status, command)
    return elapsed


def startup_once(tree: Path, out: Path) -> dict:
    """`python -m newsletter --help` and `… build` of the year-end issue, once each, run from
    the code tree `tree` (its issues/ and newsletter.toml) with os.environ as it is (the side
    a side-by-side run measures sets PYTHONPATH): wall seconds. `python -m`, not the console
    script, whose entry point is this tree's."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    command = [sys.executable, "-m", "newsletter"]
    return {"help_s": _timed([*command, "--help"], tree, env), "build_s": _timed([*command, "build", ISSUE, "--out", str(out)], tree, env)}


def bench_startup(runs: int = RUNS, log=print) -> dict:
    reference = reference_compiler(log)
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-startup-") as tmp:
        work = Path(tmp)
        commands = {
            "help": [*newsletter_command(), "--help"],
            "build": [*newsletter_command(), "build", ISSUE, "--out", str(work / "build")],
        }
        if reference:
            source = work / "bilingual.mjml"
            source.write_text(mjml_sources(ROOT / ISSUE)["bilingual"], encoding="utf-8")
            commands["mjml"] = [str(reference), str(source), "-o", str(work / "bilingual.html")]
        samples = timed_in_turn(commands, runs, ROOT)
    median = {name: statistics.median(values) for name, values in samples.items()}
    result: dict = {
        "runs": runs,
        "median_s": median,
        "samples_s": {name: [round(v, 4) for v in values] for name, values in samples.items()},
        "help_target_s": HELP_TARGET_S,
        "build_target_ratio": BUILD_TARGET_RATIO,
    }
    if reference:
        result["reference"] = reference_version()
        result["build_to_mjml"] = median["build"] / median["mjml"]
    else:
        result["reference"] = "Node not present: the mjml CLI not measured"
    return result


def markdown_startup(r: dict) -> list[str]:
    """docs/benchmarks.md's section (bench/report.py places it)."""
    median, ratio = r["median_s"], r.get("build_to_mjml")
    lines = [
        "## Start-up: whole commands",
        "",
        "Each command as its own process, from start to exit (interpreter, imports, work, output),",
        f"the three in turn, {r['runs']} times after one warm-up each; medians. The reference is the",
        f"`mjml` command line of {r['reference']} (bench/node/), compiling the bilingual MJML that",
        "`newsletter build` hands to mjml-python, alone: `mjml bilingual.mjml -o bilingual.html`.",
        "",
        "| command | median s |",
        "|---|---:|",
        f"| `newsletter --help` | {median['help']:.3f} |",
        f"| `newsletter build {ISSUE}` (every variant: HTML, text, .eml) | {median['build']:.3f} |",
    ]
    if ratio is not None:
        lines += [
            f"| `mjml bilingual.mjml -o bilingual.html` (npm) | {median['mjml']:.3f} |",
            f"| ratio: `newsletter build` / `mjml` | {ratio:.2f}× |",
        ]
    lines += [
        "",
        f"Targets: `newsletter --help` at most {r['help_target_s']:.2f} s: {_meets(median['help'] <= r['help_target_s'])};",
        f"`newsletter build` at most {r['build_target_ratio']:g}× the `mjml` command: "
        + (_meets(ratio <= r["build_target_ratio"]) if ratio is not None else "not measured (no Node)")
        + ".",
        "",
    ]
    return lines


def _meets(ok: bool) -> str:
    return "meets the target" if ok else "**misses the target**"


if __name__ == "__main__":
    print(json.dumps(bench_startup(), indent=2))
