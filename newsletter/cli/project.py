"""`newsletter init` and `newsletter new`: a new project, a new issue."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli.group import cli, config_option, shown


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def init(folder: Path) -> None:
    """Start a project in FOLDER: newsletter.toml (every setting shown), an example issue, .gitignore."""
    from newsletter.config import STORE_FILE, default_store_url
    from newsletter.editor.scaffold import init_project
    from newsletter.store import Store

    written = init_project(folder)
    Store.open(default_store_url(folder)).close()  # the database, created
    click.echo(f"a new project in {shown(folder)}/: {len(written)} files and {STORE_FILE}")
    click.echo(
        f"next: cd {shown(folder)}, build issues/example and open dist/example/bilingual.html, write your names and "
        "addresses in newsletter.toml, then `newsletter new SLUG`"
    )


@cli.command()
@click.argument("slug")
@click.option("--sections", default=3, show_default=True, type=int, help="Numbered sections per language.")
@click.option(
    "--issues",
    "issues_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("issues"),
    show_default=True,
    help="The folder of issues.",
)
@config_option
def new(slug: str, sections: int, issues_dir: Path, config_path: Path | None) -> None:
    """Start an issue: issues/SLUG with issue.toml, an opening, the sections and a closing per language."""
    from newsletter.editor.scaffold import new_issue

    written = new_issue(issues_dir, slug, sections=sections, config_path=config_path)
    click.echo(f"{shown(issues_dir / slug)}/: {len(written)} files; replace each [[…]] (newsletter check lists them)")
