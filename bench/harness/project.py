"""Throwaway projects with their own SQLite store, filled with subscribers.

`write_project` writes a newsletter.toml as a user must for a real send: the repository's
own, its placeholder domain (news.example.org, which a real send refuses in `base_url` and
`[email] from`) replaced by the organisation's, templates pointing to the code tree's
(like the tests' Project helper), and links the year-end issue into issues/. The code tree
is this repository's, or the revision a side-by-side run measures (bench/harness/trees.py). `make_project` also
imports COUNT fictional subscribers (every other one Arabic) onto the list "main" with
`newsletter subscribers import`, in a child process as a user would.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from bench.harness.launcher import newsletter
from bench.harness.trees import code_root

ISSUE = "issues/2022-12-year-end"
LIST = "main"
# Used only when NEWSLETTER_SECRET_KEY is not already set; the bench's throwaway stores only.
BENCH_SECRET = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
# A real send refuses the repository's placeholder domain; the bench sends only to loopback
# servers, from the organisation's own domain (as the tests do).
DOMAIN = "news.cssrweb.org"


def dry_run(config: Path) -> list[str]:
    """`newsletter send --dry-run` of the year-end issue to LIST: checked, composed and counted,
    nothing sent (a dry run still names its provider: the outbox, which writes nothing)."""
    return newsletter("send", ISSUE, "--list", LIST, "--dry-run", "--provider", "outbox", config=config)


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    if len(env.get("NEWSLETTER_SECRET_KEY", "")) < 32:
        env["NEWSLETTER_SECRET_KEY"] = BENCH_SECRET
    return env


def write_project(root: Path, extra_toml: str = "") -> Path:
    """newsletter.toml + the issue link, as tests/conftest.py's Project does. Returns the config path."""
    root.mkdir(parents=True, exist_ok=True)
    code = code_root()
    base = (code / "newsletter.toml").read_text(encoding="utf-8").replace("news.example.org", DOMAIN)
    base = base.replace('layout = "bilingual"', f'layout = "bilingual"\ntemplates = "{code / "templates"}"', 1)
    config_path = root / "newsletter.toml"
    config_path.write_text(base + "\n" + extra_toml, encoding="utf-8")
    (root / "issues").mkdir(exist_ok=True)
    issue = root / "issues" / "2022-12-year-end"
    if not issue.exists():
        issue.symlink_to(code / ISSUE, target_is_directory=True)
    return config_path


def make_project(root: Path, count: int, env: dict[str, str], extra_toml: str = "") -> dict:
    """A project with `count` subscribers on LIST, imported by `newsletter subscribers import`
    (a child process, as a user would); the import's wall time, the whole command."""
    config = write_project(root, extra_toml)
    people = root / "people.csv"
    people.write_text("email,name,language\n" + "".join(f"{a},{n},{lang}\n" for a, n, lang in rows(count)), encoding="utf-8")
    start = time.perf_counter()
    result = subprocess.run(newsletter("subscribers", "import", str(people), "--list", LIST, config=config),
                            cwd=root, env=env, capture_output=True, text=True, timeout=3600)
    import_s = time.perf_counter() - start
    if result.returncode != 0 or not re.search(rf"\b{count} added\b", result.stdout):
        raise RuntimeError(f"importing {count} people: exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return {"count": count, "import_s": import_s}


def rows(count: int):
    """COUNT fictional people: address, name, language (every other one Arabic)."""
    for n in range(count):
        language = "ar" if n % 2 == 0 else "en"
        domain = "example.org" if n % 3 else "example.net"
        name = f"مشارك {n}" if language == "ar" else f"Participant {n}"
        yield f"person{n:06d}@{domain}", name, language
