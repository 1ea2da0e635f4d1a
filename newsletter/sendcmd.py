"""`newsletter send`: the command's flow around the campaign loop (build, confirm, summary)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import threading
from collections import Counter
from pathlib import Path

import click

from newsletter import schema as s
from newsletter.build import Build, build_issue
from newsletter.compose import Composer, Recipient
from newsletter.errors import BadInput, NewsletterError, Problem
from newsletter.progress import TerminalProgress
from newsletter.providers import SendError, provider_factory
from newsletter.secrets import secret_key
from newsletter.sending import (
    LEASE,
    CampaignStopped,
    SendOptions,
    Summary,
    content_hash,
    prepare_campaign,
    send_campaign,
    variant_chooser,
)
from newsletter.store import Store, utcnow
from newsletter.subscribers import normalise_email
from newsletter.tokens import TokenSigner

CONFIRM_ABOVE = 10


class NotConfirmed(NewsletterError):
    exit_code = 1


def run(*, issue_dir: Path, list_name: str, provider: str | None, dry_run: bool, yes: bool, resend_uncertain: bool,
        test_address: str | None, rate: float | None, threads: int | None, workers: int = 1,
        config_path: Path | None) -> None:
    build = build_issue(issue_dir, config_path)  # a bad issue fails here, before anything is sent
    config = build.config
    provider = provider or config.send.provider
    _check_numbers(rate=rate, threads=threads, workers=workers)
    if workers > 1 and not config.store_url.startswith("postgresql"):
        raise BadInput([Problem("--workers", None, "several workers need PostgreSQL (store.url = \"postgresql://…\"); SQLite allows one")])
    secret = secret_key()

    if test_address:
        _send_test(build, provider, test_address)
        return

    store = Store.open(config.store_url)
    if dry_run:
        _dry_run(store, build, list_name, secret)
        return

    options = SendOptions(
        list_name=list_name, provider=provider, rate=rate or config.send.rate, threads=threads or config.send.threads,
        max_attempts=config.send.max_attempts, resend_uncertain=resend_uncertain,
    )
    list_id = store.list_id(list_name)
    campaign = store.find_campaign(build.issue.slug, list_id) if list_id is not None else None
    if campaign is None and list_id is not None:
        recipients = sum(1 for _ in store.subscribers(list_name, s.ACTIVE))
        if recipients > CONFIRM_ABOVE and not yes:
            question = f"Send {build.issue.slug!r} to {recipients} people on {list_name!r} through {provider}?"
            try:
                confirmed = click.confirm(question)
            except click.Abort:  # no answer (end of input)
                confirmed = False
            if not confirmed:
                raise NotConfirmed(f"nothing sent: answer yes, or pass --yes to send to more than {CONFIRM_ABOVE} people")

    if workers > 1:
        _send_with_workers(store, build, options, secret, workers, config_path)
        return

    factory = provider_factory(provider, config, campaign_label=f"{build.issue.slug}-{list_name}")
    stop = threading.Event()
    with _stop_on_signals(stop):
        summary = send_campaign(store, build, options, factory, secret, progress=TerminalProgress(), stop=stop)
    _print_summary(summary, provider, config, build, list_name)
    if summary.stopped:
        raise CampaignStopped(f"campaign {summary.campaign.id} stopped: {summary.stopped}\nFix the cause, then run the same command again to resume.")


def _check_numbers(*, rate: float | None, threads: int | None, workers: int = 1) -> None:
    problems = []
    if rate is not None and rate <= 0:
        problems.append(Problem("--rate", None, f"must be positive, got {rate}"))
    if threads is not None and threads < 1:
        problems.append(Problem("--threads", None, f"must be at least 1, got {threads}"))
    if workers < 1:
        problems.append(Problem("--workers", None, f"must be at least 1, got {workers}"))
    if problems:
        raise BadInput(problems)


def _send_with_workers(store: Store, build: Build, options: SendOptions, secret: bytes, workers: int, config_path: Path | None) -> None:
    """Freeze the campaign here, then run `newsletter worker` processes on it and wait."""
    campaign, created, skipped = prepare_campaign(store, build, options, secret)
    if options.resend_uncertain:
        store.recover_in_flight(campaign.id, lease=LEASE)
        store.requeue(campaign.id, (s.UNCERTAIN,))
    command = [sys.executable, "-m", "newsletter", "worker", str(campaign.id), "--issue", str(build.issue.path),
               "--provider", options.provider, "--rate", repr(options.rate), "--threads", str(options.threads)]
    if config_path is not None:
        command += ["--config", str(config_path)]
    children = [subprocess.Popen(command, stdout=subprocess.DEVNULL) for _ in range(workers)]
    click.echo(f"campaign {campaign.id}: {workers} workers started (pids {', '.join(str(c.pid) for c in children)})", err=True)
    progress = TerminalProgress()
    counts = store.delivery_counts(campaign.id)
    progress.start(total=sum(counts.values()) - counts[s.SKIPPED], done=counts[s.SENT] + counts[s.FAILED] + counts[s.UNCERTAIN])
    done_before = progress.done
    stop = threading.Event()
    with _stop_on_signals(stop):
        forwarded = False
        while any(child.poll() is None for child in children):
            if stop.is_set() and not forwarded:
                for child in children:
                    if child.poll() is None:
                        child.send_signal(signal.SIGTERM)
                forwarded = True
            time.sleep(0.5)
            counts = store.delivery_counts(campaign.id)
            done = counts[s.SENT] + counts[s.FAILED] + counts[s.UNCERTAIN]
            progress.advance(done - done_before)
            done_before = done
    progress.finish()
    counts = store.delivery_counts(campaign.id)
    failed_children = [child.returncode for child in children if child.returncode != 0]
    if not failed_children and counts[s.PENDING] == 0 and counts[s.SENDING] == 0:
        store.set_campaign_state(campaign.id, s.CAMPAIGN_DONE)
    click.echo(
        f"campaign {campaign.id} ({build.issue.slug} to list {options.list_name!r} through {options.provider}) "
        f"with {workers} workers: sent {counts[s.SENT]}, failed {counts[s.FAILED]}, uncertain {counts[s.UNCERTAIN]}, "
        f"pending {counts[s.PENDING]}, skipped {counts[s.SKIPPED]}"
    )
    for reason, count in sorted(skipped.items()):
        click.echo(f"  not on the ledger: {count} {reason}")
    if failed_children:
        raise CampaignStopped(f"campaign {campaign.id}: {len(failed_children)} worker(s) stopped early; run the same command again to resume")


def run_worker(*, campaign: str, issue_dir: Path | None, provider: str | None, rate: float | None, threads: int | None,
               config_path: Path | None) -> None:
    from newsletter.build import locate_config
    from newsletter.config import load_config

    _check_numbers(rate=rate, threads=threads)
    config = load_config(locate_config(issue_dir or Path.cwd(), config_path))
    if not config.store_url.startswith("postgresql"):
        raise BadInput([Problem("store.url", None, "several workers need PostgreSQL; with SQLite use newsletter send")])
    store = Store.open(config.store_url)
    found = [c for c in store.campaigns() if str(c.id) == campaign or c.slug == campaign]
    if len(found) != 1:
        raise BadInput([Problem("CAMPAIGN", None, f"{campaign!r}: {'no such campaign' if not found else 'several campaigns; give its number'}")])
    target = found[0]
    build = build_issue(issue_dir or config.root / "issues" / target.slug, config_path or config.path)
    list_name = next((name for name, _ in store.list_names() if store.list_id(name) == target.list_id), "?")
    options = SendOptions(
        list_name=list_name, provider=provider or target.provider, rate=rate or config.send.rate,
        threads=threads or config.send.threads, max_attempts=config.send.max_attempts, shared=True,
    )
    if content_hash(build) != target.content_hash:
        raise BadInput([Problem(str(build.issue.path), None, f"this issue is not the one campaign {target.id} sends (its content differs)")])
    factory = provider_factory(options.provider, config, campaign_label=f"{target.slug}-{list_name}")
    stop = threading.Event()
    with _stop_on_signals(stop):
        summary = send_campaign(store, build, options, factory, secret_key(), campaign=target, stop=stop)
    click.echo(f"worker {options.worker_name}: {summary.sent_now} sent")
    if summary.stopped:
        raise CampaignStopped(f"campaign {target.id} stopped: {summary.stopped}")


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event):
    """Ctrl-C or SIGTERM: stop claiming, let the messages in flight finish, record them.

    Setting a flag rather than raising keeps the ledger exact: an exception could land
    between taking a result off the queue and recording it. A second signal exits at once
    (what was in flight is then reported uncertain by the next run).
    """

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        click.echo("stopping: finishing the messages in flight (press Ctrl-C again to quit now)", err=True)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _send_test(build: Build, provider: str, address: str) -> None:
    try:
        to = normalise_email(address)
    except ValueError as exc:
        raise BadInput([Problem("--test", None, f"{address!r}: {exc}")]) from None
    factory = provider_factory(provider, build.config, campaign_label="test")
    composer = Composer(build.variants, build.config, signer=None, campaign_id=0, subject_prefix="[TEST] ")
    sender = factory.open()
    try:
        for name in build.variants:
            message = composer.compose(name, Recipient(to, "", "00" * 16), utcnow())
            try:
                message_id = sender.send(message)
            except SendError as exc:
                raise CampaignStopped(f"test message ({name}) to {to}: {exc}") from exc
            click.echo(f"sent the {name} variant to {to} through {provider} ({message_id})")
    finally:
        sender.close()


def _dry_run(store: Store, build: Build, list_name: str, secret: bytes) -> None:
    """Count who would get which variant, and compose every message, without sending or writing."""
    if store.list_id(list_name) is None:
        known = ", ".join(name for name, _ in store.list_names()) or "none yet"
        raise BadInput([Problem("--list", None, f"no list named {list_name!r} (lists: {known})")])
    choose = variant_chooser(build.config)
    composer = Composer(build.variants, build.config, signer=TokenSigner(secret), campaign_id=0)
    by_variant: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    size = 0
    now = utcnow()
    for sub in store.subscribers(list_name):
        if sub.status != s.ACTIVE:
            skipped[sub.status] += 1
            continue
        variant = choose(sub.language)
        size += len(composer.compose(variant, Recipient(sub.email, sub.name, sub.token_key, sub.id), now).data)
        by_variant[variant] += 1
    total = sum(by_variant.values())
    click.echo(f"dry run: {total} message{'s' if total != 1 else ''} to {list_name!r}, {size / 1024 / 1024:.1f} MB in all; nothing sent")
    for variant, count in sorted(by_variant.items()):
        click.echo(f"  {variant:<10} {count}")
    for reason, count in sorted(skipped.items()):
        click.echo(f"  skipped: {count} {reason}")


def _print_summary(summary: Summary, provider: str, config, build: Build, list_name: str) -> None:
    c = summary.counts
    campaign = summary.campaign
    verb = "started" if summary.created else "resumed"
    if not summary.created and summary.sent_now == 0 and c[s.PENDING] == 0 and not summary.stopped:
        verb = "was already finished; nothing left to send"
    click.echo(
        f"campaign {campaign.id} ({build.issue.slug} to list {list_name!r} through {provider}) {verb}: "
        f"{summary.sent_now} sent in this run, at most {summary.rate:g}/s, in {summary.elapsed:.1f} s"
    )
    click.echo(
        f"  sent {c[s.SENT]}, failed {c[s.FAILED]}, uncertain {c[s.UNCERTAIN]}, pending {c[s.PENDING]}, "
        f"skipped {c[s.SKIPPED]}"
    )
    for reason, count in sorted(summary.skipped_at_freeze.items()):
        click.echo(f"  not on the ledger: {count} {reason}")
    if summary.recovered_uncertain:
        click.echo(f"  {summary.recovered_uncertain} deliveries were in flight when the previous run stopped: now uncertain")
    if summary.requeued_uncertain:
        click.echo(f"  {summary.requeued_uncertain} uncertain deliveries were sent again (--resend-uncertain)")
    for label, rows in (("failed", summary.failed), ("uncertain", summary.uncertain)):
        for delivery_id, address, error in rows[:20]:
            click.echo(f"  {label}: {address or '(forgotten)'}: {error}")
        if len(rows) > 20:
            click.echo(f"  … and {len(rows) - 20} more {label}")
    if summary.uncertain:
        click.echo("  Uncertain messages may have gone out; send them again with --resend-uncertain.")
    if provider == "outbox":
        folder = config.root / config.send.outbox / f"{build.issue.slug}-{list_name}"
        click.echo(f"  messages written to {folder}")
