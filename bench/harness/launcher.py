"""The launcher every measured `newsletter` command is started by: it runs the command,
waits for it and writes its rusage (peak RSS, CPU) and wall time to a JSON file.

    python -S -m bench.harness.launcher OUT DIR -- COMMAND…   (COMMAND runs in DIR)

A child's ru_maxrss on Linux starts from the peak RSS of the process that spawned it (the
kernel carries the parent's high-water mark over the exec), so a big parent such as the
bench process itself would inflate it; the launcher is a few MB (stdlib only, no site),
far below anything measured. `measure` is the bench's side of it.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT


def launch(out: str, cwd: str, command: list[str]) -> int:
    start = time.perf_counter()
    code = subprocess.call(command, cwd=cwd)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    Path(out).write_text(
        json.dumps(
            {"rc": code, "wall_s": wall, "maxrss_mb": usage.ru_maxrss / 1024, "utime_s": usage.ru_utime, "stime_s": usage.ru_stime,
             "launcher_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        )
    )
    return code


def newsletter(*args: str, config: Path) -> list[str]:
    return [sys.executable, "-m", "newsletter", *args, "--config", str(config)]


def measure(command: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 900) -> dict:
    """Run `command` in `cwd` under the launcher; its rusage (peak RSS, CPU) and wall time, and its output."""
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as handle:
        out = handle.name
    try:
        result = subprocess.run(
            [sys.executable, "-S", "-m", "bench.harness.launcher", out, str(cwd), "--", *command],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
        )
        usage = json.loads(Path(out).read_text() or "{}")
    finally:
        os.unlink(out)
    if result.returncode != 0 or usage.get("rc") != 0:
        raise RuntimeError(f"{' '.join(command)}: exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    usage["stdout"], usage["stderr"] = result.stdout, result.stderr
    return usage


if __name__ == "__main__":
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        raise SystemExit("usage: python -S -m bench.harness.launcher OUT DIR -- COMMAND… (used by bench.harness.launcher.measure)")
    sys.exit(launch(sys.argv[1], sys.argv[2], sys.argv[4:]))
