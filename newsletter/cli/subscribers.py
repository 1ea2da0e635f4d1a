"""`newsletter subscribers`: import, add, list, export, remove, forget."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from newsletter import domain as d
from newsletter.cli.group import NotFound, cli, config_option, echo_err, load, open_store, plural
from newsletter.errors import terminal_safe

LIST_OPTION_HELP = "List to put them on."


@cli.group()
def subscribers() -> None:
    """Import, list, export and erase subscribers."""


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--list", "list_name", default="main", show_default=True, help=LIST_OPTION_HELP)
@click.option(
    "--column",
    "columns",
    multiple=True,
    metavar='FIELD="Header"',
    help='Which column holds a field, e.g. --column email="Email Address" (email, name, language).',
)
@click.option("--ignore-extra", is_flag=True, help="Drop the other columns instead of keeping them as attributes.")
@config_option
def subscribers_import(
    csv_file: Path, list_name: str, columns: tuple[str, ...], ignore_extra: bool, config_path: Path | None
) -> None:
    """Import CSV_FILE (a spreadsheet saved as CSV) in one transaction.

    UTF-8, UTF-16 (with or without a byte-order mark) and Windows-1256; comma, semicolon or
    tab; the email, name and language columns found by their headers in Arabic or English;
    other columns kept as attributes. The file is read as it goes, in the same memory whatever
    its size. Bad rows are reported with their line (among them rows in another encoding than
    the rest of the file, and text garbled by an earlier wrong encoding); every good row is
    imported. Nobody who unsubscribed, bounced, complained or was forgotten is subscribed
    again; a missing name, language or attribute keeps the stored one. Exit status 0 when every
    row was good, 1 when some were left out, 2 when the file cannot be used (nothing is
    imported then).
    """
    from newsletter.audience.spreadsheet import RowProblem, SheetFile
    from newsletter.errors import BadInput, Problem

    named: dict[str, str] = {}
    for value in columns:
        key, sep, header = value.partition("=")
        if not sep or not key.strip() or not header.strip():
            raise BadInput(
                [Problem("--column", None, f'{value!r}: expected FIELD="Header", e.g. email="Email Address"')]
            )
        named[key.strip().lower()] = header.strip().strip('"')
    config = load(config_path)
    sheet = SheetFile(csv_file, config.codes, columns=named, ignore_extra=ignore_extra)
    store = open_store(config)
    bad_rows = 0

    def report(problem: RowProblem) -> None:
        nonlocal bad_rows
        bad_rows += 1
        echo_err(f"{csv_file}:{problem.line}: {terminal_safe(problem.message)}")

    result = store.subscribers.import_rows(
        lambda seen: sheet.people(seen, report),
        list_name,
        store.keys.data_key(),
        default_language=config.codes[0],
        source=f"import {csv_file.name}",
    )
    click.echo(f"read {terminal_safe(csv_file.name)} as {terminal_safe(sheet.layout.describe())}")
    click.echo(
        f"{list_name}: {result.added} added, {result.updated} updated, "
        f"{result.kept_status} kept as they were (unsubscribed, bounced or complained), "
        f"{result.suppressed} not added back (suppressed), {plural(bad_rows, 'bad row')}"
    )
    if result.primary_language:
        n = result.primary_language
        click.echo(
            f"  {n} new {'person' if n == 1 else 'people'} without a language got {config.codes[0]}, the primary one"
        )
    if bad_rows:
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
    result = store.subscribers.import_rows(
        [person],
        list_name,
        store.keys.data_key(),
        default_language=config.codes[0],
        source="newsletter subscribers add",
    )
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
    for sub in open_store(load(config_path)).subscribers.all(list_name, status):
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
@click.option(
    "--excel",
    is_flag=True,
    help="For Excel: its own Unicode Text (UTF-16, tab-separated), which every Excel opens right in every language.",
)
@config_option
def subscribers_export(
    list_name: str | None, status: str | None, out_file: Path | None, excel: bool, config_path: Path | None
) -> None:
    """Write subscribers as CSV: email, name, language, status, consent and attributes.

    The file is made with the usual permissions of new files (the umask): it holds personal
    data, so keep it where only those who need it can read it."""
    from newsletter.audience.spreadsheet import write_csv, write_excel
    from newsletter.errors import BadInput, Problem

    if excel and not out_file and sys.stdout.isatty():
        raise BadInput([Problem("--excel", None, "writes a file for Excel, not text for a terminal: add --out FILE")])
    rows = open_store(load(config_path)).subscribers.export_rows(list_name, status)
    if excel:
        data = write_excel(rows)
        if out_file:
            out_file.write_bytes(data)
        else:
            sys.stdout.buffer.write(data)
        return
    text = write_csv(rows)
    if out_file:
        out_file.write_text(text, encoding="utf-8")
    else:
        shown = text if not sys.stdout.isatty() else "\n".join(terminal_safe(line) for line in text.split("\n"))
        click.echo(shown, nl=False)


@subscribers.command("show")
@click.argument("email")
@config_option
def subscribers_show(email: str, config_path: Path | None) -> None:
    """Print everything stored about EMAIL, consent included (for an access request)."""
    from newsletter.audience.record import describe

    store = open_store(load(config_path))
    record = store.reports.person(email, store.keys.data_key())
    if record is None:
        raise NotFound(f"{email!r}: nothing is stored about this address")
    for label, value in describe(record):
        click.echo(f"{label + ':':<17} {terminal_safe(value)}")


@subscribers.command("remove")
@click.argument("email")
@click.option("--list", "list_name", default=None, help="Only from this list (default: every list).")
@config_option
def subscribers_remove(email: str, list_name: str | None, config_path: Path | None) -> None:
    """Take EMAIL off a list; the person stays known. Use `forget` to erase them."""
    removed = open_store(load(config_path)).subscribers.remove_from_lists(email, list_name)
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
