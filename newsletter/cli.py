"""The `newsletter` command: a thin layer over the library functions."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from newsletter import __version__
from newsletter.errors import BadInput, NewsletterError


class _Group(click.Group):
    """Turns the project's errors into one clean message and the right exit status."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BadInput as exc:
            for problem in exc.problems:
                click.echo(f"Error: {problem}", err=True)
            click.echo(f"Aborted with {len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}; nothing was written.", err=True)
            ctx.exit(exc.exit_code)
        except NewsletterError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="newsletter")
def cli() -> None:
    """Bilingual email newsletters from Markdown issue files."""


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="newsletter.toml to use (default: the nearest one above the issue folder).",
)


@cli.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Output folder (default: dist/<slug>).")
@config_option
def build(issue_dir: Path, out_dir: Path | None, config_path: Path | None) -> None:
    """Render every variant of ISSUE_DIR to HTML, plain text and a sample .eml."""
    from newsletter.build import build_files, build_issue, write_all

    result = build_issue(issue_dir, config_path)
    files = build_files(result)
    target = out_dir or result.config.root / "dist" / result.issue.slug
    write_all(target, files)
    shown = _shown(target)
    for name in result.variants:
        html = len(files[f"{name}.html"])
        text = len(files[f"{name}.txt"])
        eml = len(files[f"{name}.eml"])
        click.echo(f"{name:<10} html {html / 1024:6.1f} KB   text {text / 1024:5.1f} KB   eml {eml / 1024:6.1f} KB")
    for warning in result.warnings():
        click.echo(f"Warning: {warning}", err=True)
    click.echo(f"Wrote {len(files)} files to {shown}/")


@cli.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--max-spam-score", type=float, default=5.0, show_default=True, help="SpamAssassin score above which the check fails.")
@click.option("--no-spamassassin", is_flag=True, help="Skip the SpamAssassin score.")
@config_option
def check(issue_dir: Path, fmt: str, max_spam_score: float, no_spamassassin: bool, config_path: Path | None) -> None:
    """Check ISSUE_DIR before sending: exit 0 when clean, 1 when a check failed, 2 on bad input."""
    import json

    from newsletter.build import build_issue
    from newsletter.checks import ERROR, OK, failed, run_checks

    result = build_issue(issue_dir, config_path)
    results = run_checks(result, spamassassin=not no_spamassassin, max_spam_score=max_spam_score)
    if fmt == "json":
        click.echo(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
    else:
        for r in results:
            click.echo(str(r))
        errors = sum(1 for r in results if r.level == ERROR)
        warnings = sum(1 for r in results if r.level not in (OK, ERROR))
        click.echo(f"{errors} failed, {warnings} warnings, {len(results) - errors - warnings} ok")
    if failed(results):
        raise click.exceptions.Exit(1)


@cli.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
@click.option("--port", default=8008, show_default=True, type=click.IntRange(0, 65535), help="Port on 127.0.0.1; 0 picks a free one.")
@click.option("--open", "open_browser", is_flag=True, help="Open the preview in the web browser.")
@config_option
def preview(issue_dir: Path, port: int, open_browser: bool, config_path: Path | None) -> None:
    """Serve a live preview of ISSUE_DIR on 127.0.0.1, rebuilt whenever a file changes.

    Every variant at desktop and phone width, the plain text, the inbox lines, sizes and
    checks; a failing build shows its problems until they are fixed. Ctrl-C stops.
    """
    from newsletter.preview import serve

    serve(issue_dir, config_path=config_path, port=port, open_browser=open_browser)


def _config(config_path: Path | None, start: Path | None = None):
    from newsletter.build import locate_config
    from newsletter.config import load_config

    return load_config(locate_config(start or Path.cwd(), config_path))


def _store(config):
    from newsletter.store import Store

    return Store.open(config.store_url)


@cli.group()
def subscribers() -> None:
    """Import, list, export and erase subscribers."""


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--list", "list_name", default="main", show_default=True, help="List to put them on.")
@config_option
def subscribers_import(csv_file: Path, list_name: str, config_path: Path | None) -> None:
    """Import CSV_FILE (columns email, name, language) in one transaction.

    Bad rows are reported with their line; every good row is imported. Nobody who
    unsubscribed, bounced, complained or was forgotten is subscribed again.
    """
    from newsletter.secrets import secret_key
    from newsletter.subscribers import read_csv

    config = _config(config_path)
    secret = secret_key()
    good, bad = read_csv(csv_file, config.codes)
    store = _store(config)
    result = store.import_subscribers(good, list_name, secret)
    for problem in bad:
        click.echo(f"{csv_file}:{problem.line}: {problem.message}", err=True)
    click.echo(
        f"{list_name}: {result.added} added, {result.updated} updated, "
        f"{result.kept_status} kept as they were (unsubscribed, bounced or complained), "
        f"{result.suppressed} not added back (suppressed), {len(bad)} bad row{'s' if len(bad) != 1 else ''}"
    )


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="")
@click.option("--language", default=None, help="Default: the primary language.")
@click.option("--list", "list_name", default="main", show_default=True)
@config_option
def subscribers_add(email: str, name: str, language: str | None, list_name: str, config_path: Path | None) -> None:
    """Add one subscriber (never resubscribes anyone who left)."""
    from newsletter.errors import BadInput, Problem
    from newsletter.secrets import secret_key
    from newsletter.store import NewSubscriber
    from newsletter.subscribers import normalise_email

    config = _config(config_path)
    language = (language or config.codes[0]).lower()
    problems = []
    try:
        address = normalise_email(email)
    except ValueError as exc:
        problems.append(Problem("EMAIL", None, f"{email!r}: {exc}"))
    if language not in config.codes:
        problems.append(Problem("--language", None, f"{language!r} is not one of {', '.join(config.codes)}"))
    if problems:
        raise BadInput(problems)
    result = _store(config).import_subscribers([NewSubscriber(address, " ".join(name.split()), language)], list_name, secret_key())
    if result.added:
        click.echo(f"added {address} to {list_name}")
    elif result.suppressed:
        click.echo(f"{address} is suppressed (forgotten or suppressed before): not added", err=True)
    elif result.kept_status:
        click.echo(f"{address} is known and not active: kept as it is, put on {list_name}")
    else:
        click.echo(f"{address} was already subscribed: updated, put on {list_name}")


