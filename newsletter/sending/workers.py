"""Several sending processes on one campaign, coordinated through PostgreSQL: `send --workers N`
opens the campaign, starts N `newsletter worker` processes that run the engine on it (shared),
and follows them; `newsletter worker` joins from any machine."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from newsletter import domain as d
from newsletter.config import load_config, locate_config
from newsletter.errors import BadInput
from newsletter.letter.render import build_issue
from newsletter.sending.campaign import (
    Ready,
    SendOptions,
    SendRequest,
    Summary,
    begin,
    check_numbers,
    conclude,
    find,
    lock_key,
    open_campaign,
    prepare,
)
from newsletter.sending.engine import campaign_label, provider_factory, send_campaign
from newsletter.sending.pacing import Progress
from newsletter.store import Store
from newsletter.store.campaigns import Recipients

POLL = 0.5  # seconds between two looks at the children and the ledger


def send_with_workers(
    request: SendRequest,
    confirm: Callable[[str], bool],
    progress: Progress,
    stop: threading.Event,
    started: Callable[[int, list[int]], None],
) -> Summary:
    """Open the campaign here, then run `newsletter worker` processes on it and wait.

    `stop` set (by a signal) is passed on to the children as SIGTERM."""
    began = time.monotonic()
    ready = prepare(build_issue(request.issue_dir, request.config_path), request)
    with ready.store.ledger.sender_lock(ready.lock_key):
        opened = open_campaign(ready, confirm, yes=request.yes)
    store, campaign_id = ready.store, opened[0].id
    summary = begin(store, opened, ready.options)
    summary.rate, summary.workers = ready.options.rate, request.workers
    sent_before = store.ledger.delivery_counts(campaign_id)[d.SENT]
    children = [
        subprocess.Popen(_worker_command(ready, campaign_id, request.config_path), stdout=subprocess.DEVNULL)
        for _ in range(request.workers)
    ]
    started(campaign_id, [child.pid for child in children])
    _follow(store, campaign_id, children, progress, stop)
    summary.stopped_early = sum(1 for child in children if child.returncode != 0)
    conclude(store, summary, may_finish=not summary.stopped_early)
    summary.sent_now = summary.counts[d.SENT] - sent_before
    summary.elapsed = time.monotonic() - began
    return summary


def _worker_command(ready: Ready, campaign_id: int, config_path: Path | None) -> list[str]:
    options = ready.options
    command = [sys.executable, "-m", "newsletter", "worker", str(campaign_id), "--issue", str(ready.build.issue.path)]
    command += ["--provider", options.provider, "--rate", repr(options.rate), "--threads", str(options.threads)]
    return command + (["--config", str(config_path)] if config_path is not None else [])


def _follow(
    store: Store, campaign_id: int, children: list[subprocess.Popen], progress: Progress, stop: threading.Event
) -> None:
    """Show the campaign's progress until every child has exited; a stop becomes their SIGTERM."""
    counts = store.ledger.delivery_counts(campaign_id)
    done_before = _done(counts)
    progress.start(total=sum(counts.values()) - counts[d.SKIPPED], done=done_before)
    forwarded = False
    while any(child.poll() is None for child in children):
        if stop.is_set() and not forwarded:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            forwarded = True
        time.sleep(POLL)
        done = _done(store.ledger.delivery_counts(campaign_id))
        progress.advance(done - done_before)
        done_before = done
    progress.finish()


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
) -> Summary:
    """`newsletter worker`: help send a campaign already started, sharing its rate."""
    check_numbers(rate=rate, threads=threads)
    config = load_config(locate_config(issue_dir or Path.cwd(), config_path))
    if not config.store_url.startswith("postgresql"):
        raise BadInput.single("store.url", "several workers need PostgreSQL; with SQLite use newsletter send")
    store = Store.open(config.store_url)
    target = find(store, campaign)
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
    factory = provider_factory(options.provider, config, campaign_label=campaign_label(target.slug, target.lists))
    with store.ledger.sender_lock(lock_key(target.slug, target.lists, target.rehearsal), shared=True):
        opened = (target, False, Recipients())
        summary = send_campaign(store, build, options, factory, store.keys.data_key(), opened, stop=stop)
    summary.worker = options.worker_name
    return summary
