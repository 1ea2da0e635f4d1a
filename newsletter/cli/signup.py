"""`newsletter signup-form`: the sign-up form to paste into the organisation's own site."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli.group import cli, config_option, load
from newsletter.errors import BadInput, Problem


@cli.command("signup-form")
@click.option("--lang", "languages", multiple=True, help="Only this language (repeatable); default: every one.")
@config_option
def signup_form(languages: tuple[str, ...], config_path: Path | None) -> None:
    """Print the sign-up form as plain HTML (no script, nothing fetched), posting to
    BASE_URL/subscribe of `newsletter serve`. Needs [signup] in newsletter.toml."""
    from newsletter.web.embed import signup_form_html

    config = load(config_path)
    if config.signup is None:
        raise BadInput([Problem(str(config.path), None, 'signup: missing; add a [signup] table with list = "…"')])
    unknown = [code for code in languages if code not in config.codes]
    if unknown:
        raise BadInput([Problem("--lang", None, f"{unknown[0]!r} is not one of {', '.join(config.codes)}")])
    click.echo(signup_form_html(config, list(languages) or None), nl=False)
