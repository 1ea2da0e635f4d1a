"""What /proc tells about other processes (Linux), stdlib only.

- `ProcWatch`: samples, while a benchmark runs, the processes whose command line matches,
  and keeps each one's peak RSS (VmHWM, the kernel's own high-water mark, so sampling every
  0.1 s misses nothing but the last moments of a process) and command line;
- `tree_cpu_s(pid)`: CPU time (user + sys) of a process, of its children already reaped
  and of those still alive — for a server such as PostgreSQL, whose backends come and go;
- `postmaster_pid(data_dir)`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    return [pid, text[text.index("(") + 1 : text.rindex(")")], *text[text.rindex(")") + 2 :].split()]


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")[:-1]
    except OSError:
        return []


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM of a live process, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def tree_cpu_s(pid: int) -> float:
    """utime + stime + cutime + cstime of `pid`, plus utime + stime of its live children."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    total = sum(int(fields[i]) for i in (13, 14, 15, 16))
    for child in pids():
        f = _stat(child)
        if f is not None and int(f[3]) == pid:
            total += int(f[13]) + int(f[14])
    return total / TICK


def process_cpu_s(pid: int) -> float | None:
    """utime + stime of a live process (its own threads, not its children)."""
    fields = _stat(pid)
    return None if fields is None else (int(fields[13]) + int(fields[14])) / TICK


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / TICK, total / TICK


def postmaster_pid(data_dir: Path) -> int:
    return int((Path(data_dir) / "postmaster.pid").read_text().splitlines()[0])


class ProcWatch:
    """Peak RSS of every process whose command line `match`es, sampled in a thread, with
    CPU time series (time.monotonic(), cumulative CPU seconds) of those processes, of the
    `extra` probes (name → function returning cumulative CPU seconds, e.g. a server's tree)
    and of the whole machine ("machine_busy"), so that the CPU spent within a window (the
    sending phase, say) can be told apart from start-up."""

    def __init__(self, match: Callable[[list[str]], bool], interval: float = 0.1,
                 extra: dict[str, Callable[[], float]] | None = None):
        self.match = match
        self.interval = interval
        self.extra = extra or {}
        self.seen: dict[int, dict] = {}
        self.series: dict[str, list[tuple[float, float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="procwatch", daemon=True)

    def __enter__(self) -> ProcWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            for pid in pids():
                if pid == me:
                    continue
                known = self.seen.get(pid)
                if known is None:
                    args = cmdline(pid)
                    if not args or not self.match(args):
                        continue
                    known = self.seen[pid] = {"pid": pid, "cmdline": args, "peak_rss_mb": 0.0}
                rss = peak_rss_mb(pid)
                if rss is not None:
                    known["peak_rss_mb"] = max(known["peak_rss_mb"], rss)
                cpu = process_cpu_s(pid)
                if cpu is not None:
                    self.series.setdefault(f"pid:{pid}", []).append((time.monotonic(), cpu))
            now = time.monotonic()
            for name, probe in self.extra.items():
                self.series.setdefault(name, []).append((now, probe()))
            busy, total = machine_cpu_s()
            self.series.setdefault("machine_busy", []).append((now, busy))
            self.series.setdefault("machine_total", []).append((now, total))
            self._stop.wait(self.interval)

    @staticmethod
    def _at(series: list[tuple[float, float]], t: float) -> float:
        """The cumulative value at time t, interpolated; 0 before a process was first seen
        (it had not started, or had only just), its last value after it ended."""
        if not series or t <= series[0][0]:
            return 0.0 if not series or t < series[0][0] else series[0][1]
        for (t0, v0), (t1, v1) in zip(series, series[1:]):
            if t0 <= t <= t1:
                return v0 + (v1 - v0) * ((t - t0) / (t1 - t0) if t1 > t0 else 1.0)
        return series[-1][1]

    def cpu_between(self, start: float, end: float, name: str | None = None) -> float:
        """CPU seconds spent between two time.monotonic() instants: by one series (`name`),
        or by all the matched processes together."""
        names = [name] if name else [n for n in self.series if n.startswith("pid:")]
        return sum(self._at(self.series[n], end) - self._at(self.series[n], start) for n in names if n in self.series)

    def peaks(self, predicate: Callable[[list[str]], bool] = lambda args: True) -> list[float]:
        return [p["peak_rss_mb"] for p in self.seen.values() if predicate(p["cmdline"]) and p["peak_rss_mb"] > 0]

