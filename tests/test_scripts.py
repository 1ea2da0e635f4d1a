"""scripts/setup (which scripts/demo runs first) says what it is doing, one line a step, while
it installs, and nothing when there is nothing to do.

It runs here as it is, in a copy of the project's skeleton, with every program it calls
replaced by a stub on PATH that notes its call and does the least the script checks for:
installing Debian packages, a virtual environment and npm packages cannot happen in a test
(they take minutes and the network). The script itself, its checks and its messages are real.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from conftest import ROOT

# coreutils and the shell the script needs, taken from this machine
REAL = ("bash", "env", "dirname", "cat", "touch", "id", "ls", "mkdir", "chmod")
STUBS = {
    # present or missing on purpose: see each test
    "dpkg": 'echo "dpkg $*" >> "$CALLS"; exit 0',
    "apt-get": 'echo "apt-get $*" >> "$CALLS"',
    "sudo": '"$@"',
    # `python3 -m venv .venv` makes .venv/bin/python, itself a stub that takes `-m pip install …`
    "python3": 'echo "python3 $*" >> "$CALLS"; mkdir -p .venv/bin; printf \'#!/usr/bin/env bash\\necho "venv-python $*" >> "$CALLS"\\n\' > .venv/bin/python; chmod +x .venv/bin/python',
    "npm": 'echo "npm $*" >> "$CALLS"; mkdir -p node_modules',
}
PRESENT = ("chromium", "spamassassin", "caddy", "systemd-analyze", "ip")


def skeleton(tmp_path: Path, *, installed: bool) -> tuple[Path, dict[str, str]]:
    """A project folder with scripts/setup, and a PATH of stubs; `installed`: everything in place."""
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup", root / "scripts" / "setup")
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (root / "tests" / "node").mkdir(parents=True)
    (root / "tests" / "node" / "package-lock.json").write_text("{}")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in REAL:
        found = shutil.which(name)
        assert found, name
        (bin_dir / name).symlink_to(found)
    for name, body in STUBS.items():
        (bin_dir / name).write_text(f"#!/usr/bin/env bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    if installed:
        for name in (*PRESENT, "npm"):
            (bin_dir / name).write_text(f'#!/usr/bin/env bash\necho "{name} $*" >> "$CALLS"; mkdir -p node_modules\n')
            (bin_dir / name).chmod(0o755)
        subprocess.run([str(bin_dir / "python3"), "-m", "venv", ".venv"], cwd=root, check=True,
                       env={"PATH": str(bin_dir), "CALLS": os.devnull})  # fmt: skip
        (root / ".venv" / ".installed").touch()
        (root / "tests" / "node" / "node_modules").mkdir()
    env = {"PATH": str(bin_dir), "CALLS": str(tmp_path / "calls"), "HOME": str(tmp_path)}
    return root, env


def setup(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(root / "scripts" / "setup")], env=env, capture_output=True, text=True, timeout=60)


POSTGRESQL_HERE = bool(glob.glob("/usr/lib/postgresql/*/bin/initdb"))  # the one thing the script looks at itself


def test_setup_says_each_step_while_it_installs(tmp_path: Path):
    root, env = skeleton(tmp_path, installed=False)
    result = setup(root, env)
    assert result.returncode == 0, result.stderr
    missing = "chromium spamassassin caddy systemd iproute2" + ("" if POSTGRESQL_HERE else " postgresql")
    assert result.stdout.splitlines() == [
        f"scripts/setup: installing Debian packages ({missing}) …",
        "scripts/setup: creating the virtual environment in .venv …",
        "scripts/setup: installing Python packages (pip install -e '.[test]'; the log: .venv/install.log) …",
        "scripts/setup: installing Node packages of tests/node (npm ci) …",
    ], result.stdout
    calls = Path(env["CALLS"]).read_text()
    assert "apt-get install" in calls and "python3 -m venv .venv" in calls and "npm ci" in calls, calls
    # run again, what is in place is left alone and not mentioned (the stubs install no Debian package)
    again = setup(root, env)
    assert again.returncode == 0 and again.stdout.splitlines() == [f"scripts/setup: installing Debian packages ({missing}) …"]


def test_setup_is_quiet_when_everything_is_in_place(tmp_path: Path):
    root, env = skeleton(tmp_path, installed=True)
    result = setup(root, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("" if POSTGRESQL_HERE else "scripts/setup: installing Debian packages (postgresql) …\n")
