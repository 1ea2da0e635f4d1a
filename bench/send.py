"""Benchmarks that run `newsletter send` as a child process: peak memory of a dry run and
throughput against a real SMTP sink. Used by scripts/bench.py.

Every measured command is started by a tiny launcher (this file, run with `--measure`,
stdlib only) that waits for it and reads its rusage. A child's ru_maxrss on Linux starts
from the peak RSS of the process that spawned it (the kernel carries the parent's high-water
mark over the exec), so a big parent such as the bench process itself would inflate it;
the launcher is a few MB, far below anything measured.
"""

from __future__ import annotations

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_proc import LineChild  # noqa: E402
from bench_project import ISSUE, LIST, bench_env  # noqa: E402 - stdlib only at import time

SUMMARY = re.compile(r"(\d+) sent in this run, at most ([\d.]+)/s, in ([\d.]+) s")
DRY_RUN = re.compile(r"dry run: (\d+) messages? to .*?, ([\d.]+) MB in all")


# --- the launcher ---------------------------------------------------------------------------


def _launcher(out: str, command: list[str]) -> int:
    start = time.perf_counter()
    code = subprocess.call(command)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    Path(out).write_text(
        json.dumps(
            {"rc": code, "wall_s": wall, "maxrss_mb": usage.ru_maxrss / 1024, "utime_s": usage.ru_utime, "stime_s": usage.ru_stime,
             "launcher_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        )
    )
    return code


def measure(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 900) -> dict:
    """Run `command` under the launcher; its rusage (peak RSS, CPU) and wall time, and its output."""
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as handle:
        out = handle.name
    try:
        result = subprocess.run(
            [sys.executable, "-S", str(Path(__file__).resolve()), "--measure", out, "--", *command],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
        )
        usage = json.loads(Path(out).read_text() or "{}")
    finally:
        os.unlink(out)
    if result.returncode != 0 or usage.get("rc") != 0:
        raise RuntimeError(f"{' '.join(command)}: exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    usage["stdout"], usage["stderr"] = result.stdout, result.stderr
    return usage


# --- helpers --------------------------------------------------------------------------------


def make_project(root: Path, count: int, env: dict[str, str], extra_toml: str = "") -> dict:
    """A project with `count` subscribers on LIST, made in a child process; its import time."""
    result = subprocess.run(
        [sys.executable, str(HERE / "bench_project.py"), str(root), str(count), "--extra-toml", extra_toml],
        env=env, capture_output=True, text=True, timeout=1800,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench_project.py {count}: exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    info = json.loads(result.stdout.strip().splitlines()[-1])
    return info


def newsletter(*args: str, config: Path) -> list[str]:
    return [sys.executable, "-m", "newsletter", *args, "--config", str(config)]


# --- 2. peak memory of a dry run --------------------------------------------------------------


def bench_dry_run(count: int, runs: int, log=print) -> dict:
    env = bench_env()
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-") as tmp:
        # Floor: the same command on a 10-person list (imports, build, store, one pass).
        small = Path(tmp) / "small"
        make_project(small, 10, env)
        floor = measure(newsletter("send", ISSUE, "--list", LIST, "--dry-run", config=small / "newsletter.toml"), cwd=small, env=env)

        big = Path(tmp) / "big"
        log(f"  importing {count} subscribers …")
        info = make_project(big, count, env)
        log(f"  import: {info['import_s']:.1f} s")
        samples = []
        for n in range(runs):
            usage = measure(newsletter("send", ISSUE, "--list", LIST, "--dry-run", config=big / "newsletter.toml"), cwd=big, env=env)
            found = DRY_RUN.search(usage["stdout"])
            if not found or int(found.group(1)) != count:
                raise RuntimeError(f"dry run did not compose {count} messages:\n{usage['stdout']}\n{usage['stderr']}")
            usage["total_mb"] = float(found.group(2))
            samples.append(usage)
            log(f"  dry run {n + 1}/{runs}: peak RSS {usage['maxrss_mb']:.1f} MB, {usage['wall_s']:.1f} s")
    peak = statistics.median(u["maxrss_mb"] for u in samples)
    return {
        "recipients": count,
        "runs": runs,
        "import_s": info["import_s"],
        "import_per_s": count / info["import_s"],
        "peak_rss_mb": peak,
        "peak_rss_mb_samples": [round(u["maxrss_mb"], 1) for u in samples],
        "peak_rss_mb_10_recipients": floor["maxrss_mb"],
        "wall_s": statistics.median(u["wall_s"] for u in samples),
        "wall_s_10_recipients": floor["wall_s"],
        "cpu_s": statistics.median(u["utime_s"] + u["stime_s"] for u in samples),
        "messages_mb": samples[0]["total_mb"],
        "launcher_rss_mb": max(u["launcher_maxrss_mb"] for u in samples),
        "target_mb": 150,
        "ratio_to_target": peak / 150,
    }


# --- 3. throughput against an SMTP sink ---------------------------------------------------------


class Sink(LineChild):
    """scripts/bench_sink.py as a child process."""

    def __init__(self):
        super().__init__(HERE / "bench_sink.py")


def smtp_toml(port: int, rate: float, workers: int) -> str:
    return (
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 10\n\n'
        f"[send]\nrate = {rate:g}\nthreads = {workers}\nmax_attempts = 8\n"
    )


def bench_smtp(count: int, runs: int, rate: float = 500, workers: int = 4, log=print) -> dict:
    env = bench_env()
    sink = Sink()
    samples = []
    try:
        with tempfile.TemporaryDirectory(prefix="newsletter-bench-") as tmp:
            for n in range(runs):
                root = Path(tmp) / f"smtp{n}"
                info = make_project(root, count, env, smtp_toml(sink.port, rate, workers))
                sink.reset()
                sink_cpu = sink.stats()["cpu_s"]
                usage = measure(newsletter("send", ISSUE, "--list", LIST, "--provider", "smtp", "--yes", config=root / "newsletter.toml"),
                                cwd=root, env=env)
                stats = sink.stats()
                found = SUMMARY.search(usage["stdout"])
                if not found:
                    raise RuntimeError(f"no summary line in the send output:\n{usage['stdout']}\n{usage['stderr']}")
                sent, elapsed = int(found.group(1)), float(found.group(3))
                if stats["count"] != count or sent != count:
                    raise RuntimeError(f"expected {count} delivered, the sink counted {stats['count']}, the sender {sent}:\n{usage['stdout']}")
                span = stats["last"] - stats["first"] if stats["count"] > 1 else 0.0
                sample = {
                    "delivered": stats["count"],
                    "refused_by_sink": stats["refused"],
                    "elapsed_s": elapsed,  # the summary's "in X s": freeze + sending
                    "rate": stats["count"] / elapsed,
                    "sink_span_s": span,  # first to last message accepted by the sink
                    "sink_rate": (stats["count"] - 1) / span if span else 0.0,
                    "wall_s": usage["wall_s"],  # whole command: interpreter, build, freeze, send
                    "cpu_s": usage["utime_s"] + usage["stime_s"],
                    "user_s": usage["utime_s"],
                    "sys_s": usage["stime_s"],
                    "sink_cpu_s": stats["cpu_s"] - sink_cpu,
                    "import_s": info["import_s"],
                }
                samples.append(sample)
                log(f"  run {n + 1}/{runs}: {sample['delivered']} delivered in {elapsed:.1f} s = {sample['rate']:.0f}/s "
                    f"(sink first→last {sample['sink_rate']:.0f}/s), sender CPU {sample['cpu_s']:.1f} s")
    finally:
        sink.close()
    median = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    return {
        "messages": count,
        "runs": runs,
        "configured_rate": rate,
        "workers": workers,
        **median,
        "rate_samples": [round(s["rate"], 1) for s in samples],
        "fraction_of_rate": median["rate"] / rate,
        "sink_fraction_of_rate": median["sink_rate"] / rate,
        "cpu_ms_per_message": median["cpu_s"] * 1000 / count,
        "sink_cpu_ms_per_message": median["sink_cpu_s"] * 1000 / count,
        "target_fraction": 0.9,
        "ratio_to_target": median["rate"] / rate / 0.9,
    }


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--measure" and sys.argv[3] == "--":
        sys.exit(_launcher(sys.argv[2], sys.argv[4:]))
    raise SystemExit("usage: bench_send.py --measure OUT -- COMMAND… (used by scripts/bench.py)")
