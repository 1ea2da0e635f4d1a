"""Throwaway projects with their own SQLite store, filled with subscribers.

`write_project` writes a newsletter.toml (templates pointing to this repository, like the
tests' Project helper) and links the year-end issue into issues/. `make_project` also
imports COUNT fictional subscribers (every other one Arabic) onto the list "main" in a child
process, so that the import's memory and CPU stay out of the bench process:

    python -m bench.harness.project DIR COUNT [--extra-toml TEXT]

prints one JSON line: {"count": ..., "import_s": ..., "open_s": ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bench.harness import ROOT
from bench.harness.children import run_json

YEAR_END = ROOT / "issues" / "2022-12-year-end"
ISSUE = "issues/2022-12-year-end"
LIST = "main"
# Used only when NEWSLETTER_SECRET_KEY is not already set; the bench's throwaway stores only.
BENCH_SECRET = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    if len(env.get("NEWSLETTER_SECRET_KEY", "")) < 32:
        env["NEWSLETTER_SECRET_KEY"] = BENCH_SECRET
    return env


def write_project(root: Path, extra_toml: str = "") -> Path:
    """newsletter.toml + the issue link, as tests/conftest.py's Project does. Returns the config path."""
    root.mkdir(parents=True, exist_ok=True)
    base = (ROOT / "newsletter.toml").read_text(encoding="utf-8")
    base = base.replace('layout = "bilingual"', f'layout = "bilingual"\ntemplates = "{ROOT / "templates"}"', 1)
    config_path = root / "newsletter.toml"
    config_path.write_text(base + "\n" + extra_toml, encoding="utf-8")
    (root / "issues").mkdir(exist_ok=True)
    issue = root / "issues" / "2022-12-year-end"
    if not issue.exists():
        issue.symlink_to(YEAR_END, target_is_directory=True)
    return config_path


def make_project(root: Path, count: int, env: dict[str, str], extra_toml: str = "") -> dict:
    """A project with `count` subscribers on LIST, made in a child process; its import time."""
    return run_json("bench.harness.project", str(root), str(count), "--extra-toml", extra_toml, env=env)


def people(count: int):
    from newsletter.domain import NewSubscriber

    for n in range(count):
        language = "ar" if n % 2 == 0 else "en"
        domain = "example.org" if n % 3 else "example.net"
        name = f"مشارك {n}" if language == "ar" else f"Participant {n}"
        yield NewSubscriber(f"person{n:06d}@{domain}", name, language)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=Path)
    parser.add_argument("count", type=int)
    parser.add_argument("--extra-toml", default="")
    args = parser.parse_args()

    from newsletter.config import load_config
    from newsletter.keys import secret_key
    from newsletter.store import Store

    config_path = write_project(args.dir, args.extra_toml)
    config = load_config(config_path)
    start = time.perf_counter()
    store = Store.open(config.store_url)
    open_s = time.perf_counter() - start
    rows = list(people(args.count))
    start = time.perf_counter()
    result = store.import_subscribers(rows, LIST, secret_key())
    import_s = time.perf_counter() - start
    store.close()
    if result.added != args.count:
        raise SystemExit(f"bench.harness.project: expected {args.count} added, got {result}")
    print(json.dumps({"count": args.count, "import_s": import_s, "open_s": open_s}))


if __name__ == "__main__":
    main()
