"""Starting the benchmarks' helper processes: `python -m bench.harness.NAME` with the
repository root as working directory, which is how they find the `bench` package.

- `run_json`: a one-shot helper (project, bulk, loadgen) that prints one JSON line last;
- `LineChild`: a helper server that prints `port N`, then answers one-line commands on
  stdin (`stats` → JSON, `reset`, `quit`); `SMTPSink` and `SESStub` are the two there are.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.harness import ROOT
from bench.harness.trees import active


def module_command(module: str, *args: str) -> list[str]:
    # measuring another code tree (bench/harness/trees.py): -P keeps this root, and its own
    # `newsletter`, off the front of sys.path; PYTHONPATH gives the tree's and this bench
    safe_path = ["-P"] if active() is not None else []
    return [sys.executable, *safe_path, "-m", module, *args]


def run_json(module: str, *args: str, env: dict[str, str], timeout: float = 1800) -> dict:
    result = subprocess.run(module_command(module, *args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)}: exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


class LineChild:
    def __init__(self, module: str, *args: str):
        self.module = module
        self.proc = subprocess.Popen(
            module_command(module, *args), cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("port "):
            self.close()
            raise RuntimeError(f"{module} did not start: {line!r}")
        self.port = int(line.split()[1])

    def ask(self, command: str) -> str:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def stats(self) -> dict:
        return json.loads(self.ask("stats"))

    def reset(self) -> None:
        self.ask("reset")

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class SMTPSink(LineChild):
    """bench/harness/sink.py as a child process; `stock`: aiosmtpd unmodified (DATA line by
    line, no PIPELINING), for comparison."""

    def __init__(self, stock: bool = False):
        super().__init__("bench.harness.sink", *(["--stock"] if stock else []))
        self.stock = stock


class SESStub(LineChild):
    """bench/harness/ses_stub.py as a child process, answering SendEmail after `delay` s."""

    def __init__(self, delay: float):
        super().__init__("bench.harness.ses_stub", "--delay", str(delay))
        self.url = f"http://127.0.0.1:{self.port}"
