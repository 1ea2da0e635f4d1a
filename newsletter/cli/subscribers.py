"""`newsletter subscribers`: import, add, list, export, remove, forget."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from newsletter import domain as d
from newsletter.cli.group import NotFound, cli, config_option, echo_err, load, open_store, plural
from newsletter.terminal import terminal_safe

LIST_OPTION_HELP = "List to put them on."


@cli.group()
def subscribers() -> None:
    """Import, list, export and erase subscribers."""


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--list", "list_name", default="main", show_default=True, help=LIST_OPTION_HELP)
@config_option
def subscribers_import(csv_file: Path, list_name: str, config_path: Path | None) -> None:
    """Import CSV_FILE (columns email, name, language) in one transaction.

    Bad rows are reported with their line; every good row is imported. Nobody who
    unsubscribed, bounced, complained or was forgotten is subscribed again; a missing name
    or language keeps the stored one. Exit status 0 when every row was good, 1 when some
    were left out, 2 when the file cannot be used.
    """
    from newsletter.audience.spreadsheet import read_csv

    config = load(config_path)
    store = open_store(config)
    secret = store.secret_key()
    good, bad = read_csv(csv_file, config.codes)
    result = store.import_subscribers(good, list_name, secret, default_language=config.codes[0])
    for problem in bad:
        echo_err(f"{csv_file}:{problem.line}: {terminal_safe(problem.message)}")
    click.echo(
        f"{list_name}: {result.added} added, {result.updated} updated, "
        f"{result.kept_status} kept as they were (unsubscribed, bounced or complained), "
        f"{result.suppressed} not added back (suppressed), {plural(len(bad), 'bad row')}"
    )
    if result.primary_language:
        n = result.primary_language
        click.echo(
            f"  {n} new {'person' if n == 1 else 'people'} without a language got {config.codes[0]}, the primary one"
        )
    if bad:
        raise click.exceptions.Exit(1)  # some rows were left out: not all of the work was done


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="")
@click.option("--language", default=None, help="Default: the primary language.")
@click.option("--list", "list_name", default="main", show_default=True)
@config_option
def subscribers_add(email: str, name: str, language: str | None, list_name: str, config_path: Path | None) -> None:
    """Add one subscriber (never resubscribes anyone who left)."""
    from newsletter.audience.spreadsheet import one_subscriber

    config = load(config_path)
    person = one_subscriber(email, name, language, config.codes)
    store = open_store(config)
    result = store.import_subscribers([person], list_name, store.secret_key(), default_language=config.codes[0])
    if result.added:
        click.echo(f"added {terminal_safe(person.email)} to {list_name}")
    elif result.suppressed:
        echo_err(f"{terminal_safe(person.email)} is suppressed (forgotten or suppressed before): not added")
    elif result.kept_status:
        click.echo(f"{terminal_safe(person.email)} is known and not active: kept as it is, put on {list_name}")
    else:
        click.echo(f"{terminal_safe(person.email)} was already subscribed: updated, put on {list_name}")


@subscribers.command("list")
@click.option("--list", "list_name", default=None, help="Only this list.")
@click.option("--status", type=click.Choice(d.STATUSES), default=None)
@config_option
def subscribers_list(list_name: str | None, status: str | None, config_path: Path | None) -> None:
    """Show subscribers, one a line: email, language, status, name."""
    count = 0
    for sub in open_store(load(config_path)).subscribers(list_name, status):
        # each field escaped on its own: what a name holds can never steer the terminal
        click.echo("\t".join(terminal_safe(value) for value in (sub.email, sub.language, sub.status, sub.name)))
        count += 1
    echo_err(plural(count, "subscriber"))


@subscribers.command("export")
@click.option("--list", "list_name", default=None)
@click.option("--status", type=click.Choice(d.STATUSES), default=None)
@click.option(
    "--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Default: standard output."
)
@config_option
def subscribers_export(
    list_name: str | None, status: str | None, out_file: Path | None, config_path: Path | None
) -> None:
    """Write subscribers as CSV (email, name, language, status)."""
    from newsletter.audience.spreadsheet import write_csv

    text = write_csv(open_store(load(config_path)).subscribers(list_name, status))
    if out_file:
        out_file.write_text(text, encoding="utf-8")
    else:
        shown = text if not sys.stdout.isatty() else "\n".join(terminal_safe(line) for line in text.split("\n"))
        click.echo(shown, nl=False)


@subscribers.command("remove")
@click.argument("email")
@click.option("--list", "list_name", default=None, help="Only from this list (default: every list).")
@config_option
def subscribers_remove(email: str, list_name: str | None, config_path: Path | None) -> None:
    """Take EMAIL off a list; the person stays known. Use `forget` to erase them."""
    removed = open_store(load(config_path)).remove_from_lists(email, list_name)
    if not removed:
        raise NotFound(f"{email!r}: not on {'list ' + repr(list_name) if list_name else 'any list'}")
    click.echo(f"removed {terminal_safe(email)} from {plural(removed, 'list')}")


@subscribers.command("forget")
@click.argument("email")
@config_option
def subscribers_forget(email: str, config_path: Path | None) -> None:
    """Erase everything about EMAIL (the store, stored replies, outbox copies); keep only a keyed
    hash so that no import, `add` or sign-up brings the address back."""
    from newsletter.sending.forget import forget

    erased = forget(load(config_path), email)
    # the address is not repeated: this output may end up in a log that outlives the person
    if erased.known:
        files = f", {plural(erased.outbox_files, 'outbox file')} deleted" if erased.outbox_files else ""
        click.echo(f"forgotten: their data is erased{files}, and the address is suppressed")
    else:
        click.echo("that address was not known; it is suppressed all the same")
