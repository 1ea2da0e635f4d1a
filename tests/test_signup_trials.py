"""Trials of the sign-up form against real processes, each a few seconds or timing-sensitive:
`newsletter serve` (one, or two on one SQLite or PostgreSQL store) behind deploy/Caddyfile run
by Debian's Caddy on loopback, clients sending from IPv6 addresses the test gives the loopback
interface (and takes away after, whatever happens), an aiosmtpd sink as everybody's mailbox.
How long the form takes to answer a suppressed, an active and a new address is a benchmark
(bench/signup.py), not a test: timed assertions fail under load.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from conftest import Project
from serve_process import caddy, post, serving, signup_config, signup_fields, wait_until
from smtp_sink import smtp_sink  # noqa: F401 - fixture

from newsletter.cli import cli
from newsletter.web.limits import mailbox_of

pytestmark = pytest.mark.trials


def project_for(tmp_path: Path, sink_port: int, store_url: str | None = None) -> Project:
    store = f'\n[store]\nurl = "{store_url}"\n' if store_url and not store_url.startswith("sqlite") else ""
    return Project(tmp_path / "p", extra_config=signup_config(sink_port, store))


def received_by(sink, count: int, timeout: float = 15) -> list:
    wait_until(lambda: sink.count() >= count, timeout, f"{count} messages")
    return sink.received()


@pytest.fixture
def loopback():
    """`loopback(addresses)` gives the loopback interface those IPv6 addresses (`ip -6 addr add`,
    as root); each is taken away again after the test, however it ended."""
    if not shutil.which("ip"):
        pytest.fail("the `ip` command is missing (Debian's iproute2)", pytrace=False)
    added: list[str] = []

    def give(addresses: list[str]) -> None:
        for address in addresses:
            result = subprocess.run(["ip", "-6", "addr", "add", f"{address}/128", "dev", "lo", "nodad"],
                                    capture_output=True, text=True)
            if result.returncode != 0:
                pytest.fail(f"cannot give lo {address}: {result.stderr.strip()} (needs root with CAP_NET_ADMIN)",
                            pytrace=False)
            added.append(address)
        # a fresh process can send from them: the kernel has them
        probe = f"import socket; s = socket.socket(socket.AF_INET6); s.bind(({addresses[-1]!r}, 0)); print('ok')"
        assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout == "ok\n"

    try:
        yield give
    finally:
        for address in added:
            subprocess.run(["ip", "-6", "addr", "del", f"{address}/128", "dev", "lo"], capture_output=True)


# --- a flood on one mailbox from one IPv6 /64, through Caddy -----------------------------------------


def test_behind_caddy_a_flood_from_one_ipv6_64_reaches_the_victim_at_most_three_times(
    tmp_path, secret_env, smtp_sink, loopback  # noqa: F811 - the fixture
):
    flood = [f"2001:db8:1::{n:x}" for n in range(1, 71)]  # 70 addresses of one /64
    later = [f"2001:db8:3::{n:x}" for n in range(1, 11)]  # the same robot, from another /64
    elsewhere = "2001:db8:2::1"  # someone else
    loopback([*flood, *later, elsewhere])
    sink = smtp_sink()
    project = project_for(tmp_path, sink.port)
    log = tmp_path / "serve.log"
    with serving(project, log) as (_url, port), caddy(tmp_path, port) as (https, context):

        def post_from(source: str, address: str, headers: dict[str, str] | None = None) -> httpx.Response:
            # to Caddy on ::1 (localhost is 127.0.0.1 only here), as `localhost` in TLS and HTTP
            transport = httpx.HTTPTransport(local_address=source, verify=context)
            with httpx.Client(transport=transport, timeout=30) as client:
                return client.post(f"https://[::1]:{https}/subscribe", data=signup_fields(address),
                                   headers={"Host": f"localhost:{https}", **(headers or {})},
                                   extensions={"sni_hostname": "localhost"})

        started = time.monotonic()
        # each post with a forged X-Forwarded-For: Caddy passes on the address it saw
        codes = [post_from(source, f"victim+{n}@example.org", {"X-Forwarded-For": f"198.51.100.{n}"}).status_code
                 for n, source in enumerate(flood, 1)]
        codes += [post_from(source, f"victim+{n}@example.org").status_code for n, source in enumerate(later, 71)]
        flood_seconds = time.monotonic() - started
        time.sleep(1)  # anything more for the victim would be here by now
        victim = [m for m in sink.received() if mailbox_of(m.rcpt_tos[0]) == "victim@example.org"]
        asked = time.monotonic()
        answer = post_from(elsewhere, "friend@example.org")
        friend = received_by(sink, len(victim) + 1)[-1]
        answered_in = time.monotonic() - asked
    print(f"80 posts for victim+N@example.org in {flood_seconds:.1f} s: {codes[:70].count(200)} of the first /64's 70 "
          f"answered 200, {codes.count(429)} answered 429, the other /64's 10 answered {set(codes[70:])}; "
          f"{len(victim)} messages reached the victim; another network's sign-up: {answer.status_code}, "
          f"its message in {answered_in:.2f} s")
    assert len(victim) <= 3
    assert codes[:70] == [200] * 10 + [429] * 60  # one client, however many addresses and whatever it claims
    assert codes[70:] == [200] * 10  # another client: answered as always, and nothing sent (the mailbox had its 3)
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert friend.rcpt_tos == ("friend@example.org",)
    served = log.read_text()
    assert "2001:db8" not in served and "victim" not in served and "friend" not in served


# --- two serve processes, one store ------------------------------------------------------------------------


def test_two_serve_processes_share_the_limits(tmp_path, secret_env, smtp_sink, store_url):  # noqa: F811
    sink = smtp_sink()
    project = project_for(tmp_path, sink.port, store_url)
    with (serving(project, tmp_path / "one.log") as (one, _), serving(project, tmp_path / "two.log") as (two, _),
          httpx.Client(timeout=30) as client):
        # one client's posts, alternating between the two processes
        codes = [post(client, (one, two)[n % 2], f"p{n}@d{n}.example", f"203.0.113.{n}").status_code for n in range(14)]
        # one mailbox from eight networks, alternating
        for n in range(8):
            assert post(client, (one, two)[n % 2], f"victim+{n}@example.org", f"198.51.{n}.1").status_code == 200
        time.sleep(1)
        messages = received_by(sink, 13)
    print(f"{store_url.split(':')[0]}: one client through two processes: {codes}; "
          f"the victim got {sum(mailbox_of(m.rcpt_tos[0]) == 'victim@example.org' for m in messages)} of 8")
    assert codes == [200] * 10 + [429] * 4
    assert sum(mailbox_of(m.rcpt_tos[0]) == "victim@example.org" for m in messages) == 3 and len(messages) == 13


# --- what serve's log keeps --------------------------------------------------------------------------------


def test_after_a_refusal_and_forget_serves_log_holds_nothing_of_the_person(tmp_path, secret_env, smtp_sink):  # noqa: F811
    reply = "550 5.7.1 <jana.haddad@example.org>: message for Jana Haddad (user jana.haddad) refused"
    sink = smtp_sink(refuse_fraction=1.0, refuse_reply=reply)
    project = project_for(tmp_path, sink.port)
    log = tmp_path / "serve.log"
    with serving(project, log) as (url, _), httpx.Client(timeout=30) as client:
        assert post(client, url, "Jana.Haddad@example.org", "192.0.2.1", name="Jana Haddad").status_code == 200
        wait_until(lambda: sink.refused == 1, 10, "the refusal")
        wait_until(lambda: "could not be sent" in log.read_text(), 10, "the log line")
        forgotten = CliRunner().invoke(cli, ["subscribers", "forget", "jana.haddad@example.org",
                                             "--config", str(project.config_path)], env=project.env)
        assert forgotten.exit_code == 0, forgotten.output
    text = log.read_text()
    print([line for line in text.splitlines() if "signup" in line])
    assert "550 5.7.1" in text
    assert "jana" not in text.lower() and "haddad" not in text.lower()
