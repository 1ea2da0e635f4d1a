"""The `newsletter` group: one place that turns the project's errors into a message and an
exit status, and the options and lookups every command shares."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsletter import __version__
from newsletter.config import Config, load_config, locate_config
from newsletter.errors import BadInput, NewsletterError

if TYPE_CHECKING:
    from newsletter.store import Store


class _Group(click.Group):
    """Turns the project's errors into one clean message and the right exit status."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BadInput as exc:
            for problem in exc.problems:
                click.echo(f"Error: {problem}", err=True)
            click.echo(
                f"Aborted with {len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}; nothing was written.",
                err=True,
            )
            ctx.exit(exc.exit_code)
        except NewsletterError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)


class NotFound(NewsletterError):
    exit_code = 1


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


def load(config_path: Path | None, start: Path | None = None) -> Config:
    """The configuration a command works with (see newsletter.config.config_for)."""
    return load_config(locate_config(start or Path.cwd(), config_path))


def open_store(config: Config) -> Store:
    from newsletter.store import Store  # SQLAlchemy and Alembic only for the commands that need them

    return Store.open(config.store_url)


def echo_err(line: str) -> None:
    click.echo(line, err=True)


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def shown(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
