"""The `newsletter` command: a thin click layer. Each command parses its options, calls one
library function and prints what it returned; errors become one message and an exit status."""

from __future__ import annotations

from newsletter.cli import campaigns, feedback, keys, letters, sending, subscribers  # noqa: F401 - they register commands
from newsletter.cli.group import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="newsletter")
