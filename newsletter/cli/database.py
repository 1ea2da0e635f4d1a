"""`newsletter db`: the database's schema."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli.group import cli, config_option, load


@cli.group()
def db() -> None:
    """The database: its schema version, and upgrades (back it up first)."""


@db.command("status")
@config_option
def db_status(config_path: Path | None) -> None:
    """Say which schema revision the database is at, and what an upgrade would run."""
    from newsletter.store import database

    engine = database.make_engine(load(config_path).store_url)
    found = database.status(engine)
    click.echo(
        f"{database.shown(engine)}: revision {found.current or 'none (a new database)'}, this version needs {found.head}"
    )
    if found.up_to_date:
        click.echo("up to date")
    else:
        click.echo(f"`newsletter db upgrade` would run: {', '.join(found.pending)}")


@db.command("upgrade")
@config_option
def db_upgrade(config_path: Path | None) -> None:
    """Bring the database's schema up to this version (other upgrades of it wait their turn)."""
    from newsletter.store import database

    engine = database.make_engine(load(config_path).store_url)
    before = database.status(engine)
    after = database.upgrade(engine)
    if before.up_to_date:
        click.echo(f"{database.shown(engine)}: already at {after.current}; nothing to do")
    else:
        click.echo(f"{database.shown(engine)}: upgraded from {before.current or 'nothing'} to {after.current}")
