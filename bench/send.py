"""`newsletter send` as a child process: the peak memory of a dry run and the throughput
against a real SMTP sink, each on a throwaway project with its SQLite store. Every measured
command runs under the launcher (bench/harness/launcher.py), which reads its rusage.

The SMTP send is configured as a user must for a real one (`[send] provider = "smtp"`, the
organisation's domain in base_url and the From address: bench/harness/project.py) and its
SQL statements are counted in every process of the command (bench/harness/sqlcount.py, an
SQLAlchemy event hook; an executemany counts its parameter sets): "SQL statements per
message" is statements / messages sent, start-up, freeze, send and summary included.

The sink (bench/harness/sink.py) shares the machine's two cores with the sender. As
aiosmtpd comes it read DATA a line at a time: 1.93–2.03 ms of sink CPU a message on a quiet
machine (3,000 bilingual messages, two runs, `--stock-sink`; 2.78–2.81 ms on a busy one),
more than the sender's own 1.4. Reading DATA in one piece (and offering PIPELINING) brought
it to 0.64–0.66 ms (0.72 busy) in runs alternating with those, and the delivered rate from
441–455/s to 492–500/s of 500, so that "≥ 90 % of --rate 500 with the sink on the same two
cores" measures the sender.
`python -m bench.send [--messages N] [--stock-sink]` runs the SMTP measure alone.
"""

from __future__ import annotations

import re
import statistics
import tempfile
from pathlib import Path

from bench.harness.children import SMTPSink
from bench.harness.launcher import measure, newsletter
from bench.harness.project import ISSUE, LIST, bench_env, dry_run, make_project
from bench.harness.sqlcount import sql_env, totals

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
        f'[send]\nprovider = "smtp"\nrate = {rate:g}\nthreads = {workers}\nmax_attempts = 8\n'
    )


def smtp_once(sink: SMTPSink, root: Path, count: int, rate: float, workers: int, env: dict[str, str]) -> dict:
    """One send of `count` messages to the sink from a fresh project at `root`, its SQL
    statements counted (bench/harness/sqlcount.py); the figures of that run."""
    info = make_project(root, count, env, smtp_toml(sink.port, rate, workers))
    sink.reset()
    sink_cpu = sink.stats()["cpu_s"]
    counted = root / "sql"
    usage = measure(newsletter("send", ISSUE, "--list", LIST, "--provider", "smtp", "--yes", config=root / "newsletter.toml"),
                    cwd=root, env=sql_env(env, counted))
    stats = sink.stats()
    found = SUMMARY.search(usage["stdout"])
    if not found:
        raise RuntimeError(f"no summary line in the send output:\n{usage['stdout']}\n{usage['stderr']}")
    sent, elapsed = int(found.group(1)), float(found.group(3))
    if stats["count"] != count or sent != count:
        raise RuntimeError(f"expected {count} delivered, the sink counted {stats['count']}, the sender {sent}:\n{usage['stdout']}")
    span = stats["last"] - stats["first"] if stats["count"] > 1 else 0.0
    sql = totals(counted)
    return {
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
        "cpu_ms_per_message": (usage["utime_s"] + usage["stime_s"]) * 1000 / count,
        "sink_cpu_s": stats["cpu_s"] - sink_cpu,
        "sink_cpu_ms_per_message": (stats["cpu_s"] - sink_cpu) * 1000 / count,
        "sql_statements": sql["statements"],
        "sql_cursor_calls": sql["cursor_calls"],
        "sql_per_message": sql["statements"] / count,
        "sql_cursor_calls_per_message": sql["cursor_calls"] / count,
        "sql_executemany_calls": sql["executemany_calls"],
        "sqlite_traced_per_message": sql["sqlite_traced"] / count,
        "sqlite_transactions_per_message": sql["sqlite_begins"] / count,
        "sql_processes": sql["processes"],
        "newsletter_from": sql["newsletter_from"],
        "import_s": info["import_s"],
    }


def smtp_medians(samples: list[dict], count: int, rate: float, workers: int, stock_sink: bool) -> dict:
    numbers = [key for key, value in samples[0].items() if isinstance(value, (int, float))]
    median = {key: statistics.median(s[key] for s in samples) for key in numbers}
    return {
        "messages": count,
        "runs": len(samples),
        "configured_rate": rate,
        "workers": workers,
        "sink": "aiosmtpd, stock" if stock_sink else "aiosmtpd, DATA in one read, PIPELINING",
        **median,
        "rate_samples": [round(s["rate"], 1) for s in samples],
        "newsletter_from": sorted({f for s in samples for f in s["newsletter_from"]}),
        "fraction_of_rate": median["rate"] / rate,
        "sink_fraction_of_rate": median["sink_rate"] / rate,
        "target_fraction": 0.9,
        "ratio_to_target": median["rate"] / rate / 0.9,
        "target_sql_per_message": 1.0,
    }


def bench_smtp(count: int, runs: int, rate: float = 500, workers: int = 4, log=print, stock_sink: bool = False) -> dict:
    env = bench_env()
    sink = SMTPSink(stock=stock_sink)
    samples = []
    try:
        with tempfile.TemporaryDirectory(prefix="newsletter-bench-") as tmp:
            for n in range(runs):
                sample = smtp_once(sink, Path(tmp) / f"smtp{n}", count, rate, workers, env)
                samples.append(sample)
                log(f"  run {n + 1}/{runs}: {smtp_line(sample)}")
    finally:
        sink.close()
    return smtp_medians(samples, count, rate, workers, stock_sink)


def smtp_line(s: dict) -> str:
    return (f"{s['delivered']} delivered in {s['elapsed_s']:.1f} s = {s['rate']:.0f}/s (sink first→last {s['sink_rate']:.0f}/s), "
            f"sender CPU {s['cpu_s']:.1f} s ({s['cpu_ms_per_message']:.2f} ms/message), sink CPU {s['sink_cpu_ms_per_message']:.2f} "
            f"ms/message, {s['sql_per_message']:.2f} SQL statements/message ({s['sql_cursor_calls']:,} cursor calls)")


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description="SMTP send throughput alone (python -m bench runs it with the rest)")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--stock-sink", action="store_true", help="the sink as aiosmtpd comes: DATA line by line, no PIPELINING")
    args = parser.parse_args()
    print(json.dumps(bench_smtp(args.messages, args.runs, args.rate, stock_sink=args.stock_sink), indent=2))
