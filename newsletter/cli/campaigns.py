"""`newsletter campaigns` and `newsletter campaign show|cancel`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from newsletter import domain as d
from newsletter.cli.group import cli, config_option, load, open_store
from newsletter.domain import Campaign


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


def describe(campaign: Campaign, counts: dict[str, int]) -> dict:
    """A campaign as `campaigns`, `campaign show` and `report` show it (JSON-ready)."""
    return {
        "campaign_id": campaign.id,
        "issue": campaign.slug,
        "lists": list(campaign.lists),
        "provider": campaign.provider,
        "rehearsal": campaign.rehearsal,
        "state": campaign.state,
        "reason": campaign.stop_reason,
        "started": campaign.created_at.isoformat() if campaign.created_at else None,
        "finished": campaign.finished_at.isoformat() if campaign.finished_at else None,
        "counts": counts,
    }


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@config_option
def campaigns(fmt: str, config_path: Path | None) -> None:
    """Every campaign: number, issue, lists, provider, started, state and counts."""
    store = open_store(load(config_path))
    rows = [(c, store.ledger.delivery_counts(c.id)) for c in store.campaigns.all()]
    if fmt == "json":
        click.echo(json.dumps([describe(c, counts) for c, counts in rows], indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("no campaigns yet")
        return
    click.echo(f"{'#':>4}  {'issue':<24} {'lists':<18} {'provider':<18} {'started':<16} {'state':<9} counts")
    for c, counts in rows:
        provider = c.provider + (" (rehearsal)" if c.rehearsal else "")
        shown = ", ".join(f"{state} {n}" for state, n in counts.items() if n)
        click.echo(
            f"{c.id:>4}  {c.slug:<24} {', '.join(c.lists):<18} {provider:<18} {_when(c.created_at):<16} "
            f"{c.state:<9} {shown or 'nobody'}"
        )


@cli.group()
def campaign() -> None:
    """One campaign: show it, or cancel it."""


@campaign.command("show")
@click.argument("reference", metavar="CAMPAIGN")
@config_option
def campaign_show(reference: str, config_path: Path | None) -> None:
    """CAMPAIGN (its number, or its issue when it has one campaign): counts, and why deliveries failed."""
    from newsletter.sending.campaign import find

    store = open_store(load(config_path))
    c = find(store, reference)
    counts = store.ledger.delivery_counts(c.id)
    kind = " (a rehearsal: nothing left the machine)" if c.rehearsal else ""
    click.echo(f"campaign {c.id}: {c.slug} to {', '.join(c.lists)} through {c.provider}{kind}")
    click.echo(f"  state {c.state}" + (f": {c.stop_reason}" if c.stop_reason else ""))
    click.echo(f"  started {_when(c.created_at)}" + (f", finished {_when(c.finished_at)}" if c.finished_at else ""))
    click.echo("  " + ", ".join(f"{state} {counts[state]}" for state in d.DELIVERY_STATES))
    for state, reason, count in store.ledger.failure_reasons(c.id):
        click.echo(f"  {state} {count}: {reason or '(no reason recorded)'}")
    for line in bounce_lines(store.reports.bounce_reasons(c.id)):
        click.echo(line)


def bounce_lines(by_reason: dict[str, int]) -> list[str]:
    """A campaign's bounces by reason, and the deliverability problems they show with what to check."""
    from newsletter.feedback.reasons import problems

    if not by_reason:
        return []
    lines = ["  bounces by reason: " + ", ".join(f"{reason} {count}" for reason, count in by_reason.items())]
    found = problems(by_reason)
    if found:
        total = sum(count for _, count in found)
        lines.append(
            f"  deliverability problem: {total} bounced because of our sending or our letter, not the readers' "
            "addresses; nobody was suppressed for them"
        )
        lines += [f"    {problem.reason} {count}: {problem.says}; check {problem.check}" for problem, count in found]
    return lines


@campaign.command("cancel")
@click.argument("reference", metavar="CAMPAIGN")
@config_option
def campaign_cancel(reference: str, config_path: Path | None) -> None:
    """Cancel CAMPAIGN: nothing more is sent; what was sent stays recorded. The issue can then be
    sent as a new campaign, which goes to those who did not get it."""
    from newsletter.sending.campaign import cancel

    cancelled, skipped = cancel(open_store(load(config_path)), reference)
    click.echo(f"campaign {cancelled.id} ({cancelled.slug}) cancelled: {skipped} pending deliveries will not be sent")
