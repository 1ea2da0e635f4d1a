"""`newsletter send` and `newsletter worker`."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsletter import domain as d
from newsletter.cli.group import cli, config_option, echo_err, stop_on_signals
from newsletter.config import delivery as config_delivery

if TYPE_CHECKING:
    from newsletter.sending.campaign import SendRequest, Summary
    from newsletter.sending.trial import DryRun

PROVIDERS = click.Choice(list(config_delivery.PROVIDERS))
STOPPING = "stopping: finishing the messages in flight (press Ctrl-C again to quit now)"


def _confirm(question: str) -> bool:
    try:
        return click.confirm(question)
    except click.Abort:  # no answer (end of input)
        return False


@cli.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
@click.option(
    "--list", "lists", multiple=True, help="List to send to; several: their union, once each (default: main)."
)
@click.option(
    "--provider", type=PROVIDERS, default=None, help="outbox (a rehearsal), smtp or ses; default: send.provider."
)
@click.option("--dry-run", is_flag=True, help="Check, compose and count what would be sent; send nothing.")
@click.option("--yes", is_flag=True, help="Do not ask before sending to more than 10 people.")
@click.option("--resend-uncertain", is_flag=True, help="Send again the deliveries left uncertain by a crash.")
@click.option("--retry-failed", is_flag=True, help="Send again the deliveries that failed (not to people who left).")
@click.option("--again", is_flag=True, help="Also send to people who already had this issue in another campaign.")
@click.option("--skip-checks", is_flag=True, help="Send even when the pre-send checks fail.")
@click.option(
    "--test", "tests", multiple=True, metavar="ADDRESS", help="Send a [TEST] copy to ADDRESS (repeatable, or a,b)."
)
@click.option("--all-variants", is_flag=True, help="With --test: every variant, not only those subscribers get.")
@click.option("--rate", type=float, default=None, help="Messages per second (default: send.rate).")
@click.option("--threads", type=int, default=None, help="Sending threads per process (default: send.threads).")
@click.option("--workers", type=int, default=1, show_default=True, help="Sending processes (PostgreSQL only).")
@config_option
def send(
    issue_dir: Path,
    lists: tuple[str, ...],
    provider: str | None,
    dry_run: bool,
    yes: bool,
    resend_uncertain: bool,
    retry_failed: bool,
    again: bool,
    skip_checks: bool,
    tests: tuple[str, ...],
    all_variants: bool,
    rate: float | None,
    threads: int | None,
    workers: int,
    config_path: Path | None,
) -> None:
    """Send ISSUE_DIR to every active subscriber of the lists, one message each.

    Running it again resumes a paused campaign (nothing sent is sent again) and, once a
    campaign is done, offers it to the people who joined its lists since. Exit status: 0 when
    every recipient was sent the letter or skipped for a stated reason; 1 when any failed, is
    uncertain or the campaign paused; 2 for bad input.
    """
    from newsletter.sending.campaign import SendRequest, check_numbers

    check_numbers(rate=rate, threads=threads, workers=workers)
    if tests:
        _send_tests(issue_dir, tests, provider, all_variants, config_path)
        return
    request = SendRequest(
        issue_dir,
        lists or ("main",),
        provider,
        yes,
        resend_uncertain,
        retry_failed,
        again,
        skip_checks,
        rate,
        threads,
        workers,
        config_path,
    )
    if dry_run:
        from newsletter.sending.trial import dry_run as count

        _print_dry_run(count(request))
        return
    _send(request)


def _send(request: SendRequest) -> None:
    """Send in this process, or start --workers processes and follow them; the one summary either way."""
    from newsletter.sending.pacing import TerminalProgress

    stop = threading.Event()
    with stop_on_signals(stop, echo_err, STOPPING):
        if request.workers > 1:
            from newsletter.sending.workers import send_with_workers

            summary = send_with_workers(request, _confirm, TerminalProgress(), stop, started=_started)
        else:
            from newsletter.sending.engine import send_issue

            summary = send_issue(request, _confirm, TerminalProgress(), stop)
    _print_summary(summary)
    if problem := summary.problem():
        raise problem


def _send_tests(
    issue_dir: Path, tests: tuple[str, ...], provider: str | None, all_variants: bool, config_path: Path | None
) -> None:
    from newsletter.sending.trial import send_test

    addresses = [a.strip() for value in tests for a in value.split(",") if a.strip()]
    send_test(
        issue_dir,
        addresses=addresses,
        provider=provider,
        every_variant=all_variants,
        config_path=config_path,
        report=click.echo,
    )


@cli.command()
@click.argument("campaign")
@click.option(
    "--issue",
    "issue_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="The issue folder (default: issues/<slug> beside newsletter.toml).",
)
@click.option("--provider", type=PROVIDERS, default=None)
@click.option(
    "--rate", type=float, default=None, help="Messages per second for the whole campaign, shared by its live workers."
)
@click.option("--threads", type=int, default=None)
@config_option
def worker(
    campaign: str,
    issue_dir: Path | None,
    provider: str | None,
    rate: float | None,
    threads: int | None,
    config_path: Path | None,
) -> None:
    """Help send CAMPAIGN (its number or issue slug) from this machine; needs PostgreSQL."""
    from newsletter.sending.workers import run_worker

    stop = threading.Event()
    with stop_on_signals(stop, echo_err, STOPPING):
        summary = run_worker(
            campaign=campaign,
            issue_dir=issue_dir,
            provider=provider,
            rate=rate,
            threads=threads,
            config_path=config_path,
            stop=stop,
        )
    _print_summary(summary)
    if problem := summary.problem():
        raise problem


def _started(campaign_id: int, pids: list[int]) -> None:
    echo_err(f"campaign {campaign_id}: {len(pids)} workers started (pids {', '.join(map(str, pids))})")


def _print_dry_run(result: DryRun) -> None:
    total = result.total
    where = ", ".join(repr(name) for name in result.lists)
    what = f"campaign {result.campaign_id}" if result.campaign_id else "a new campaign"
    click.echo(
        f"dry run: {total} message{'s' if total != 1 else ''} to {where} ({what}), "
        f"{result.size / 1024 / 1024:.1f} MB in all; nothing sent"
    )
    for variant, count in sorted(result.by_variant.items()):
        click.echo(f"  {variant:<10} {count}")
    for reason, count in sorted(result.skipped.items()):
        click.echo(f"  skipped: {count} {reason}")
    for line in result.inbox:  # each variant's subject and preheader, as the messages carry them
        click.echo(line)


def _print_skipped(skipped: dict[str, int]) -> None:
    for reason, count in sorted(skipped.items()):
        click.echo(f"  not on the ledger: {count} {reason}")


def _print_summary(summary: Summary) -> None:
    """The one report of a run: `send` alone or with --workers, and `newsletter worker`."""
    if summary.worker is not None:
        click.echo(f"worker {summary.worker}: {summary.sent_now} sent")
        return
    c = summary.counts
    click.echo(_headline(summary))
    click.echo(
        f"  sent {c[d.SENT]}, failed {c[d.FAILED]}, uncertain {c[d.UNCERTAIN]}, pending {c[d.PENDING]}, "
        f"skipped {c[d.SKIPPED]}"
    )
    _print_skipped(summary.skipped_at_freeze)
    if summary.recovered_uncertain:
        click.echo(
            f"  {summary.recovered_uncertain} deliveries were in flight when the previous run stopped: now uncertain"
        )
    for state, count in summary.requeued.items():
        click.echo(f"  {count} {state} deliveries were tried again")
    for label, rows in (("failed", summary.failed), ("uncertain", summary.uncertain)):
        for _delivery_id, address, error in rows[:20]:
            click.echo(f"  {label}: {address or '(forgotten)'}: {error}")
        if len(rows) > 20:
            click.echo(f"  … and {len(rows) - 20} more {label}")
    if summary.uncertain:
        click.echo("  Uncertain messages may have gone out; send them again with --resend-uncertain.")
    if summary.written_to is not None:
        click.echo(f"  messages written to {summary.written_to}")


def _headline(summary: Summary) -> str:
    campaign = summary.campaign
    verb = "started" if summary.created else "resumed"
    if not summary.created and summary.added:
        verb = f"extended to {summary.added} people who joined its lists since it started"
    elif not summary.created and summary.sent_now == 0 and summary.counts[d.PENDING] == 0 and not summary.stopped:
        verb = "was already finished; nothing left to send"
    if summary.workers > 1:
        verb += f" with {summary.workers} workers"
    lists = ", ".join(repr(name) for name in summary.lists)
    kind = " (a rehearsal)" if campaign.rehearsal else ""
    return (
        f"campaign {campaign.id} ({campaign.slug} to {lists} through {summary.provider}{kind}) {verb}: "
        f"{summary.sent_now} sent in this run, at most {summary.rate:g}/s, in {summary.elapsed:.1f} s"
    )