@subscribers.command("list")
@click.option("--list", "list_name", default=None, help="Only this list.")
@click.option("--status", type=click.Choice(["active", "unsubscribed", "bounced", "complained"]), default=None)
@config_option
def subscribers_list(list_name: str | None, status: str | None, config_path: Path | None) -> None:
    """Show subscribers, one a line: email, language, status, name."""
    store = _store(_config(config_path))
    count = 0
    for sub in store.subscribers(list_name, status):
        click.echo(f"{sub.email}\t{sub.language}\t{sub.status}\t{sub.name}")
        count += 1
    click.echo(f"{count} subscriber{'s' if count != 1 else ''}", err=True)


@subscribers.command("export")
@click.option("--list", "list_name", default=None)
@click.option("--status", type=click.Choice(["active", "unsubscribed", "bounced", "complained"]), default=None)
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Default: standard output.")
@config_option
def subscribers_export(list_name: str | None, status: str | None, out_file: Path | None, config_path: Path | None) -> None:
    """Write subscribers as CSV (email, name, language, status)."""
    import csv
    import io

    store = _store(_config(config_path))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["email", "name", "language", "status"])
    for sub in store.subscribers(list_name, status):
        writer.writerow([sub.email, sub.name, sub.language, sub.status])
    if out_file:
        out_file.write_text(buffer.getvalue(), encoding="utf-8")
    else:
        click.echo(buffer.getvalue(), nl=False)


@subscribers.command("remove")
@click.argument("email")
@click.option("--list", "list_name", default=None, help="Only from this list (default: every list).")
@config_option
def subscribers_remove(email: str, list_name: str | None, config_path: Path | None) -> None:
    """Take EMAIL off a list; the person stays known. Use `forget` to erase them."""
    removed = _store(_config(config_path)).remove_from_lists(email, list_name)
    if not removed:
        raise NotFound(f"{email!r}: not on {'list ' + repr(list_name) if list_name else 'any list'}")
    click.echo(f"removed {email} from {removed} list{'s' if removed != 1 else ''}")


@subscribers.command("forget")
@click.argument("email")
@config_option
def subscribers_forget(email: str, config_path: Path | None) -> None:
    """Erase everything about EMAIL; keep only a keyed hash so no import adds it back."""
    from newsletter.secrets import secret_key

    known = _store(_config(config_path)).forget(email, secret_key())
    if known:
        click.echo(f"forgot {email}: their data is erased and the address is suppressed")
    else:
        click.echo(f"{email} was not known; the address is suppressed all the same")


class NotFound(NewsletterError):
    exit_code = 1


