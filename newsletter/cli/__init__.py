"""The `newsletter` command: a thin click layer. Each command parses its options, calls one
library function and prints what it returned; errors become one message and an exit status.
A command's module is imported only when that command runs (see group.COMMANDS)."""

from __future__ import annotations

from newsletter.cli.group import cli, main

__all__ = ["cli", "main"]
