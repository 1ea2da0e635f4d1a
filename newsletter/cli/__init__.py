"""The `newsletter` command: a thin click layer. Each command parses its options, calls one
library function and prints what it returned; errors become one message and an exit status."""

from __future__ import annotations

from newsletter.cli import (  # noqa: F401
    archive,
    campaigns,
    database,
    feedback,
    keys,
    letters,
    project,
    sending,
    signup,
    subscribers,
)
from newsletter.cli.group import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="newsletter")
