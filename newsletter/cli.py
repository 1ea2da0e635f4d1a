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


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main() -> None:
    cli(prog_name="newsletter")


if __name__ == "__main__":
    sys.exit(main())
