"""The send engine's turns: the ledger is asked once per batch, not once per message, and a person
who leaves while their delivery is claimed and waiting for a thread is still skipped.

The engine runs in process with the year-end letter and a real store; the provider is a
recording one defined here (the engine's contract with providers is one small interface),
because the moment under test is inside the provider's call: while one message is being
sent, the person of the next claimed delivery leaves.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from conftest import SECRET, Project
from store_helpers import set_status

from newsletter import domain as d
from newsletter.message.composer import Outgoing
from newsletter.sending.campaign import SendOptions
from newsletter.sending.engine import RECHECK, send_campaign


class Recording:
    """A provider factory whose first send waits for `during_first` to run (in the test's thread)."""

    name = "recording"

    def __init__(self, during_first):
        self.during_first = during_first
        self.sent: list[str] = []
        self.lock = threading.Lock()

    def max_rate(self) -> float | None:
        return None

    def open(self):
        return self

    def send(self, message: Outgoing) -> str:
        with self.lock:
            first = not self.sent
            self.sent.append(message.recipient)
        if first:
            self.during_first()
        return message.message_id

    def close(self) -> None:
        pass


def populated(tmp_path: Path, count: int) -> Project:
    project = Project(tmp_path / "project")
    csv = project.write_subscribers(count)
    result = subprocess.run([sys.executable, "-m", "newsletter", "subscribers", "import", str(csv), "--list", "main",
                             "--config", str(project.config_path)], cwd=project.root, env=project.env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return project


def send(project: Project, factory, threads: int):
    from newsletter.letter.render import build_issue  # noqa: PLC0415 - the build is the test's first step

    build = build_issue(project.issue, project.config_path)
    options = SendOptions(lists=("main",), provider="smtp", rate=1000, threads=threads, max_attempts=3)
    return send_campaign(project.store(), build, options, factory, SECRET.encode())


def test_a_person_who_leaves_while_their_delivery_waits_for_a_thread_is_skipped(tmp_path: Path, secret_env):
    project = populated(tmp_path, 6)
    store = project.store()
    leaver: list[str] = []

    def during_first() -> None:
        # one thread, a window of two: the second delivery is claimed and waiting in the queue
        (campaign,) = store.campaigns.all()
        waiting = [address for _, address, _ in store.ledger.deliveries_in(campaign.id, d.SENDING)]
        assert len(waiting) == 2, waiting
        leaver.append(waiting[1])
        assert set_status(store, store.subscribers.by_email(leaver[0]).id, "unsubscribed")
        time.sleep(RECHECK * 3)  # the coordinator's next look at the waiting deliveries comes meanwhile

    provider = Recording(during_first)
    summary = send(project, provider, threads=1)
    assert leaver and leaver[0] not in provider.sent, provider.sent
    assert len(provider.sent) == 5 and summary.counts[d.SENT] == 5 and summary.counts[d.SKIPPED] == 1, summary.counts
    (campaign,) = store.campaigns.all()
    assert store.ledger.failure_reasons(campaign.id) == [(d.SKIPPED, "the person is unsubscribed", 1)]


def test_the_ledger_is_asked_once_per_batch_not_once_per_message(tmp_path: Path, secret_env):
    from sqlalchemy import event  # noqa: PLC0415

    project = populated(tmp_path, 200)
    provider = Recording(lambda: None)
    store = project.store()
    statements = []

    def count(_conn, _cursor, _statement, parameters, _context, executemany) -> None:
        statements.append(len(parameters) if executemany else 1)

    from newsletter.letter.render import build_issue  # noqa: PLC0415

    build = build_issue(project.issue, project.config_path)
    options = SendOptions(lists=("main",), provider="smtp", rate=100000, threads=4, max_attempts=3)
    event.listen(store.db.engine, "before_cursor_execute", count)
    summary = send_campaign(store, build, options, provider, SECRET.encode())
    event.remove(store.db.engine, "before_cursor_execute", count)
    assert summary.counts[d.SENT] == 200 and len(provider.sent) == 200
    # three statements a turn of about four messages; one a message was 3.8 before batching
    print(f"\n{sum(statements)} statements for 200 messages")
    assert sum(statements) <= 200, f"{sum(statements)} statements for 200 messages"
