"""`python -m newsletter.config --markdown` prints README's table of settings, `--scaffold` the
newsletter.toml `newsletter init` writes, and `--readme README.md` rewrites the table in place."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from newsletter.config.document import markdown_table, readme_with_table, scaffold_toml


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m newsletter.config", description=__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--markdown", action="store_true", help="print README's table of settings")
    which.add_argument("--scaffold", action="store_true", help="print the newsletter.toml of `newsletter init`")
    which.add_argument("--readme", type=Path, metavar="FILE", help="rewrite the table between FILE's markers")
    wanted = parser.parse_args()
    if wanted.readme:
        text = wanted.readme.read_text(encoding="utf-8")
        wanted.readme.write_text(readme_with_table(text), encoding="utf-8")
    else:
        sys.stdout.write(markdown_table() if wanted.markdown else scaffold_toml())
    return 0


if __name__ == "__main__":
    sys.exit(main())
