"""`newsletter send --provider ses --workers N` against a simulated SES.

A stub SES endpoint (bench/harness/ses_stub.py, its own process) answers every SendEmail
after 50 ms; the project reaches it through `[ses] endpoint_url` with dummy credentials.
The store is a real PostgreSQL (bench/harness/postgres.py), a fresh database per run, filled
straight through SQL (bench/harness/bulk.py). No rate cap (`rate = 100000`) and
`--threads 8`: each worker has at most 8 calls in flight, so at most 8 / 0.05 s = 160
messages/s; N workers at most 160·N/s.

Measured per run: the sending phase at the stub (its own receive timestamps: first to last
request, and the 10th to the 90th percentile for the steady state without ramp-up and
tail), the CPU time of the whole sending tree (`send` + its `newsletter worker` children,
RUSAGE_CHILDREN of the launcher, bench/harness/launcher.py), of the stub and of PostgreSQL
(the postmaster and its backends, from /proc), and each worker's peak RSS (VmHWM sampled
from /proc while it runs).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness.bulk import fill
from bench.harness.children import SESStub
from bench.harness.launcher import measure, newsletter
from bench.harness.postgres import Postgres
from bench.harness.proc import ProcWatch, process_cpu_s
from bench.harness.profiling import highlights, profile_env, summary
from bench.harness.project import ISSUE, LIST, bench_env, write_project

DELAY = 0.05
THREADS = 8
# the summary's counts line, alike with one process (`--workers 1`: the `send` process sends)
# and with several (`send` freezes the campaign, its `newsletter worker` children send)
COUNTS = re.compile(r"sent (\d+), failed (\d+), uncertain (\d+), pending (\d+)")
TARGET_RATIO = 3.5  # 4 workers against 1


def aws_env(tmp: Path) -> dict[str, str]:
    """bench_env() with dummy AWS credentials only: nothing from a profile or instance metadata."""
    env = bench_env()
    for name in list(env):
        if name.startswith("AWS_"):
            del env[name]
    env.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=str(tmp / "no-aws-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-credentials"),
    )
    return env


def ses_toml(store_url: str, endpoint: str) -> str:
    return (
        f'[store]\nurl = "{store_url}"\n\n'
        f"[send]\nprovider = \"ses\"\nrate = 100000\nthreads = {THREADS}\nmax_attempts = 6\n\n"
        f'[ses]\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\nconfiguration_set = "newsletter"\n'
        'tags = { campaign = "bench" }\n'
    )


def one_run(pg: Postgres, stub: SESStub, tmp: Path, name: str, workers: int, count: int, env: dict[str, str],
            profile_dir: Path | None = None) -> dict:
    url = pg.create_database(name)
    root = tmp / name
    config = write_project(root, ses_toml(url, stub.url))
    fill(url, count, env)
    command = newsletter("send", ISSUE, "--list", LIST, "--provider", "ses", "--workers", str(workers),
                         "--threads", str(THREADS), "--rate", "100000", "--yes", config=config)
    if profile_dir is not None:
        env = profile_env(env, profile_dir)
    stub.reset()
    stub_cpu, pg_cpu = stub.stats()["cpu_s"], pg.cpu_s()
    config_text = str(config)
    probes = {"stub": lambda: process_cpu_s(stub.proc.pid) or 0.0, "postgres": pg.cpu_s}
    with ProcWatch(lambda args: args[1:3] == ["-m", "newsletter"] and config_text in args, extra=probes) as watch:
        usage = measure(command, cwd=root, env=env, timeout=1800)
    time.sleep(0.3)  # let PostgreSQL reap the backends of the finished run
    stats = stub.stats()
    pg_cpu = pg.cpu_s() - pg_cpu
    found = COUNTS.search(usage["stdout"])
    if not found:
        raise RuntimeError(f"no summary line in the send output:\n{usage['stdout']}\n{usage['stderr']}")
    sent, failed, uncertain, pending = (int(found.group(i)) for i in (1, 2, 3, 4))
    if sent != count or stats["count"] != count or stats["recipients"] != count or stats["duplicates"] or stats["bad"]:
        raise RuntimeError(f"{workers} workers: expected {count} sent once each; the ledger says sent {sent}, failed {failed}, "
                           f"uncertain {uncertain}, pending {pending}; the stub counted {stats}\n{usage['stdout']}\n{usage['stderr']}")
    span = stats["last"] - stats["first"]
    steady = stats["p90"] - stats["p10"]
    send_peaks = watch.peaks(lambda args: args[3:4] == ["send"])
    # with --workers 1 the `send` process is the one worker
    worker_peaks = watch.peaks(lambda args: args[3:4] == ["worker"]) if workers > 1 else send_peaks
    cpu = usage["utime_s"] + usage["stime_s"]
    # the sending phase alone: from the stub's first request to its last
    a, b = stats["first"], stats["last"]
    phase = {name: watch.cpu_between(a, b, name) for name in ("stub", "postgres", "machine_busy", "machine_total")}
    phase["senders"] = watch.cpu_between(a, b)
    return {
        "workers": workers,
        "messages": count,
        "rate": (count - 1) / span,
        "steady_rate": ((count * 9) // 10 - count // 10) / steady if steady else 0.0,
        "span_s": span,
        "wall_s": usage["wall_s"],
        "cpu_s": cpu,
        "user_s": usage["utime_s"],
        "sys_s": usage["stime_s"],
        "cpu_ms_per_message": cpu * 1000 / count,
        "stub_cpu_s": stats["cpu_s"] - stub_cpu,
        "postgres_cpu_s": pg_cpu,
        "postgres_cpu_ms_per_message": pg_cpu * 1000 / count,
        "phase_sender_cpu_s": phase["senders"],
        "phase_sender_cpu_ms_per_message": phase["senders"] * 1000 / count,
        "phase_postgres_cpu_ms_per_message": phase["postgres"] * 1000 / count,
        "phase_stub_cpu_ms_per_message": phase["stub"] * 1000 / count,
        "phase_sender_cores": phase["senders"] / span,
        "phase_postgres_cores": phase["postgres"] / span,
        "phase_stub_cores": phase["stub"] / span,
        # every process of the machine, ours or not, in cores busy (of os.cpu_count())
        "phase_machine_busy_cores": phase["machine_busy"] / span,
        "phase_machine_other_cores": (phase["machine_busy"] - phase["senders"] - phase["postgres"] - phase["stub"]) / span,
        "max_in_flight": stats["max_in_flight"],
        "connections": stats["connections"],
        "worker_peak_rss_mb": max(worker_peaks) if worker_peaks else None,
        "worker_processes_seen": len(worker_peaks),
        "send_peak_rss_mb": max(send_peaks) if send_peaks else None,
        "tree_maxrss_mb": usage["maxrss_mb"],
    }


def bench_ses(counts: dict[int, int], runs: int, log=print, pg: Postgres | None = None) -> dict:
    """`counts`: recipients per worker count, e.g. {1: 2400, 2: 3600, 4: 6000}; `pg`: a
    PostgreSQL server to use (one is started and stopped here otherwise)."""
    samples: dict[int, list[dict]] = {n: [] for n in counts}
    own_pg = pg is None
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-ses-") as tmpdir:
        tmp = Path(tmpdir)
        env = aws_env(tmp)
        pg = pg or Postgres()
        stub = SESStub(DELAY)
        try:
            for run in range(runs):  # interleaved, so that a busy spell on the machine hits every size alike
                for workers, count in counts.items():
                    sample = one_run(pg, stub, tmp, f"ses_w{workers}_r{run}", workers, count, env)
                    samples[workers].append(sample)
                    log(f"  {workers} worker{'s' if workers > 1 else ''}, run {run + 1}/{runs}: {count} messages, "
                        f"{sample['rate']:.0f}/s at the stub (steady {sample['steady_rate']:.0f}/s), "
                        f"sender CPU {sample['cpu_s']:.1f} s, PostgreSQL {sample['postgres_cpu_s']:.1f} s, "
                        f"stub {sample['stub_cpu_s']:.1f} s; while sending: senders {sample['phase_sender_cores']:.2f} cores "
                        f"({sample['phase_sender_cpu_ms_per_message']:.2f} ms/message), machine {sample['phase_machine_busy_cores']:.2f} "
                        f"of {os.cpu_count()} cores busy; worker peak RSS {sample['worker_peak_rss_mb'] or 0:.0f} MB")
        finally:
            stub.close()
            if own_pg:
                pg.stop()
    by_workers = {}
    for workers, items in samples.items():
        keys = [k for k, v in items[0].items() if isinstance(v, (int, float)) and v is not None and all(i[k] is not None for i in items)]
        median = {k: statistics.median(i[k] for i in items) for k in keys}
        median["rate_samples"] = [round(i["rate"], 1) for i in items]
        median["ceiling"] = workers * THREADS / DELAY
        median["fraction_of_ceiling"] = median["rate"] / median["ceiling"]
        by_workers[str(workers)] = median
    one = by_workers[str(min(counts))]
    for w in by_workers.values():
        w["ratio_to_1"] = w["rate"] / one["rate"]
        w["steady_ratio_to_1"] = w["steady_rate"] / one["steady_rate"] if one["steady_rate"] else 0.0
    top = by_workers[str(max(counts))]
    return {
        "runs": runs,
        "threads": THREADS,
        "delay_ms": DELAY * 1000,
        "workers": by_workers,
        "target_ratio": TARGET_RATIO,
        "ratio": top["ratio_to_1"],
        "ratio_to_target": top["ratio_to_1"] / TARGET_RATIO,
    }


PROFILE_ITEMS = [
    ("SendEmail (whole call)", "newsletter/sending/providers/ses.py", "(send)"),
    ("… the JSON body (base64 of the message)", "newsletter/sending/providers/ses_wire.py", "(send_email_body)"),
    ("… SigV4 signing", "newsletter/sending/providers/ses_wire.py", "(sign)"),
    ("… the HTTP exchange (http.client, kept alive)", "newsletter/sending/providers/ses.py", "(exchange)"),
    ("… reading the answer", "newsletter/sending/providers/ses_wire.py", "(message_id)"),
    ("the provider set up (boto3 client, endpoint, credentials)", "newsletter/sending/providers/ses.py", "(lane)"),
    ("GetAccount (boto3)", "newsletter/sending/providers/ses.py", "(max_rate)"),
    ("composing messages", "newsletter/message/composer.py", "(compose)"),
    ("the ledger's turns (results recorded, deliveries claimed)", "newsletter/store/ledger.py", "(turn)"),
    ("heartbeats", "newsletter/sending/engine.py", "(_beat)"),
    ("building the issue (start-up)", "newsletter/letter/render.py", "(build_issue)"),
    ("imports (start-up)", "<frozen importlib._bootstrap>", "(_find_and_load)"),
    ("freezing the campaign (`send`)", "newsletter/store/campaigns.py", "(create)"),
]


def profile_ses(workers: int, count: int, log=print, pg: Postgres | None = None) -> dict:
    """One run under cProfile (CPU time of every thread, bench/harness/profiling.py): where the
    sending processes spend their CPU. Slower than an unprofiled run; for diagnosis."""
    own_pg = pg is None
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-ses-") as tmpdir:
        tmp = Path(tmpdir)
        env = aws_env(tmp)
        pg = pg or Postgres()
        stub = SESStub(DELAY)
        try:
            sample = one_run(pg, stub, tmp, f"ses_profile_{workers}", workers, count, env, profile_dir=tmp / "profiles")
        finally:
            stub.close()
            if own_pg:
                pg.stop()
        log(f"  profiled run, {workers} workers: {sample['rate']:.0f}/s at the stub (cProfile slows it down)")
        found = highlights(tmp / "profiles", PROFILE_ITEMS)
        for row in found["rows"]:
            row["ms_per_message"] = row["s"] * 1000 / count
        return {"workers": workers, "messages": count, "rate": sample["rate"], "highlights": found,
                "profile": summary(tmp / "profiles", top=40)}


if __name__ == "__main__":
    import argparse

    from bench.harness.profiling import as_text

    parser = argparse.ArgumentParser(description="SES send throughput alone (python -m bench runs it with the rest)")
    parser.add_argument("--counts", default="1:2400,2:3600,4:6000")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--profile", type=int, default=0, metavar="WORKERS", help="one profiled run with this many workers")
    args = parser.parse_args()
    counts = {int(w): int(c) for w, c in (item.split(":") for item in args.counts.split(","))}
    if args.profile:
        result = profile_ses(args.profile, counts.get(args.profile, 2400))
        print(as_text(result["profile"], top=30))
        print("  where the CPU went (cumulative, under cProfile):")
        for row in result["highlights"]["rows"]:
            print(f"    {row['share']:6.1%} {row['ms_per_message']:6.3f} ms/message  {row['calls']:>6} calls  {row['label']}")
        raise SystemExit(0)
    print(json.dumps(bench_ses(counts, args.runs), indent=2))
