"""`newsletter archive build` and `newsletter archive publish`: the public archive."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli.group import cli, config_option, load, open_store, plural, shown


@cli.group()
def archive() -> None:
    """The public archive of published letters (also under /archive/ in `newsletter serve`)."""


@archive.command("build")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write the static site to (replaced as a whole).",
)
@config_option
def build_site(out_dir: Path, config_path: Path | None) -> None:
    """Write the archive as a static site: an index and an Atom feed per language, each published issue's pages."""
    from newsletter.archive.site import write_site

    config = load(config_path)
    target, files = write_site(config, open_store(config), out_dir)
    issues = {name.split("/", 1)[0] for name in files if "/" in name}
    click.echo(f"Wrote {plural(len(files), 'file')} ({plural(len(issues), 'published issue')}) to {shown(target)}/")


@archive.command("publish")
@click.argument("issue_dir", type=click.Path(path_type=Path))
@config_option
def publish_issue(issue_dir: Path, config_path: Path | None) -> None:
    """Publish ISSUE_DIR in the archive now (again: its pages are made anew, its date kept)."""
    from newsletter.archive.publish import publish
    from newsletter.letter.render import build_issue

    build = build_issue(issue_dir, config_path)
    published = publish(open_store(build.config), build)
    click.echo(f"Published {published.slug}:" if published.written else f"{published.slug} was published already:")
    for name, url in published.urls.items():
        click.echo(f"  {name:<10} {url}")
