"""What comes back: `newsletter serve` (unsubscribes, SNS), `feedback poll` (SQS), `feedback mailbox`
(IMAP), `report`."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import click

from newsletter.cli.group import NotFound, cli, config_option, echo_err, load, open_store, plural, stop_on_signals

REPORT_COLUMNS = [
    ("campaign_id", "#"),
    ("campaign", "issue"),
    ("lists", "lists"),
    ("provider", "provider"),
    ("started", "started"),
    ("finished", "finished"),
    ("state", "state"),
    ("language", "lang"),
    ("recipients", "recipients"),
    ("sent", "sent"),
    ("failed", "failed"),
    ("uncertain", "uncertain"),
    ("hard_bounces", "hard"),
    ("soft_bounces", "soft"),
    ("our_problems", "ours"),
    ("complaints", "complaints"),
    ("unsubscribes", "unsubscribed"),
]


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (behind the HTTPS proxy).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Access log lines (tokens never shown).",
)
@click.option(
    "--forwarded-allow-ips",
    default="127.0.0.1",
    show_default=True,
    help="The proxies whose X-Forwarded-For/Proto to believe (comma-separated, or *).",
)
@config_option
def serve(host: str, port: int, log_format: str, forwarded_allow_ips: str, config_path: Path | None) -> None:
    """Serve the unsubscribe pages, the SNS endpoint for SES feedback and /healthz, until SIGTERM."""
    from newsletter.web.public import serve as serve_public

    serve_public(
        load(config_path), host=host, port=port, log_format=log_format, forwarded_allow_ips=forwarded_allow_ips
    )


@cli.group()
def feedback() -> None:
    """Bounces and complaints: SES's from an SQS queue, SMTP's from the bounce mailbox."""


@feedback.command("poll")
@click.option("--queue", "queue_url", required=True, help="URL of the SQS queue subscribed to the SNS topic.")
@click.option("--once", is_flag=True, help="One round of receiving, then stop.")
@click.option(
    "--wait", "wait_seconds", default=20, show_default=True, type=click.IntRange(0, 20), help="Long-poll seconds."
)
@config_option
def feedback_poll(queue_url: str, once: bool, wait_seconds: int, config_path: Path | None) -> None:
    """Long-poll the queue and act on each message; Ctrl-C stops between messages."""
    from newsletter.feedback.sqs import poll

    config = load(config_path)
    store = open_store(config)
    secret = store.keys.data_key()
    stop = threading.Event()
    with stop_on_signals(stop, echo_err, "stopping after the current message (Ctrl-C again to stop now)"):
        stats = poll(
            queue_url, store.feedback, config, secret, stop=stop, once=once, wait_seconds=wait_seconds, report=echo_err
        )
    click.echo(
        f"{stats.received} received, {stats.processed} processed ({stats.events} events, {stats.duplicates} duplicates), "
        f"{stats.malformed} malformed, {stats.failed} not stored"
    )


@feedback.command("mailbox")
@click.option("--once", is_flag=True, help="One round (every message now in the folder), then stop: for cron.")
@config_option
def feedback_mailbox(once: bool, config_path: Path | None) -> None:
    """Bounces, complaints and mailed unsubscribes from the [mailbox] IMAP folder (password in
    NEWSLETTER_MAILBOX_PASSWORD); each message is moved to the processed folder once acted on."""
    from newsletter.feedback.bounces import RECIPIENT_LIMIT, SIZE_LIMIT
    from newsletter.feedback.mailbox import mailbox_password, poll_mailbox, settings_of

    config = load(config_path)
    settings, password = settings_of(config), mailbox_password()
    if config.bounces is None:
        echo_err("[bounces] is not set: bounces carry no token of ours, so they are only counted")
    store = open_store(config)
    stop = threading.Event()
    with stop_on_signals(stop, echo_err, "stopping after the current message (Ctrl-C again to stop now)"):
        stats = poll_mailbox(
            store.feedback, config, store.keys.data_key(), password=password, once=once, stop=stop, report=echo_err
        )
    kinds = stats.kinds
    click.echo(
        f"{plural(stats.messages, 'message')} in {settings.folder}: {kinds['bounce']} bounces "
        f"({stats.hard} hard, {stats.soft} soft, {stats.ours} for our sending or our letter), "
        f"{kinds['complaint']} complaints, {kinds['unsubscribe']} unsubscribes, "
        f"{kinds['delay']} delay notices, {kinds['delivered']} delivery reports, {kinds['auto-reply']} auto-replies, "
        f"{kinds['unrecognised'] + kinds['unreadable']} unrecognised, {stats.forged} with a token not ours, "
        f"{stats.untokened} without our token (counted, not acted on)"
    )
    if stats.too_large or stats.beyond_limit:
        click.echo(
            f"{plural(stats.too_large, 'message')} over {SIZE_LIMIT:,} bytes (only the first {SIZE_LIMIT:,} read); "
            f"{stats.beyond_limit} recipients over {RECIPIENT_LIMIT} in one message (counted, not stored)"
        )
    click.echo(
        f"{stats.bounced} bounced, {stats.complained} complained, {stats.unsubscribed} unsubscribed; "
        f"{stats.unknown} not matched to a delivery, {stats.duplicates} already processed, "
        f"{stats.failed} not stored (left unread); {stats.moved} moved to {settings.processed_folder}"
    )
    if stats.failed or stats.errors:
        raise SystemExit(1)


@cli.command()
@click.argument("campaign", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@config_option
def report(campaign: str | None, fmt: str, config_path: Path | None) -> None:
    """Per campaign and language: recipients, sent, failed, uncertain, bounces, complaints, unsubscribes.

    Bounces are hard (the person suppressed), soft (counted toward the soft-bounce window) or
    ours: refused for our sending or our letter (SPF, DKIM, DMARC, PTR, reputation, content),
    which suppress nobody; each campaign with those is named with what to check. CAMPAIGN is a
    campaign number or an issue slug (default: every campaign).
    """
    store = open_store(load(config_path))
    ids: list[int | None] = [None]
    if campaign is not None:
        ids = [c.id for c in store.campaigns.find(campaign)]
        if not ids:
            raise NotFound(f"no campaign {campaign!r}")
    rows = [row for cid in ids for row in store.reports.campaigns(cid)]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = [[_cell(key, row.get(key)) for key, _ in REPORT_COLUMNS] for row in rows]
    widths = [
        max(len(title), *(len(r[i]) for r in table)) if table else len(title)
        for i, (_, title) in enumerate(REPORT_COLUMNS)
    ]
    click.echo("  ".join(title.ljust(w) for (_, title), w in zip(REPORT_COLUMNS, widths, strict=True)))
    for r in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)))
    if not table:
        click.echo("no campaigns yet")
    _problems(store, sorted({(row["campaign_id"], row["campaign"]) for row in rows if row.get("our_problems")}))


def _problems(store, campaigns: list[tuple[int, str | None]]) -> None:
    """Each campaign whose bounces show a deliverability problem, with what to check."""
    from newsletter.feedback.reasons import problems

    for campaign_id, slug in campaigns:
        found = problems(store.reports.bounce_reasons(campaign_id))
        if not found:
            continue
        said = ", ".join(f"{problem.reason} {count}" for problem, count in found)
        click.echo(
            f"campaign {campaign_id} ({slug}): a deliverability problem of ours, nobody suppressed for it: {said}"
        )
        for problem, _ in found:
            click.echo(f"  {problem.reason}: {problem.says}; check {problem.check}")


def _cell(key: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(value)
    return str(value).replace("T", " ") if key in ("started", "finished") else str(value)
