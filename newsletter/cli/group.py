"""The `newsletter` group: one place that turns the project's errors into a message and an
exit status, and the options and lookups every command shares.

Commands are imported only when they run or show their help: `newsletter --help` reads their
names and short help from COMMANDS, so it pays for click alone (a test keeps COMMANDS true)."""

from __future__ import annotations

import contextlib
import importlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsletter import __version__

if TYPE_CHECKING:
    from newsletter.config import Config
    from newsletter.store import Store

# command → (the module under newsletter.cli that defines it, its short help as click makes it)
COMMANDS: dict[str, tuple[str, str]] = {
    "archive": ("archive", "The public archive of published letters (also under /archive/ in `newsletter serve`)."),
    "build": ("letters", "Render every variant of ISSUE_DIR to HTML, plain text and a sample .eml."),
    "campaign": ("campaigns", "One campaign: show it, or cancel it."),
    "campaigns": ("campaigns", "Every campaign: number, issue, lists, provider, started, state and counts."),
    "check": ("letters", "Check ISSUE_DIR before sending: exit 0 when clean, 1 when a check failed, 2 on bad input."),
    "db": ("database", "The database: its schema version, and upgrades (back it up first)."),
    "feedback": ("feedback", "Bounces and complaints: SES's from an SQS queue, SMTP's from the bounce mailbox."),
    "init": (
        "project",
        "Start a project in FOLDER: newsletter.toml (every setting shown), an example issue, .gitignore.",
    ),
    "keys": ("keys", "The key that opens the store (NEWSLETTER_SECRET_KEY)."),
    "new": (
        "project",
        "Start an issue: issues/SLUG with issue.toml, an opening, the sections and a closing per language.",
    ),
    "preview": ("letters", "Serve a live preview of ISSUE_DIR on 127.0.0.1, rebuilt whenever a file changes."),
    "report": (
        "feedback",
        "Per campaign and language: recipients, sent, failed, uncertain, bounces, complaints, unsubscribes.",
    ),
    "send": ("sending", "Send ISSUE_DIR to every active subscriber of the lists, one message each."),
    "serve": (
        "feedback",
        "Serve the unsubscribe pages, the SNS endpoint for SES feedback and /healthz, until SIGTERM.",
    ),
    "signup-form": (
        "signup",
        "Print the sign-up form as plain HTML (no script, nothing fetched), posting to BASE_URL/subscribe of `newsletter serve`.",
    ),
    "subscribers": ("subscribers", "Import, list, export and erase subscribers."),
    "worker": ("sending", "Help send CAMPAIGN (its number or issue slug) from this machine; needs PostgreSQL."),
}


class _Suggesting(click.Group):
    """A group that suggests the command meant by a mistyped one (the subcommands' groups too)."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """As click does, with "Did you mean 'send'?" among every command, imported or not."""
        name = args[0] if args else ""
        if name and not name.startswith("-") and not ctx.resilient_parsing and self.get_command(ctx, name) is None:
            import difflib  # only for a mistyped command

            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            if close:
                ctx.fail(f"No such command {name!r}. Did you mean {close[0]!r}?")
        return super().resolve_command(ctx, args)


class _Group(_Suggesting):
    """Imports a command's module on first use, and turns the project's errors into one clean
    message and the right exit status."""

    group_class = _Suggesting  # `@cli.group()` makes groups that suggest too

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f"newsletter.cli.{COMMANDS[cmd_name][0]}")  # registers its commands on `cli`
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click does, but a command not imported yet shows its short help from COMMANDS."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.get(name) or click.Command(name, help=COMMANDS[name][1])
            if not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        from newsletter.errors import BadInput, NewsletterError  # every command imports them; --help does not

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


class NotFound(click.ClickException):
    """What a command was asked about is not there: `Error: …` and exit status 1, as click shows it."""


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
    from newsletter.config import load_config, locate_config

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


def main() -> None:
    """The `newsletter` command (the console script)."""
    cli(prog_name="newsletter")


# Ctrl-C and SIGTERM for long-running commands (send, worker, serve, the pollers): the first
# asks to stop, the second stops now.
@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, say: Callable[[str], None], message: str) -> Iterator[None]:
    """While inside, SIGINT or SIGTERM sets `stop` (after saying `message`); a second one
    raises KeyboardInterrupt.

    Setting a flag rather than raising keeps bookkeeping exact: an exception could land
    between taking a result off a queue and recording it.
    """

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        say(message)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
