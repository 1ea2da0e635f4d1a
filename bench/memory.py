"""Peak memory of one sending process as the list grows (100,000 → 1,000,000).

The lists are set up straight through SQL (bench/harness/bulk.py) in a PostgreSQL database
each (bench/harness/postgres.py), the store several workers share. Measured:

- `newsletter send ISSUE --list main --dry-run`, run under the launcher
  (bench/harness/launcher.py; its `ru_maxrss` is the command's peak RSS), on 10 recipients (the
  floor: interpreter, imports, build), on the smaller and on the larger list;
- optionally, a real campaign on the larger list: `newsletter send --provider ses
  --workers 2` against the SES stub (bench/harness/ses_stub.py), stopped with Ctrl-C
  (SIGINT) once the workers have sent for a while; the peak RSS (VmHWM, sampled from /proc)
  of the `send` process, which freezes the whole list into the ledger, and of each
  `newsletter worker`, and how long the freeze took.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.harness.bulk import fill
from bench.harness.children import SESStub
from bench.harness.launcher import measure, newsletter
from bench.harness.postgres import Postgres
from bench.harness.proc import ProcWatch
from bench.harness.project import ISSUE, LIST, dry_run, write_project
from bench.send import DRY_RUN
from bench.ses import DELAY, aws_env, ses_toml

TARGET_MB = 300  # per process, 1,000,000 recipients


def _dry_run(config: Path, root: Path, env: dict[str, str], count: int) -> dict:
    usage = measure(dry_run(config), cwd=root, env=env, timeout=3600)
    found = DRY_RUN.search(usage["stdout"])
    if not found or int(found.group(1)) != count:
        raise RuntimeError(f"dry run did not compose {count} messages:\n{usage['stdout']}\n{usage['stderr']}")
    return usage


def _worker_run(config: Path, root: Path, env: dict[str, str], stub: SESStub, count: int, send_for: float, log) -> dict:
    """A real campaign on a big list, 2 workers, stopped with SIGINT (as Ctrl-C) after
    `send_for` s of sending. Output goes to files, not pipes: a worker that outlived `send`
    would hold a pipe open."""
    stub.reset()
    command = newsletter("send", ISSUE, "--list", LIST, "--provider", "ses", "--workers", "2", "--threads", "8",
                         "--rate", "100000", "--yes", config=config)
    config_text = str(config)
    out_path, err_path = root / f"send-{count}.out", root / f"send-{count}.err"
    started = time.monotonic()
    hung = False
    with ProcWatch(lambda args: args[1:3] == ["-m", "newsletter"] and config_text in args) as watch, \
            open(out_path, "w") as out, open(err_path, "w") as err:
        # its own process group, so that whatever is left of it can be ended at once
        proc = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=err, start_new_session=True)
        first = None
        deadline = started + 3600
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.25)
            stats = stub.stats()
            if first is None and stats["count"]:
                first = stats["first"]
                log(f"  campaign of {count:,}: the freeze took {first - started:.1f} s; sending for {send_for:.0f} s …")
            if first is not None and time.monotonic() - first >= send_for:
                proc.send_signal(signal.SIGINT)  # as Ctrl-C: `send` passes SIGTERM on to its workers
                break
        stopping = time.monotonic()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            hung = True
        stop_s = time.monotonic() - stopping
        # whatever is left (a worker that did not stop, or `send` waiting for it): this run's
        # process group only
        leftovers = [p["pid"] for p in watch.seen.values() if Path(f"/proc/{p['pid']}").exists()]
        if leftovers or hung:
            hung = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    stats = stub.stats()
    if first is None:
        raise RuntimeError(f"the campaign sent nothing:\n{out_path.read_text()}\n{err_path.read_text()}")
    if stats["duplicates"] or stats["bad"]:
        raise RuntimeError(f"the stub saw duplicates or bad requests: {stats}")
    workers = watch.peaks(lambda args: args[3:4] == ["worker"])
    send = watch.peaks(lambda args: args[3:4] == ["send"])
    return {
        "recipients": count,
        "freeze_s": first - started,
        "sent": stats["count"],
        "sending_s": stats["last"] - stats["first"],
        "rate": (stats["count"] - 1) / (stats["last"] - stats["first"]) if stats["count"] > 1 else 0.0,
        "send_peak_rss_mb": max(send) if send else None,
        "worker_peak_rss_mb": workers,
        "exit_status": proc.returncode,
        "stop_s": stop_s,
        "stop_hung": hung,  # a process still there 60 s after the SIGINT (then killed)
        "leftover_processes": len(leftovers),
    }


def bench_memory(small: int, large: int, runs: int, large_runs: int, worker_run: bool, send_for: float = 5.0, log=print,
                 pg: Postgres | None = None) -> dict:
    """Dry runs on 10, `small` and `large` recipients (medians of `runs` / `large_runs`); with
    `worker_run`, a real campaign stopped after `send_for` s of sending on both lists. `pg`:
    a PostgreSQL server to use (one is started and stopped here otherwise)."""
    own_pg = pg is None
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-mem-") as tmpdir:
        tmp = Path(tmpdir)
        env = aws_env(tmp)
        pg = pg or Postgres()
        stub = SESStub(DELAY) if worker_run else None
        try:
            results: dict[str, dict] = {}
            for count, n_runs in ((10, 1), (small, runs), (large, large_runs)):
                name = f"mem{count}"
                url = pg.create_database(name)
                root = tmp / name
                config = write_project(root, ses_toml(url, stub.url if stub else "http://127.0.0.1:9"))
                log(f"  filling a list of {count:,} through SQL …")
                info = fill(url, count, env)
                samples = []
                for n in range(n_runs):
                    usage = _dry_run(config, root, env, count)
                    samples.append(usage)
                    log(f"  dry run of {count:,}, {n + 1}/{n_runs}: peak RSS {usage['maxrss_mb']:.1f} MB, {usage['wall_s']:.1f} s")
                results[str(count)] = {
                    "recipients": count,
                    "runs": n_runs,
                    "fill_s": info["fill_s"],
                    "peak_rss_mb": statistics.median(u["maxrss_mb"] for u in samples),
                    "peak_rss_mb_samples": [round(u["maxrss_mb"], 1) for u in samples],
                    "wall_s": statistics.median(u["wall_s"] for u in samples),
                    "cpu_s": statistics.median(u["utime_s"] + u["stime_s"] for u in samples),
                    "us_per_message": statistics.median(u["wall_s"] for u in samples) * 1e6 / count,
                }
            worker = {}
            for count in (small, large) if worker_run else ():
                root = tmp / f"mem{count}"
                w = worker[str(count)] = _worker_run(root / "newsletter.toml", root, env, stub, count, send_for, log)
                stopped = "hung: killed after 60 s" if w["stop_hung"] else f"in {w['stop_s']:.1f} s"
                log(f"  campaign of {count:,}: `send` peak RSS {w['send_peak_rss_mb'] or 0:.0f} MB, workers "
                    f"{', '.join(f'{x:.0f}' for x in w['worker_peak_rss_mb'])} MB; {w['sent']} sent at {w['rate']:.0f}/s; "
                    f"stopped {stopped}, exit status {w['exit_status']}")
        finally:
            if stub:
                stub.close()
            if own_pg:
                pg.stop()
    floor = results["10"]["peak_rss_mb"]
    s, l = results[str(small)], results[str(large)]
    growth = (l["peak_rss_mb"] - floor) / max(s["peak_rss_mb"] - floor, 0.1)
    return {
        "store": "postgresql",
        "floor_mb": floor,
        "sizes": results,
        "small": small,
        "large": large,
        # above the floor, how much more the large list needs than the small one; linear
        # growth would be large/small (10 for 100,000 → 1,000,000)
        "growth_above_floor": growth,
        "linear_growth": large / small,
        "target_mb": TARGET_MB,
        "ratio_to_target": l["peak_rss_mb"] / TARGET_MB,
        "worker_runs": worker,
    }


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description="dry-run memory at two sizes (python -m bench runs it with the rest)")
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--send-for", type=float, default=5.0)
    args = parser.parse_args()
    print(json.dumps(bench_memory(args.small, args.large, args.runs, args.runs, args.worker, args.send_for), indent=2))
