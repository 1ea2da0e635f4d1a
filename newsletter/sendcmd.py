"""`newsletter send`: the command's flow around the campaign loop (build, confirm, summary)."""

from __future__ import annotations

import signal
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
from newsletter.sending import CampaignStopped, SendOptions, Summary, send_campaign, variant_chooser
from newsletter.store import Store, utcnow
from newsletter.subscribers import normalise_email
from newsletter.tokens import TokenSigner

CONFIRM_ABOVE = 10


class NotConfirmed(NewsletterError):
    exit_code = 1


def run(*, issue_dir: Path, list_name: str, provider: str | None, dry_run: bool, yes: bool, resend_uncertain: bool,
        test_address: str | None, rate: float | None, workers: int | None, config_path: Path | None) -> None:
    build = build_issue(issue_dir, config_path)  # a bad issue fails here, before anything is sent
    config = build.config
    provider = provider or config.send.provider
    problems = []
    if rate is not None and rate <= 0:
        problems.append(Problem("--rate", None, f"must be positive, got {rate}"))
    if workers is not None and workers < 1:
        problems.append(Problem("--workers", None, f"must be at least 1, got {workers}"))
    if problems:
        raise BadInput(problems)
    secret = secret_key()

    if test_address:
        _send_test(build, provider, test_address)
        return

    store = Store.open(config.store_url)
    if dry_run:
        _dry_run(store, build, list_name, secret)
        return

    options = SendOptions(
        list_name=list_name, provider=provider, rate=rate or config.send.rate, workers=workers or config.send.workers,
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

    factory = provider_factory(provider, config, campaign_label=f"{build.issue.slug}-{list_name}")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        summary = send_campaign(store, build, options, factory, secret, progress=TerminalProgress(), stop=stop)
    finally:
        signal.signal(signal.SIGTERM, previous)
    _print_summary(summary, provider, config, build, list_name)
    if summary.stopped:
        raise CampaignStopped(f"campaign {summary.campaign.id} stopped: {summary.stopped}\nFix the cause, then run the same command again to resume.")


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


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
