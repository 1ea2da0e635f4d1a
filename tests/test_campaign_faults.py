"""Campaigns that survive people and outages, against real servers: an aiosmtpd sink, `serve` on
uvicorn, moto for SES. The send runs as a child process, as the team runs it, with the default
retry settings (only the rate is raised, so that a test takes seconds, not minutes).

- people who unsubscribe, are forgotten or are taken off the list during a send are skipped
  and the send goes on to the end of the list;
- an outage pauses the campaign with nobody marked failed; `send` again finishes it;
- a connection dropped before the server's 354 is a retry, never an uncertain delivery;
- a refusal of one address fails that address only; --retry-failed sends again;
- a second `send` of a running campaign is refused; after kill -9 the next one resumes at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import SECRET, Project
from newsletter import domain as d
from newsletter.keys import TokenSigner
from smtp_sink import SinkHandler, smtp_sink  # noqa: F401 - fixture
from uvicorn_server import running

ISSUE = "issues/2022-12-year-end"
RATE = 200  # messages per second: the only setting raised from its default


def sink_config(port: int) -> str:
    """The SMTP settings of a project sending to the sink; retries and threads as shipped."""
    return f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 10\n\n[send]\nrate = {RATE}\n'


def command(project: Project, *args: str) -> list[str]:
    return [sys.executable, "-m", "newsletter", *args, "--config", str(project.config_path)]


def run(project: Project, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(project, *args), cwd=project.root, env=project.env, capture_output=True, text=True, timeout=timeout
    )


def send_args(*extra: str) -> tuple[str, ...]:
    return ("send", ISSUE, "--list", "main", "--provider", "smtp", "--yes", *extra)


def output(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def populate(project: Project, count: int) -> list[str]:
    csv = project.write_subscribers(count)
    result = run(project, "subscribers", "import", str(csv), "--list", "main")
    assert result.returncode == 0, output(result)
    return [f"person{n:06d}@{'example.org' if n % 3 else 'example.net'}" for n in range(count)]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def counts(project: Project) -> dict[str, int]:
    store = project.store()
    (campaign,) = store.campaigns.all()
    return store.ledger.delivery_counts(campaign.id)


# --- people change while the campaign runs ----------------------------------------------------


def test_people_who_leave_during_a_send_are_skipped_and_the_rest_get_it(tmp_path: Path, secret_env, smtp_sink):
    sink = smtp_sink(keep_raw=False)
    project = Project(tmp_path / "project", extra_config=sink_config(sink.port).replace("rate = 200", "rate = 100"))
    everyone = populate(project, 1000)
    # the last people on the list, so that their change comes before their turn
    unsubscribing, forgotten, removed = everyone[-30:-20], everyone[-15:-12], everyone[-8:-6]
    store = project.store()
    from newsletter.config import load_config
    from newsletter.web.public import create_app

    app = create_app(load_config(project.config_path), store, SECRET.encode())
    acknowledged: dict[str, float] = {}
    with running(app) as base:
        proc = subprocess.Popen(command(project, *send_args()), cwd=project.root, env=project.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        wait_for(lambda: sink.count() >= 100, 60, "the first 100 messages")
        campaign_id = store.campaigns.all()[0].id
        signer = TokenSigner(SECRET.encode())
        for address in unsubscribing:  # through the one-click link, as a reader's mail client does
            token = signer.make(store.subscribers.by_email(address).token_key, campaign_id)
            request = urllib.request.Request(f"{base}/u/{token}", data=b"List-Unsubscribe=One-Click", method="POST")
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
            acknowledged[address] = time.monotonic()
        for address in forgotten:  # what `subscribers forget` and `remove` call, without a process start each
            store.subscribers.forget(address, SECRET.encode())
            acknowledged[address] = time.monotonic()
        for address in removed:
            assert store.subscribers.remove_from_lists(address, "main") == 1
            acknowledged[address] = time.monotonic()
        assert sink.count() < 1000 - 30, "the send finished before the people left: the test proves nothing"
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{stdout}\n{stderr}"

    got = sink.per_recipient()
    late = [m for m in sink.received() for a in m.rcpt_tos if a in acknowledged and m.at > acknowledged[a]]
    assert late == [], f"sent after the person left: {late}"
    stayed = [a for a in everyone if a not in acknowledged]
    assert all(got[a] == 1 for a in stayed), [a for a in stayed if got[a] != 1][:5]
    assert max(got.values()) == 1
    c = counts(project)
    assert c[d.SENT] == len(stayed) and c[d.SKIPPED] == 15 and c[d.PENDING] == c[d.FAILED] == 0, c
    assert "skipped 15" in stdout, stdout


# --- outages pause; nobody fails -----------------------------------------------------------------


@pytest.mark.trials
def test_a_30_second_smtp_outage_pauses_then_send_again_finishes(tmp_path: Path, secret_env, smtp_sink):
    sink = smtp_sink(keep_raw=False)
    project = Project(tmp_path / "project", extra_config=sink_config(sink.port))
    everyone = populate(project, 2000)
    proc = subprocess.Popen(command(project, *send_args()), cwd=project.root, env=project.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for(lambda: sink.count() >= 500, 60, "500 messages")
    sink.configure(down=True)
    outage_started = time.monotonic()
    stdout, stderr = proc.communicate(timeout=60)
    paused_after = time.monotonic() - outage_started
    assert proc.returncode == 1, f"exit {proc.returncode}\n{stdout}\n{stderr}"
    assert "paused" in stderr and "run the same send again to resume" in stderr and "Traceback" not in stderr
    c = counts(project)
    assert c[d.FAILED] == 0 and c[d.UNCERTAIN] == 0 and c[d.PENDING] > 0, c
    assert sink.count() < 2000
    time.sleep(max(0.0, 30 - (time.monotonic() - outage_started)))
    sink.configure(down=False)

    again = run(project, *send_args())
    assert again.returncode == 0, output(again)
    got = sink.per_recipient()
    assert sorted(got) == sorted(everyone) and set(got.values()) == {1}
    c = counts(project)
    assert c[d.SENT] == 2000 and c[d.FAILED] == c[d.UNCERTAIN] == 0, c
    print(f"\nSMTP outage: paused {paused_after:.1f} s after it began; resumed and finished after 30 s")


def test_ses_unreachable_pauses_then_send_again_finishes(tmp_path: Path, secret_env, aws_env, moto_url):
    import boto3
    from conftest import reset_moto
    from smtp_sink import free_port

    reset_moto(moto_url)
    closed = free_port()  # nothing listens there
    ses = '[ses]\nregion = "us-east-1"\nendpoint_url = "{}"\n\n[send]\nrate = 200\n'
    project = Project(tmp_path / "project", extra_config=ses.format(f"http://127.0.0.1:{closed}"))
    populate(project, 40)
    result = run(project, "send", ISSUE, "--list", "main", "--provider", "ses", "--yes")
    assert result.returncode == 1, output(result)
    assert "paused" in result.stderr and "cannot connect" in result.stderr and "Traceback" not in result.stderr
    c = counts(project)
    assert c[d.FAILED] == c[d.UNCERTAIN] == c[d.SENT] == 0 and c[d.PENDING] == 40, c

    boto3.client("sesv2", endpoint_url=moto_url, region_name="us-east-1").create_email_identity(
        EmailIdentity="updates@news.cssrweb.org"
    )
    project.config_path.write_text(
        project.config_path.read_text(encoding="utf-8").replace(f"127.0.0.1:{closed}", moto_url.split("//")[1]),
        encoding="utf-8",
    )
    again = run(project, "send", ISSUE, "--list", "main", "--provider", "ses", "--yes")
    assert again.returncode == 0, output(again)
    with urllib.request.urlopen(f"{moto_url}/moto-api/data.json", timeout=10) as response:
        import json

        sent = json.load(response)["ses"]["RawMessage"]
    assert len(sent) == 40
    c = counts(project)
    assert c[d.SENT] == 40 and c[d.FAILED] == c[d.UNCERTAIN] == 0, c


def test_a_connection_dropped_before_354_is_retried_not_uncertain(tmp_path: Path, secret_env, smtp_sink):
    sink = smtp_sink(keep_raw=False, drop_before_354=0.1, seed=5)
    project = Project(tmp_path / "project", extra_config=sink_config(sink.port))
    everyone = populate(project, 300)
    result = run(project, *send_args())
    assert result.returncode == 0, output(result)
    assert sink.dropped >= 10, f"only {sink.dropped} connections dropped: the fault was not exercised"
    got = sink.per_recipient()
    assert sorted(got) == sorted(everyone) and set(got.values()) == {1}
    c = counts(project)
    assert c[d.UNCERTAIN] == 0 and c[d.FAILED] == 0 and c[d.SENT] == 300, c


# --- one address refused -------------------------------------------------------------------------


def test_refused_addresses_fail_alone_and_retry_failed_sends_them(tmp_path: Path, secret_env, smtp_sink):
    project_dir = tmp_path / "project"
    everyone = [f"person{n:06d}@{'example.org' if n % 3 else 'example.net'}" for n in range(60)]
    refused = everyone[3:50:10]
    sink = smtp_sink(keep_raw=False, refuse_recipients=tuple(refused))
    project = Project(project_dir, extra_config=sink_config(sink.port))
    populate(project, 60)
    result = run(project, *send_args())
    assert result.returncode == 1, output(result)
    assert "5 failed, 0 uncertain" in result.stderr and "--retry-failed" in result.stderr
    store = project.store()
    (campaign,) = store.campaigns.all()
    failed = {address for _, address, _ in store.ledger.deliveries_in(campaign.id, d.FAILED)}
    assert failed == set(refused)
    assert sorted(sink.per_recipient()) == sorted(set(everyone) - set(refused))
    show = run(project, "campaign", "show", str(campaign.id))
    # stored without the address (each reply quoted its own), so the five group as one reason
    assert "failed 5: SMTP RCPT TO refused: 550 5.1.1 <<address>>: Recipient address rejected" in show.stdout, output(show)

    sink.configure(refuse_recipients=set())
    again = run(project, *send_args("--retry-failed"))
    assert again.returncode == 0, output(again)
    got = sink.per_recipient()
    assert sorted(got) == sorted(everyone) and set(got.values()) == {1}


# --- one sender per campaign -------------------------------------------------------------------


@pytest.mark.trials
@pytest.mark.parametrize("second", [(), ("--resend-uncertain",)], ids=["plain", "resend-uncertain"])
def test_a_second_send_of_a_running_campaign_is_refused(tmp_path: Path, secret_env, smtp_sink, second):
    sink = smtp_sink(keep_raw=False)
    project = Project(tmp_path / "project", extra_config=sink_config(sink.port).replace("rate = 200", "rate = 100"))
    everyone = populate(project, 600)
    first = subprocess.Popen(command(project, *send_args()), cwd=project.root, env=project.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for(lambda: sink.count() >= 50, 60, "the first messages")
    refused = run(project, *send_args(*second))
    assert refused.returncode == 1, output(refused)
    assert "being sent by process" in refused.stderr and "Traceback" not in refused.stderr
    wait_for(lambda: sink.count() >= 150, 60, "more messages")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)

    started = time.monotonic()
    resumed = run(project, *send_args())
    assert resumed.returncode in (0, 1), output(resumed)  # 1 when some were in flight at the kill (uncertain)
    assert time.monotonic() - started < 30, "the resume waited for the dead sender"
    got = sink.per_recipient()
    assert max(got.values()) == 1, [a for a, n in got.items() if n > 1]
    c = counts(project)
    assert c[d.SENT] + c[d.UNCERTAIN] == 600 and c[d.PENDING] == 0, c
    assert set(everyone) - set(got) <= {a for _, a, _ in project.store().ledger.deliveries_in(1, d.UNCERTAIN)}


def test_two_sends_started_together_one_refusal_no_traceback(tmp_path: Path, secret_env, smtp_sink):
    sink = smtp_sink(keep_raw=False)
    project = Project(tmp_path / "project", extra_config=sink_config(sink.port))
    populate(project, 600)
    procs = [
        subprocess.Popen(command(project, *send_args()), cwd=project.root, env=project.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    refused = next(err for code, _, err in results if code == 1)
    assert "being sent by process" in refused and "Traceback" not in refused
    assert set(sink.per_recipient().values()) == {1} and len(sink.per_recipient()) == 600
    assert len(project.store().campaigns.all()) == 1
