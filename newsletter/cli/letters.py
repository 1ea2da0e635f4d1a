"""Commands on an issue: build, check, preview."""

from __future__ import annotations

import json
from pathlib import Path

import click

from newsletter.cli.group import cli, config_option, echo_err, shown


@cli.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: dist/<slug>).",
)
@config_option
def build(issue_dir: Path, out_dir: Path | None, config_path: Path | None) -> None:
    """Render every variant of ISSUE_DIR to HTML, plain text and a sample .eml."""
    from newsletter.editor.output import write_build
    from newsletter.letter.render import build_issue

    result = build_issue(issue_dir, config_path)
    target, files = write_build(result, out_dir)
    for name in result.variants:
        html = len(files[f"{name}.html"])
        text = len(files[f"{name}.txt"])
        eml = len(files[f"{name}.eml"])
        click.echo(f"{name:<10} html {html / 1024:6.1f} KB   text {text / 1024:5.1f} KB   eml {eml / 1024:6.1f} KB")
    for warning in result.warnings():
        echo_err(f"Warning: {warning}")
    click.echo(f"Wrote {len(files)} files to {shown(target)}/")


@cli.command()
@click.argument("issue_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--max-spam-score",
    type=float,
    default=5.0,
    show_default=True,
    help="SpamAssassin score above which the check fails.",
)
@click.option("--no-spamassassin", is_flag=True, help="Skip the SpamAssassin score.")
@config_option
def check(issue_dir: Path, fmt: str, max_spam_score: float, no_spamassassin: bool, config_path: Path | None) -> None:
    """Check ISSUE_DIR before sending: exit 0 when clean, 1 when a check failed, 2 on bad input."""
    from newsletter.editor.checks import check_issue
    from newsletter.editor.results import ERROR, OK, failed

    results = check_issue(issue_dir, config_path, spamassassin=not no_spamassassin, max_spam_score=max_spam_score)
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
@click.option(
    "--port",
    default=8008,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port on 127.0.0.1; 0 picks a free one.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the preview in the web browser.")
@config_option
def preview(issue_dir: Path, port: int, open_browser: bool, config_path: Path | None) -> None:
    """Serve a live preview of ISSUE_DIR on 127.0.0.1, rebuilt whenever a file changes.

    Every variant at desktop and phone width, the plain text, the inbox lines, sizes and
    checks; a failing build shows its problems until they are fixed. Ctrl-C stops.
    """
    from newsletter.web.preview import serve

    serve(issue_dir, config_path=config_path, port=port, open_browser=open_browser)
