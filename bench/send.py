"""`newsletter send` as a child process: the peak memory of a dry run and the throughput
against a real SMTP sink, each on a throwaway project with its SQLite store. Every measured
command runs under the launcher (bench/harness/launcher.py), which reads its rusage.
"""

from __future__ import annotations

import re
import statistics
import tempfile
from pathlib import Path

from bench.harness.children import SMTPSink
from bench.harness.launcher import measure, newsletter
from bench.harness.project import ISSUE, LIST, bench_env, dry_run, make_project

SUMMARY = re.compile(r"(\d+) sent in this run, at most ([\d.]+)/s, in ([\d.]+) s")
DRY_RUN = re.compile(r"dry run: (\d+) messages? to .*?, ([\d.]+) MB in all")


def bench_dry_run(count: int, runs: int, log=print) -> dict:
    env = bench_env()
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-") as tmp:
        # Floor: the same command on a 10-person list (imports, build, store, one pass).
        small = Path(tmp) / "small"
        make_project(small, 10, env)
        floor = measure(dry_run(small / "newsletter.toml"), cwd=small, env=env)

        big = Path(tmp) / "big"
        log(f"  importing {count} subscribers …")
        info = make_project(big, count, env)
        log(f"  import: {info['import_s']:.1f} s")
        samples = []
        for n in range(runs):
            usage = measure(dry_run(big / "newsletter.toml"), cwd=big, env=env)
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


def smtp_toml(port: int, rate: float, workers: int) -> str:
    return (
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 10\n\n'
        f"[send]\nrate = {rate:g}\nthreads = {workers}\nmax_attempts = 8\n"
    )


def bench_smtp(count: int, runs: int, rate: float = 500, workers: int = 4, log=print) -> dict:
    env = bench_env()
    sink = SMTPSink()
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

