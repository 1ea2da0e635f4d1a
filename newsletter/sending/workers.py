"""Several sending processes on one campaign, coordinated through PostgreSQL: `send --workers N`
starts N `newsletter worker` processes here and follows them; `newsletter worker` joins from
any machine."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from newsletter import domain as d
from newsletter.config import load_config, locate_config
from newsletter.errors import BadInput
from newsletter.letter.build import build_issue
from newsletter.sending.campaign import finish_if_complete, open_campaign, send_campaign
from newsletter.sending.options import (
    LEASE,
    CampaignNotFound,
    CampaignStopped,
    SendOptions,
    SendRequest,
    Summary,
    check_numbers,
)
from newsletter.sending.preflight import lock_key, prepare
from newsletter.sending.progress import Progress
from newsletter.sending.providers import provider_factory
from newsletter.store import Store
from newsletter.store.campaigns import Recipients

POLL = 0.5  # seconds between two looks at the children and the ledger


@dataclass
class WorkersOutcome:
    campaign_id: int
    slug: str
    list_name: str
    provider: str
    workers: int
    pids: list[int]
    counts: dict[str, int]
    skipped_at_freeze: dict[str, int] = field(default_factory=dict)
    stopped_early: int = 0  # children that exited with an error

    def problem(self) -> CampaignStopped | None:
        """Exit status 1 unless every delivery was sent or skipped for a stated reason."""
        if self.stopped_early:
            return CampaignStopped(
                f"campaign {self.campaign_id}: {self.stopped_early} worker(s) stopped early (paused); "
                "run the same command again to resume"
            )
        failed, uncertain = self.counts[d.FAILED], self.counts[d.UNCERTAIN]
        if failed or uncertain:
            return CampaignStopped(
                f"campaign {self.campaign_id}: {failed} failed, {uncertain} uncertain; "
                f"`newsletter campaign show {self.campaign_id}` lists why"
            )
        return None


def send_with_workers(
    request: SendRequest,
    confirm: Callable[[str], bool],
    progress: Progress,
    stop: threading.Event,
    started: Callable[[int, list[int]], None],
) -> WorkersOutcome:
    """Open the campaign here, then run `newsletter worker` processes on it and wait.

    `stop` set (by a signal) is passed on to the children as SIGTERM."""
    ready = prepare(build_issue(request.issue_dir, request.config_path), request)
    build, store, options = ready.build, ready.store, ready.options
    with store.sender_lock(ready.lock_key):
        campaign, _created, added = open_campaign(ready, confirm, yes=request.yes)
    for wanted, state in ((options.resend_uncertain, d.UNCERTAIN), (options.retry_failed, d.FAILED)):
        if wanted:
            store.recover_in_flight(campaign.id, lease=LEASE)
            store.requeue(campaign.id, (state,))
    command = [
        sys.executable,
        "-m",
        "newsletter",
        "worker",
        str(campaign.id),
        "--issue",
        str(build.issue.path),
        "--provider",
        options.provider,
        "--rate",
        repr(options.rate),
        "--threads",
        str(options.threads),
    ]
    if request.config_path is not None:
        command += ["--config", str(request.config_path)]
    children = [subprocess.Popen(command, stdout=subprocess.DEVNULL) for _ in range(request.workers)]
    started(campaign.id, [child.pid for child in children])
    counts = store.delivery_counts(campaign.id)
    progress.start(total=sum(counts.values()) - counts[d.SKIPPED], done=_done(counts))
    done_before = _done(counts)
    forwarded = False
    while any(child.poll() is None for child in children):
        if stop.is_set() and not forwarded:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            forwarded = True
        time.sleep(POLL)
        done = _done(store.delivery_counts(campaign.id))
        progress.advance(done - done_before)
        done_before = done
    progress.finish()
    failed_children = [child.returncode for child in children if child.returncode != 0]
    if not failed_children:
        finish_if_complete(store, campaign.id)
    pids = [child.pid for child in children]
    counts = store.delivery_counts(campaign.id)
    return WorkersOutcome(
        campaign.id,
        build.issue.slug,
        options.list_name,
        options.provider,
        request.workers,
        pids,
        counts,
        added.skipped,
        len(failed_children),
    )


def _done(counts: dict[str, int]) -> int:
    return sum(counts[state] for state in d.FINISHED_STATES)


def run_worker(
    *,
    campaign: str,
    issue_dir: Path | None,
    provider: str | None,
    rate: float | None,
    threads: int | None,
    config_path: Path | None,
    stop: threading.Event,
) -> tuple[SendOptions, Summary]:
    """`newsletter worker`: help send a campaign already started, sharing its rate."""
    check_numbers(rate=rate, threads=threads)
    config = load_config(locate_config(issue_dir or Path.cwd(), config_path))
    if not config.store_url.startswith("postgresql"):
        raise BadInput.single("store.url", "several workers need PostgreSQL; with SQLite use newsletter send")
    store = Store.open(config.store_url)
    found = store.find_campaigns(campaign)
    if len(found) != 1:
        raise CampaignNotFound(campaign, len(found))
    target = found[0]
    build = build_issue(issue_dir or config.root / "issues" / target.slug, config_path or config.path)
    if build.content_hash() != target.content_hash:
        message = f"this issue is not the one campaign {target.id} sends (its content differs)"
        raise BadInput.single(str(build.issue.path), message)
    options = SendOptions(
        lists=target.lists,
        provider=provider or target.provider,
        rate=rate or config.send.rate,
        threads=threads or config.send.threads,
        max_attempts=config.send.max_attempts,
        shared=True,
    )
    factory = provider_factory(options.provider, config, campaign_label=f"{target.slug}-{'-'.join(target.lists)}")
    with store.sender_lock(lock_key(target.slug, target.lists, target.rehearsal), shared=True):
        opened = (target, False, Recipients())
        return options, send_campaign(store, build, options, factory, store.secret_key(), opened, stop=stop)
