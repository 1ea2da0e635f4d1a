"""A sending process killed with SIGKILL mid-campaign, then resumed: nobody gets two.

Each trial sends to 2,000 people through a real SMTP server (aiosmtpd on loopback), kills
the process at a seeded-random moment (after 10-90 % of the list has arrived), and runs
`send` again. What the ledger cannot know after a kill is which of the few deliveries in
flight went out: those, and only those, are reported uncertain and not sent again unless
asked. So after the resume:

- everyone not uncertain received exactly one message;
- everyone uncertain received at most one (zero if the kill came before the server had
  it, one if it came after the server took it but before the ledger recorded it);
- there are at most 2 × workers uncertain (the coordinator never claims more ahead).

`--resend-uncertain` then sends the uncertain ones again: everyone has at least one,
and exactly the uncertain ones the server had already taken have two. That duplicate is
the documented price of the option, which is why it is not the default.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import Project
from smtp_sink import smtp_config, smtp_sink  # noqa: F401 - fixture

pytestmark = pytest.mark.trials

PEOPLE = 2000
WORKERS = 4
ISSUE = "issues/2022-12-year-end"


def cli(project: Project, *args: str) -> list[str]:
    return [sys.executable, "-m", "newsletter", *args, "--config", str(project.config_path)]


def run(project: Project, *args: str, timeout: float = 120, status: int = 0) -> subprocess.CompletedProcess:
    result = subprocess.run(cli(project, *args), cwd=project.root, env=project.env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == status, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


SEND = ("send", ISSUE, "--list", "main", "--provider", "smtp", "--yes")


@pytest.mark.parametrize("trial", [1, 2, 3])
def test_killed_mid_campaign_then_resumed(tmp_path: Path, secret_env, smtp_sink, trial):
    rng = random.Random(20221220 + trial)
    sink = smtp_sink(keep_raw=False)
    project = Project(tmp_path / "project", extra_config=smtp_config(sink.port, rate=1000, workers=WORKERS))
    csv = project.write_subscribers(PEOPLE)
    run(project, "subscribers", "import", str(csv), "--list", "main")
    everyone = {f"person{n:06d}@{'example.org' if n % 3 else 'example.net'}" for n in range(PEOPLE)}

    # start sending, and kill the process once the server has `kill_after` messages
    kill_after = rng.randint(PEOPLE // 10, PEOPLE * 9 // 10)
    log = (tmp_path / "killed.log").open("w")
    proc = subprocess.Popen(cli(project, *SEND), cwd=project.root, env=project.env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    try:
        while sink.count() < kill_after:
            assert proc.poll() is None, f"the send ended (exit {proc.returncode}) before it could be killed:\n" + (tmp_path / "killed.log").read_text()
            assert time.monotonic() < deadline, f"only {sink.count()} of {kill_after} messages after 60 s"
            time.sleep(0.001)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        log.close()
    assert proc.returncode == -signal.SIGKILL
    at_kill = sink.count()
    assert kill_after <= at_kill < PEOPLE

    # resume, without resending what may have gone out
    resumed = run(project, *SEND, status=1)  # some deliveries are uncertain: not all of the work is known done
    store = project.store()
    (campaign,) = store.campaigns.all()
    uncertain = {address for _, address, _ in store.ledger.deliveries_in(campaign.id, "uncertain")}
    counts = store.ledger.delivery_counts(campaign.id)
    assert counts["sent"] + counts["uncertain"] == PEOPLE, counts
    assert counts["failed"] == counts["pending"] == counts["sending"] == counts["skipped"] == 0, counts
    assert f"{len(uncertain)} deliveries were in flight when the previous run stopped" in resumed.stdout
    assert "--resend-uncertain" in resumed.stdout

    got = sink.per_recipient()
    assert set(got) <= everyone
    assert max(got.values()) == 1, f"sent twice: {[a for a, n in got.items() if n > 1][:10]}"
    for address in everyone - uncertain:
        assert got[address] == 1, f"{address}: {got[address]} messages, and the ledger says it is certain"
    received_uncertain = sum(got[address] for address in uncertain)
    # a kill in the middle of a run always leaves something claimed, but never more than the window
    assert 1 <= len(uncertain) <= 2 * WORKERS, uncertain
    print(f"\ntrial {trial}: killed after {at_kill} of {PEOPLE} received; "
          f"{len(uncertain)} uncertain, of which the server had received {received_uncertain}")

    # a further plain run changes nothing
    again = run(project, *SEND, status=1)
    assert "0 sent in this run" in again.stdout
    assert sink.per_recipient() == got

    # --resend-uncertain: the uncertain ones get one more, nobody else does
    run(project, *SEND, "--resend-uncertain")
    after = sink.per_recipient()
    assert set(after) == everyone
    for address in everyone:
        expected = got[address] + (1 if address in uncertain else 0)
        assert after[address] == expected, f"{address}: {after[address]} messages, expected {expected}"
        assert 1 <= after[address] <= 2
    assert Counter(after.values())[2] == received_uncertain
    counts = store.ledger.delivery_counts(campaign.id)
    assert counts["sent"] == PEOPLE and counts["uncertain"] == 0, counts
    store.close()