@cli.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
@click.option("--list", "list_name", default="main", show_default=True, help="Subscriber list to send to.")
@click.option("--provider", type=click.Choice(["outbox", "smtp", "ses"]), default=None, help="Default: send.provider in newsletter.toml (outbox).")
@click.option("--dry-run", is_flag=True, help="Render and count; send nothing.")
@click.option("--yes", is_flag=True, help="Do not ask before sending to more than 10 people.")
@click.option("--resend-uncertain", is_flag=True, help="Send again the deliveries left uncertain by a crash.")
@click.option("--test", "test_address", default=None, metavar="ADDRESS", help="Send one copy of each variant to ADDRESS, outside the ledger.")
@click.option("--rate", type=float, default=None, help="Messages per second (default: send.rate).")
@click.option("--threads", type=int, default=None, help="Sending threads per process (default: send.threads).")
@click.option("--workers", type=int, default=1, show_default=True, help="Sending processes sharing the campaign (PostgreSQL only).")
@config_option
def send(issue_dir: Path, list_name: str, provider: str | None, dry_run: bool, yes: bool, resend_uncertain: bool,
         test_address: str | None, rate: float | None, threads: int | None, workers: int, config_path: Path | None) -> None:
    """Send ISSUE_DIR to every active subscriber of a list, one message each.

    Running it again on a campaign that stopped resumes it: nothing sent is sent again.
    """
    from newsletter import sendcmd

    sendcmd.run(
        issue_dir=issue_dir, list_name=list_name, provider=provider, dry_run=dry_run, yes=yes,
        resend_uncertain=resend_uncertain, test_address=test_address, rate=rate, threads=threads, workers=workers,
        config_path=config_path,
    )


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (behind the HTTPS proxy).")
@click.option("--port", default=8000, show_default=True, type=int)
@config_option
def serve(host: str, port: int, config_path: Path | None) -> None:
    """Serve the unsubscribe pages and the SNS endpoint for SES feedback."""
    import uvicorn

    from newsletter.secrets import secret_key
    from newsletter.web import create_app

    config = _config(config_path)
    app = create_app(config, _store(config), secret_key())
    uvicorn.run(app, host=host, port=port, proxy_headers=True, server_header=False, log_level="info")


@cli.group()
def feedback() -> None:
    """SES bounces and complaints from an SQS queue."""


@feedback.command("poll")
@click.option("--queue", "queue_url", required=True, help="URL of the SQS queue subscribed to the SNS topic.")
@click.option("--once", is_flag=True, help="One round of receiving, then stop.")
@click.option("--wait", "wait_seconds", default=20, show_default=True, type=click.IntRange(0, 20), help="Long-poll seconds.")
@config_option
def feedback_poll(queue_url: str, once: bool, wait_seconds: int, config_path: Path | None) -> None:
    """Long-poll the queue and act on each message; Ctrl-C stops between messages."""
    import signal
    import threading

    from newsletter.poller import poll
    from newsletter.secrets import secret_key

    config = _config(config_path)
    store = _store(config)
    secret = secret_key()
    stop = threading.Event()

    def on_signal(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        click.echo("stopping after the current message (Ctrl-C again to stop now)", err=True)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stats = poll(queue_url, store, config, secret, stop=stop, once=once, wait_seconds=wait_seconds,
                     report=lambda line: click.echo(line, err=True))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(
        f"{stats.received} received, {stats.processed} processed ({stats.events} events, {stats.duplicates} duplicates), "
        f"{stats.malformed} malformed, {stats.failed} not stored"
    )


@cli.command()
@click.argument("campaign", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@config_option
def report(campaign: str | None, fmt: str, config_path: Path | None) -> None:
    """Per campaign and language: recipients, sent, failed, uncertain, bounces, complaints, unsubscribes.

    CAMPAIGN is a campaign number or an issue slug (default: every campaign).
    """
    import json

    store = _store(_config(config_path))
    ids = None
    if campaign is not None:
        matches = [c.id for c in store.campaigns() if str(c.id) == campaign or c.slug == campaign]
        if not matches:
            raise NotFound(f"no campaign {campaign!r}")
        ids = matches
    rows = [row for cid in (ids or [None]) for row in store.report(cid)]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    columns = [("campaign_id", "#"), ("campaign", "issue"), ("language", "lang"), ("recipients", "recipients"),
               ("sent", "sent"), ("failed", "failed"), ("uncertain", "uncertain"), ("hard_bounces", "hard"),
               ("soft_bounces", "soft"), ("complaints", "complaints"), ("unsubscribes", "unsubscribed")]
    table = [[str(row.get(key, "")) for key, _ in columns] for row in rows]
    widths = [max(len(title), *(len(r[i]) for r in table)) if table else len(title) for i, (_, title) in enumerate(columns)]
    click.echo("  ".join(title.ljust(w) for (_, title), w in zip(columns, widths)))
    for r in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths)))
    if not table:
        click.echo("no campaigns yet")


@cli.command()
@click.argument("campaign")
@click.option("--issue", "issue_dir", type=click.Path(path_type=Path), default=None, help="The issue folder (default: issues/<slug> beside newsletter.toml).")
@click.option("--provider", type=click.Choice(["outbox", "smtp", "ses"]), default=None)
@click.option("--rate", type=float, default=None, help="Messages per second for the whole campaign, shared by its live workers.")
@click.option("--threads", type=int, default=None)
@config_option
def worker(campaign: str, issue_dir: Path | None, provider: str | None, rate: float | None, threads: int | None, config_path: Path | None) -> None:
    """Help send CAMPAIGN (its number or issue slug) from this machine; needs PostgreSQL."""
    from newsletter import sendcmd

    sendcmd.run_worker(campaign=campaign, issue_dir=issue_dir, provider=provider, rate=rate, threads=threads, config_path=config_path)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main() -> None:
    cli(prog_name="newsletter")


if __name__ == "__main__":
    sys.exit(main())
