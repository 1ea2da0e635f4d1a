"""From a clone to a running service: the deploy/ files, `serve` for production, and the
commands that start projects, issues and database upgrades.

A real Caddy (Debian's) runs deploy/Caddyfile on loopback ports with its internal certificate
authority in front of a real `newsletter serve`; systemd-analyze verifies deploy/systemd.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT, SECRET, Project
from serve_process import caddy as caddy_in_front
from serve_process import free_port, serving
from newsletter.cli import cli
from newsletter.keys import TokenSigner

DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
HARDENING = ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "ProtectHome=yes", "CapabilityBoundingSet=")


# --- systemd ------------------------------------------------------------------------------------


def test_systemd_accepts_the_units(tmp_path: Path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: scripts/setup installs Debian's systemd"
    newsletter = Path(sys.executable).with_name("newsletter")
    assert newsletter.exists()
    for unit in sorted((DEPLOY / "systemd").iterdir()):
        # the units name the documented install path; here the package is in this venv
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/newsletter/venv/bin/newsletter", str(newsletter)))
    result = subprocess.run([analyze, "verify", *sorted(str(p) for p in tmp_path.iterdir())],
                            capture_output=True, text=True, timeout=60)
    problems = [line for line in result.stderr.splitlines() if "newsletter" in line and "Failed to" in line or "Unknown" in line]
    assert result.returncode == 0 and not problems, result.stderr


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_each_unit_is_hardened(unit: Path):
    text = unit.read_text()
    assert ("User=" in text or "DynamicUser=yes" in text) and "EnvironmentFile=/etc/newsletter/newsletter.env" in text
    for option in HARDENING:
        assert f"\n{option}\n" in text, f"{unit.name} lacks {option}"
    assert "NEWSLETTER_SECRET_KEY" not in text  # secrets live in the environment file


# --- serve behind Caddy -------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path, secret_env):
    project = Project(tmp_path / "project", extra_config='[send]\nprovider = "outbox"\n')
    runner = CliRunner()
    env = {"NEWSLETTER_SECRET_KEY": SECRET}
    assert runner.invoke(cli, ["subscribers", "import", str(project.write_subscribers(3)), "--config", str(project.config_path)], env=env).exit_code == 0
    log = tmp_path / "serve.log"
    with serving(project, log) as (_url, port):
        yield project, port, log


@pytest.fixture
def caddy(served, tmp_path: Path):
    _project, port, _log = served
    with caddy_in_front(tmp_path, port) as (https, context):

        def fetch(path: str, *, data: bytes | None = None) -> tuple[int, str]:
            request = urllib.request.Request(f"https://localhost:{https}{path}", data=data, method="POST" if data else "GET")
            try:
                with urllib.request.urlopen(request, timeout=10, context=context) as response:
                    return response.status, response.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()

        yield fetch  # Caddy already proxies /healthz: caddy_in_front waited for it


def test_behind_caddy_one_click_unsubscribes_and_only_public_paths_pass(served, caddy):
    project, _port, log = served
    store = project.store()
    person = next(iter(store.subscribers.all()))
    token = TokenSigner(store.keys.data_key({"NEWSLETTER_SECRET_KEY": SECRET})).make(person.token_key, 0)

    status, body = caddy(f"/u/{token}", data=b"List-Unsubscribe=One-Click")
    assert status == 200, body
    assert store.subscribers.by_email(person.email).status == "unsubscribed"
    for path in ("/", "/admin", "/variant/ar.html", "/state", "/.env"):
        assert caddy(path)[0] == 404, path
    assert caddy("/healthz") == (200, "ok\n")

    # the access log shows the one-click, never its token
    time.sleep(0.2)
    lines = log.read_text()
    assert "POST /u/…" in lines and token not in lines, lines

    # the database gone: 503, and the proxy says so too
    database = project.root / "newsletter.sqlite3"
    database.rename(database.with_suffix(".moved"))
    (project.root / "newsletter.sqlite3").mkdir()  # where the file was: now nothing SQLite can open
    assert caddy("/healthz")[0] == 503


# --- serve's own errors and log --------------------------------------------------------------------


def test_a_taken_port_is_one_clear_line_and_exit_2(project):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "newsletter", "serve", "--port", str(port), "--config", str(project.config_path)],
            cwd=project.root, env=project.env, capture_output=True, text=True, timeout=60,
        )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0] and "--port" in lines[0], result.stderr


def test_json_access_log_hides_tokens():
    import asyncio
    import io

    from newsletter.web.serving import AccessLog

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    stream = io.StringIO()
    log = AccessLog(app, json_lines=True, stream=stream)

    async def nothing():
        return {"type": "http.request"}

    async def ignore(message):
        return None

    for path in ("/u/SECRET-TOKEN", "/u/SECRET-TOKEN/resubscribe", "/confirm/SECRET-TOKEN", "/healthz"):
        asyncio.run(log({"type": "http", "method": "POST", "path": path, "query_string": b"k=SECRET"}, nothing, ignore))
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["path"] for e in entries] == ["/u/…", "/u/…/resubscribe", "/confirm/…", "/healthz"]
    assert "SECRET" not in stream.getvalue() and all(e["status"] == 200 and e["time"] for e in entries)


# --- feedback poll: one line, never a traceback -----------------------------------------------------


@pytest.mark.parametrize("fault", ["closed port", "no credentials", "not a queue URL"])
def test_poll_errors_are_one_line(project, fault, monkeypatch):
    env = {**project.env, "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
    env.pop("AWS_PROFILE", None)
    if fault == "no credentials":
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.pop(name, None)
        queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/ses-feedback"
    else:
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        queue = f"http://127.0.0.1:{free_port()}/123456789012/ses-feedback" if fault == "closed port" else "not-a-url"
    result = subprocess.run(
        [sys.executable, "-m", "newsletter", "feedback", "poll", "--queue", queue, "--once", "--wait", "0",
         "--config", str(project.config_path)],
        cwd=project.root, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr


# --- the environment file and README's commands ----------------------------------------------------

README = ROOT / "README.md"
# variables the program's libraries read, named in the example beside the program's own
LIBRARIES = ("PGHOST", "PGUSER", "PGPASSWORD", "PGDATABASE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")


def variables_the_program_reads() -> set[str]:
    """Every NEWSLETTER_… name written in the package: those it reads from the environment."""
    return {name for path in (ROOT / "newsletter").rglob("*.py")
            for name in re.findall(r"\bNEWSLETTER_[A-Z_]+\b", path.read_text(encoding="utf-8"))}  # fmt: skip


def test_the_environment_example_and_readme_name_every_variable_the_program_reads():
    names = variables_the_program_reads()
    assert {"NEWSLETTER_SECRET_KEY", "NEWSLETTER_MAILBOX_PASSWORD", "NEWSLETTER_STORE_URL"} <= names, names
    example = (DEPLOY / "newsletter.env.example").read_text(encoding="utf-8")
    set_or_shown = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.M))
    assert names | set(LIBRARIES) <= set_or_shown, (names | set(LIBRARIES)) - set_or_shown
    readme = README.read_text(encoding="utf-8")
    assert all(f"`{name}`" in readme for name in names), [name for name in names if f"`{name}`" not in readme]
    # the check can fail: a variable nobody wrote down is found
    assert "NEWSLETTER_NOT_DOCUMENTED" not in set_or_shown


def step_3_command() -> str:
    """The shell command of README's deployment step 3, as an administrator pastes it."""
    text = README.read_text(encoding="utf-8")
    step = text[text.index("3. **The database.**"):text.index("4. **The services.**")]
    block = re.search(r"```sh\n(.*?)```", step, re.S)
    assert block, "README's step 3 has no command"
    return "\n".join(line.strip() for line in block.group(1).strip().splitlines())


