"""`newsletter keys`: the store's key."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli.group import cli, config_option, load, open_store


@cli.group()
def keys() -> None:
    """The key that opens the store (NEWSLETTER_SECRET_KEY)."""


@keys.command("rotate")
@config_option
def keys_rotate(config_path: Path | None) -> None:
    """Lock the store with NEWSLETTER_SECRET_KEY, opened with the old key given in
    NEWSLETTER_OLD_SECRET_KEYS. Afterwards the old key opens nothing and can be retired; links
    already sent and suppressions keep working."""
    if open_store(load(config_path)).keys.rotate():
        click.echo("the store is now locked with NEWSLETTER_SECRET_KEY; NEWSLETTER_OLD_SECRET_KEYS can be removed")
    else:
        click.echo("the store is already locked with NEWSLETTER_SECRET_KEY; nothing to do")
