"""A real `newsletter serve` in its own process, deploy/Caddyfile run by Debian's Caddy in front
of it, and the sign-up form's project, posts and the store's clock: shared by the tests that run them
(test_deploy.py, test_signup.py, test_signup_trials.py, test_signup_limits.py,
test_erasure_and_keys.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
from conftest import ROOT, Project
from smtp_sink import free_port

__all__ = ["Clock", "caddy", "free_port", "post", "serving", "signup_config", "signup_fields", "wait_until"]


def wait_until(check, timeout: float, what: str):
    """`check()`'s first true result, asked every 50 ms; a connection refused counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, httpx.TransportError):
            if result := check():
                return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextlib.contextmanager
def serving(project: Project, log: Path) -> Iterator[tuple[str, int]]:
    """`newsletter serve` in its own process, its log in `log`; (its URL, its port)."""
    port = free_port()
    with log.open("a") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "newsletter", "serve", "--port", str(port), "--config", str(project.config_path)],
            cwd=project.root, env=project.env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, f"serve stopped: {log.read_text()}"
        return urllib.request.urlopen(f"{url}/healthz", timeout=2).status == 200

    try:
        wait_until(healthy, 30, "serve")
        yield url, port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@contextlib.contextmanager
def caddy(tmp_path: Path, port: int) -> Iterator[tuple[int, ssl.SSLContext]]:
    """deploy/Caddyfile for `localhost`, in front of serve's `port`: (its HTTPS port, a TLS context
    that trusts its internal certificate authority: real TLS, verified)."""
    binary = shutil.which("caddy")
    assert binary, "caddy missing: scripts/setup installs Debian's caddy"
    https, http = free_port(), free_port()
    env = {
        **os.environ, "NEWSLETTER_DOMAIN": "localhost", "NEWSLETTER_HTTPS_PORT": str(https),
        "NEWSLETTER_HTTP_PORT": str(http), "NEWSLETTER_PORT": str(port),
        "XDG_DATA_HOME": str(tmp_path / "caddy-data"), "XDG_CONFIG_HOME": str(tmp_path / "caddy-config"),
        "HOME": str(tmp_path),
    }  # fmt: skip
    with (tmp_path / "caddy.log").open("w") as log:
        proc = subprocess.Popen([binary, "run", "--config", str(ROOT / "deploy" / "Caddyfile"), "--adapter", "caddyfile"],
                                env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        root = tmp_path / "caddy-data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        wait_until(root.exists, 30, "Caddy's internal certificate authority")
        context = ssl.create_default_context(cafile=str(root))
        with httpx.Client(verify=context, timeout=5) as probe:
            wait_until(lambda: probe.get(f"https://localhost:{https}/healthz").status_code == 200, 30, "Caddy")
        yield https, context
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --- the sign-up form ---------------------------------------------------------------------------


class Clock:
    """The store's clock (`Store.open(url, now=Clock())`): real time plus whatever the test steps over."""

    def __init__(self):
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


def signup_config(smtp_port: int, more: str = "") -> str:
    """newsletter.toml's lines for a sign-up form whose messages go to the SMTP sink on `smtp_port`
    (`more`: further [signup] lines, or another table after them)."""
    return (
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\ntimeout = 10\n\n'
        f'[signup]\nlist = "partners"\nprovider = "smtp"\n{more}'
    )


def signup_fields(address: str, name: str = "") -> dict[str, str]:
    """The form as an English reader fills it in (the honeypot left empty)."""
    return {"form_language": "en", "email": address, "name": name, "language": "en", "consent": "yes", "website": ""}


def post(client: httpx.Client, url: str, address: str, client_ip: str | None = None, name: str = "") -> httpx.Response:
    """The form posted to `url`, from `client_ip` as a proxy would say (X-Forwarded-For) when given."""
    headers = {"X-Forwarded-For": client_ip} if client_ip else {}
    return client.post(f"{url}/subscribe", data=signup_fields(address, name), headers=headers)