def test_readmes_step_3_command_loads_the_environment_file_and_runs(tmp_path: Path):
    """The command as written, run by `sh` with the documented paths pointed at a temporary
    server: /etc/newsletter/newsletter.env made from deploy/newsletter.env.example (comments and
    all), the program this venv's. `sudo -u newsletter` is left out: the tests run as one user."""
    command = step_3_command()
    assert command.startswith("sudo -u newsletter sh -c '"), command
    srv = tmp_path / "srv" / "newsletter"
    srv.mkdir(parents=True)
    shutil.copy(ROOT / "newsletter.toml", srv / "newsletter.toml")
    env_file = tmp_path / "newsletter.env"
    example = (DEPLOY / "newsletter.env.example").read_text(encoding="utf-8")
    env_file.write_text(example.replace("NEWSLETTER_SECRET_KEY=\n", f"NEWSLETTER_SECRET_KEY={SECRET}\n")
                        .replace("sqlite:////srv/newsletter/newsletter.sqlite3", f"sqlite:///{srv}/from-env.sqlite3"),
                        encoding="utf-8")  # fmt: skip
    command = (command.removeprefix("sudo -u newsletter ")
               .replace("/etc/newsletter/newsletter.env", str(env_file))
               .replace("/opt/newsletter/venv/bin/newsletter", str(Path(sys.executable).with_name("newsletter")))
               .replace("/srv/newsletter", str(srv)))  # fmt: skip
    clean = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}  # nothing but what the file gives
    result = subprocess.run(["sh", "-c", command], env=clean, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"{srv}/from-env.sqlite3: upgraded from nothing to" in result.stdout, result.stdout
    assert not (srv / "newsletter.sqlite3").exists()  # newsletter.toml's default: the file's URL won
    # and the key came from the file too: the same
    # form runs a command that needs it, which refuses to run without it
    keyed = command.replace("db upgrade", "keys rotate")
    rotated = subprocess.run(["sh", "-c", keyed], env=clean, capture_output=True, text=True, timeout=120)
    assert rotated.returncode == 0 and "already locked with NEWSLETTER_SECRET_KEY" in rotated.stdout, rotated.stderr
    env_file.write_text(env_file.read_text(encoding="utf-8").replace(f"NEWSLETTER_SECRET_KEY={SECRET}", "# no key"))
    without = subprocess.run(["sh", "-c", keyed], env=clean, capture_output=True, text=True, timeout=120)
    assert without.returncode == 2 and "NEWSLETTER_SECRET_KEY" in without.stderr, without.stderr
