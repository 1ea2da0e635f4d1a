"""`newsletter send` and `newsletter worker`."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from newsletter import domain as d
from newsletter.cli.group import cli, config_option, echo_err
from newsletter.interrupts import stop_on_signals

PROVIDERS = click.Choice(["outbox", "smtp", "ses"])
STOPPING = "stopping: finishing the messages in flight (press Ctrl-C again to quit now)"


def _confirm(question: str) -> bool:
    try:
        return click.confirm(question)
    except click.Abort:  # no answer (end of input)
        return False


@cli.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
@click.option("--list", "list_name", default="main", show_default=True, help="Subscriber list to send to.")
@click.option("--provider", type=PROVIDERS, default=None, help="Default: send.provider in newsletter.toml (outbox).")
@click.option("--dry-run", is_flag=True, help="Render and count; send nothing.")
@click.option("--yes", is_flag=True, help="Do not ask before sending to more than 10 people.")
@click.option("--resend-uncertain", is_flag=True, help="Send again the deliveries left uncertain by a crash.")
@click.option(
    "--test",
    "test_address",
    default=None,
    metavar="ADDRESS",
    help="Send one copy of each variant to ADDRESS, outside the ledger.",
)
@click.option("--rate", type=float, default=None, help="Messages per second (default: send.rate).")
@click.option("--threads", type=int, default=None, help="Sending threads per process (default: send.threads).")
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Sending processes sharing the campaign (PostgreSQL only).",
)
@config_option
def send(
    issue_dir: Path,
    list_name: str,
    provider: str | None,
    dry_run: bool,
    yes: bool,
    resend_uncertain: bool,
    test_address: str | None,
    rate: float | None,
    threads: int | None,
    workers: int,
    config_path: Path | None,
) -> None:
    """Send ISSUE_DIR to every active subscriber of a list, one message each.

    Running it again on a campaign that stopped resumes it: nothing sent is sent again.
    """
    from newsletter.sending import campaign, trial
    from newsletter.sending import workers as several
    from newsletter.sending.options import CampaignStopped, SendRequest, check_numbers
    from newsletter.sending.progress import TerminalProgress

    check_numbers(rate=rate, threads=threads, workers=workers)
    if test_address:
        trial.send_test(issue_dir, address=test_address, provider=provider, config_path=config_path, report=click.echo)
        return
    if dry_run:
        _print_dry_run(trial.dry_run(issue_dir, list_name=list_name, config_path=config_path))
        return
    request = SendRequest(issue_dir, list_name, provider, yes, resend_uncertain, rate, threads, workers, config_path)
    stop = threading.Event()
    with stop_on_signals(stop, echo_err, STOPPING):
        if workers > 1:
            outcome = several.send_with_workers(request, _confirm, TerminalProgress(), stop, started=_started)
        else:
            summary = campaign.send_issue(request, _confirm, TerminalProgress(), stop)
    if workers > 1:
        c = outcome.counts
        click.echo(
            f"campaign {outcome.campaign_id} ({outcome.slug} to list {outcome.list_name!r} through {outcome.provider}) "
            f"with {outcome.workers} workers: sent {c[d.SENT]}, failed {c[d.FAILED]}, uncertain {c[d.UNCERTAIN]}, "
            f"pending {c[d.PENDING]}, skipped {c[d.SKIPPED]}"
        )
        _print_skipped(outcome.skipped_at_freeze)
        if stopped := outcome.stopped():
            raise stopped
        return
    _print_summary(summary)
    if summary.stopped:
        raise CampaignStopped(
            f"campaign {summary.campaign.id} stopped: {summary.stopped}\nFix the cause, then run the same command again to resume."
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
    from newsletter.sending.options import CampaignStopped
    from newsletter.sending.workers import run_worker

    stop = threading.Event()
    with stop_on_signals(stop, echo_err, STOPPING):
        options, summary = run_worker(
            campaign=campaign,
            issue_dir=issue_dir,
            provider=provider,
            rate=rate,
            threads=threads,
            config_path=config_path,
            stop=stop,
        )
    click.echo(f"worker {options.worker_name}: {summary.sent_now} sent")
    if summary.stopped:
        raise CampaignStopped(f"campaign {summary.campaign.id} stopped: {summary.stopped}")


def _started(campaign_id: int, pids: list[int]) -> None:
    echo_err(f"campaign {campaign_id}: {len(pids)} workers started (pids {', '.join(map(str, pids))})")


def _print_dry_run(result) -> None:
    total = result.total
    click.echo(
        f"dry run: {total} message{'s' if total != 1 else ''} to {result.list_name!r}, {result.size / 1024 / 1024:.1f} MB in all; nothing sent"
    )
    for variant, count in sorted(result.by_variant.items()):
        click.echo(f"  {variant:<10} {count}")
    for reason, count in sorted(result.skipped.items()):
        click.echo(f"  skipped: {count} {reason}")


def _print_skipped(skipped: dict[str, int]) -> None:
    for reason, count in sorted(skipped.items()):
        click.echo(f"  not on the ledger: {count} {reason}")


def _print_summary(summary) -> None:
    c = summary.counts
    campaign = summary.campaign
    verb = "started" if summary.created else "resumed"
    if not summary.created and summary.sent_now == 0 and c[d.PENDING] == 0 and not summary.stopped:
        verb = "was already finished; nothing left to send"
    click.echo(
        f"campaign {campaign.id} ({campaign.slug} to list {summary.list_name!r} through {summary.provider}) {verb}: "
        f"{summary.sent_now} sent in this run, at most {summary.rate:g}/s, in {summary.elapsed:.1f} s"
    )
    click.echo(
        f"  sent {c[d.SENT]}, failed {c[d.FAILED]}, uncertain {c[d.UNCERTAIN]}, pending {c[d.PENDING]}, "
        f"skipped {c[d.SKIPPED]}"
    )
    _print_skipped(summary.skipped_at_freeze)
    if summary.recovered_uncertain:
        click.echo(
            f"  {summary.recovered_uncertain} deliveries were in flight when the previous run stopped: now uncertain"
        )
    if summary.requeued_uncertain:
        click.echo(f"  {summary.requeued_uncertain} uncertain deliveries were sent again (--resend-uncertain)")
    for label, rows in (("failed", summary.failed), ("uncertain", summary.uncertain)):
        for _delivery_id, address, error in rows[:20]:
            click.echo(f"  {label}: {address or '(forgotten)'}: {error}")
        if len(rows) > 20:
            click.echo(f"  … and {len(rows) - 20} more {label}")
    if summary.uncertain:
        click.echo("  Uncertain messages may have gone out; send them again with --resend-uncertain.")
    if summary.written_to is not None:
        click.echo(f"  messages written to {summary.written_to}")
