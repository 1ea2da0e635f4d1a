"""The code a benchmark measures: this working tree, or a git revision checked out beside it.

A `CodeTree` is a folder holding a `newsletter` package with its templates/, issues/ and
newsletter.toml. While `measuring(tree)` is active, the processes the benchmarks start use
that tree's package: os.environ's PYTHONPATH (which bench_env() copies) is
`<links>:<tree>`, where <links> holds one symlink, `bench` → this repository's bench/, so
that the harness (sink, stub, load generator, launcher, project set-up) is always this
tree's; helper modules started from this repository's root (children.module_command) run
with `python -P` so that the root's own `newsletter` does not come first; and project.py
takes newsletter.toml, templates/ and the year-end issue from the tree.

`checkout(rev, into)` makes a detached `git worktree` of REV and removes it on the way out,
whatever ends the run (an exception, Ctrl-C, or SIGTERM, turned into SystemExit).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.harness import ROOT


@dataclass(frozen=True)
class CodeTree:
    side: str  # "old" or "new"
    label: str  # what the report calls it: a revision, or "working tree"
    root: Path
    links: Path  # holds `bench` → this repository's bench/

    @property
    def pythonpath(self) -> str:
        return os.pathsep.join([str(self.links), str(self.root)])


_active: CodeTree | None = None


def active() -> CodeTree | None:
    return _active


def code_root() -> Path:
    """Where newsletter.toml, templates/ and issues/ come from: the active tree's, else this one's."""
    return _active.root if _active else ROOT


def make_tree(side: str, label: str, root: Path, scratch: Path) -> CodeTree:
    links = scratch / f"links-{side}"
    links.mkdir(parents=True, exist_ok=True)
    if not (links / "bench").exists():
        (links / "bench").symlink_to(ROOT / "bench", target_is_directory=True)
    return CodeTree(side, label, root, links)


@contextmanager
def measuring(tree: CodeTree) -> Iterator[CodeTree]:
    global _active
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = tree.pythonpath
    _active = tree
    try:
        yield tree
    finally:
        _active = None
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def newsletter_file(tree: CodeTree, cwd: Path) -> str:
    """The file `python -m newsletter`'s package comes from, for a process started as the
    measured ones are (from a project folder, with the tree's PYTHONPATH)."""
    env = dict(os.environ, PYTHONPATH=tree.pythonpath)
    result = subprocess.run([sys.executable, "-c", "import newsletter; print(newsletter.__file__)"], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"importing newsletter from {tree.root}: {result.stderr.strip().splitlines()[-1:]}")
    return result.stdout.strip()


def git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.rstrip()


def describe(rev: str) -> tuple[str, str]:
    """(full commit id, its one-line subject) of REV; RuntimeError when git knows no such commit."""
    sha = git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    return sha, git("log", "-1", "--format=%s", sha)


def _sigterm(signum, frame):
    raise SystemExit(128 + signum)


@contextmanager
def checkout(rev: str, into: Path) -> Iterator[Path]:
    """A detached worktree of REV at `into`, removed (and pruned) on the way out."""
    previous = signal.signal(signal.SIGTERM, _sigterm)
    git("worktree", "add", "--detach", "--quiet", str(into), rev)
    try:
        yield into
    finally:
        try:
            git("worktree", "remove", "--force", str(into))
        except RuntimeError:
            git("worktree", "prune")
        signal.signal(signal.SIGTERM, previous)
