"""CPU profiles of every thread of the `newsletter` processes a benchmark
starts, without changing them.

`profile_env(env, out_dir)` returns an environment whose PYTHONPATH holds a throwaway
`sitecustomize.py`: every Python process started with it (the `send` command, its
`newsletter worker` children) wraps its main thread and each new thread in a
`cProfile.Profile(timer=time.thread_time)` — CPU time, not wall time, so a thread waiting
on a socket costs nothing (or wall time with `wall=True`, where waits on locks, sockets and
disks show) — and writes the merged profile to out_dir/<pid>.prof at exit.
`summary(out_dir)` merges them and returns the top functions by own CPU time and by
cumulative CPU time, as text. cProfile slows pure-Python code down (about ×1.5–2), so the
shares matter, not the absolute times.
"""

from __future__ import annotations

import io
import os
import pstats
from pathlib import Path

from bench.harness import ROOT

SITECUSTOMIZE = r'''
import atexit, cProfile, os, sys, threading, time

_out = os.environ.get("BENCH_PROFILE_DIR")
if _out and sys.argv and not sys.flags.no_site:
    _profiles = []
    _lock = threading.Lock()

    _timer = time.perf_counter if os.environ.get("BENCH_PROFILE_TIMER") == "wall" else time.thread_time

    def _new():
        profile = cProfile.Profile(timer=_timer)
        with _lock:
            _profiles.append(profile)
        return profile

    # _bootstrap_inner, not run: subclasses (anyio's worker threads) override run
    _inner = threading.Thread._bootstrap_inner

    def _profiled_inner(self):
        profile = _new()
        profile.enable()
        try:
            _inner(self)
        finally:
            profile.disable()

    threading.Thread._bootstrap_inner = _profiled_inner
    _main = _new()
    _main.enable()

    @atexit.register
    def _dump():
        _main.disable()
        import pstats
        with _lock:
            profiles = [p for p in _profiles]
        stats = None
        for profile in profiles:
            try:
                profile.create_stats()
            except Exception:
                continue
            if not profile.stats:
                continue
            if stats is None:
                stats = pstats.Stats(profile)
            else:
                stats.add(profile)
        if stats is not None:
            stats.dump_stats(os.path.join(_out, f"{os.getpid()}.prof"))
'''


def profile_env(env: dict[str, str], out_dir: Path, wall: bool = False) -> dict[str, str]:
    """`wall`: wall-clock time instead of CPU time (then waits show: locks, sockets, fsync)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    site = out_dir / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = dict(env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH", "")]))
    env["BENCH_PROFILE_DIR"] = str(out_dir)
    if wall:
        env["BENCH_PROFILE_TIMER"] = "wall"
    return env


def _short(func: tuple) -> str:
    filename, line, name = func
    for marker in ("site-packages/", "lib/python3"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    else:
        filename = filename.replace(str(ROOT) + "/", "")
    return f"{filename}:{line}({name})" if line else name


def summary(out_dir: Path, top: int = 25, only: list[str] | None = None) -> dict:
    """Merged profiles (of the pids' files in `only` when given): total CPU seconds, and
    the top functions by own time and by cumulative time, each with its share."""
    files = sorted(out_dir.glob("*.prof"))
    if only is not None:
        files = [f for f in files if f.stem in only]
    if not files:
        return {"files": 0, "total_s": 0.0, "own": [], "cumulative": []}
    stats = pstats.Stats(str(files[0]), stream=io.StringIO())
    for f in files[1:]:
        stats.add(str(f))
    total = stats.total_tt
    rows = [(func, cc, nc, tt, ct) for func, (cc, nc, tt, ct, _callers) in stats.stats.items()]
    own = sorted(rows, key=lambda r: r[3], reverse=True)[:top]
    cumulative = sorted(rows, key=lambda r: r[4], reverse=True)[:top]
    return {
        "files": len(files),
        "total_s": total,
        "own": [{"function": _short(f), "calls": nc, "s": tt, "share": tt / total if total else 0} for f, cc, nc, tt, ct in own],
        "cumulative": [{"function": _short(f), "calls": nc, "s": ct, "share": ct / total if total else 0} for f, cc, nc, tt, ct in cumulative],
    }


def as_text(profile: dict, top: int = 15) -> str:
    lines = [f"{profile['files']} processes, {profile['total_s']:.2f} s CPU (under cProfile)"]
    for key, title in (("cumulative", "cumulative"), ("own", "own time")):
        lines.append(f"  top by {title}:")
        for row in profile[key][:top]:
            lines.append(f"    {row['share']:6.1%} {row['s']:7.2f} s {row['calls']:>9} calls  {row['function']}")
    return "\n".join(lines)


def highlights(out_dir: Path, items: list[tuple[str, str, str]], only: list[str] | None = None) -> dict:
    """For each (label, file part, function part), the function whose short name holds both
    parts with the largest cumulative time: its calls, cumulative seconds, ms per call and
    share of all the profiled time."""
    files = sorted(out_dir.glob("*.prof"))
    if only is not None:
        files = [f for f in files if f.stem in only]
    if not files:
        return {"total_s": 0.0, "rows": []}
    stats = pstats.Stats(str(files[0]), stream=io.StringIO())
    for f in files[1:]:
        stats.add(str(f))
    total = stats.total_tt
    named = [(_short(func), nc, ct) for func, (cc, nc, tt, ct, _callers) in stats.stats.items()]
    rows = []
    for label, file_part, name_part in items:
        found = [r for r in named if file_part in r[0] and name_part in r[0]]
        if not found:
            continue
        name, calls, cumulative = max(found, key=lambda r: r[2])
        rows.append({"label": label, "function": name, "calls": calls, "s": cumulative,
                     "ms_per_call": cumulative * 1000 / calls if calls else 0.0, "share": cumulative / total if total else 0.0})
    return {"total_s": total, "files": len(files), "rows": rows}
