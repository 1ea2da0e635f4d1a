"""New projects and new issues. `newsletter init` writes newsletter.toml (the example names and
addresses a real send refuses) and an example letter written out in both languages, which
builds, checks and reads at once; `newsletter new` writes an issue whose every text is a
`[[…]]` placeholder, which `check` and a send report until it is written."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from newsletter.config import CONFIG_NAME, STORE_FILE, load_config, locate_config
from newsletter.config.document import scaffold_toml
from newsletter.editor.example import EXAMPLE_SLUG, example_files
from newsletter.errors import BadInput, Problem

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,80}")

GITIGNORE = f"""# the database, what was sent and what was built
{STORE_FILE}*
*.lock
outbox/
dist/
"""

WORDS = {
    "ar": {"subject": "[[موضوع الرسالة]]", "preheader": "[[سطر يظهر بعد الموضوع في صندوق البريد]]",
           "opening": "[[التحية والمقدمة]]", "section": "[[عنوان القسم {n}]]", "body": "[[نص القسم {n}]]",
           "closing": "[[الختام والتوقيع]]"},
    "en": {"subject": "[[Subject of the letter]]", "preheader": "[[A line the inbox shows after the subject]]",
           "opening": "[[Greeting and lead]]", "section": "[[Title of section {n}]]", "body": "[[Text of section {n}]]",
           "closing": "[[Closing words and signature]]"},
}  # fmt: skip
# the bilingual letter's subject, written rather than cut from the two (see `newsletter check`)
BILINGUAL_SUBJECT = "[[The subject in every language, the primary one first]]"


def _words(code: str) -> dict[str, str]:
    return WORDS.get(code, WORDS["en"])


def init_project(folder: Path) -> list[Path]:
    """A new project in `folder` (new or empty): newsletter.toml, .gitignore and the example
    letter. Returns what was written."""
    if folder.exists() and any(folder.iterdir()):
        raise BadInput.single(str(folder), "not empty: a new project goes into a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_NAME).write_text(scaffold_toml(), encoding="utf-8")
    (folder / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    (folder / "issues").mkdir()
    written = [folder / CONFIG_NAME, folder / ".gitignore"]
    codes = load_config(folder / CONFIG_NAME).codes
    return written + _write(folder / "issues" / EXAMPLE_SLUG, example_files(codes, dt.date.today()))


def new_issue(where: Path, slug: str, *, sections: int, config_path: Path | None = None) -> list[Path]:
    """A new issue folder `where/slug` with issue.toml, an opening, `sections` sections and a
    closing in every language of newsletter.toml, each with placeholders to replace."""
    problems = []
    if not SLUG.fullmatch(slug):
        problems.append(Problem("SLUG", None, f"{slug!r}: lower-case letters, digits and hyphens, e.g. 2023-03-spring"))
    if not 1 <= sections <= 20:
        problems.append(Problem("--sections", None, f"expected 1 to 20, got {sections}"))
    if problems:
        raise BadInput(problems)
    if (where / slug).exists():
        raise BadInput.single(str(where / slug), "already exists: choose another name")
    codes = load_config(locate_config(where, config_path)).codes
    toml = [f"date = {dt.date.today().isoformat()}", ""]
    for table in ("subject", "preheader"):
        toml += [f"[{table}]", *(f'{code} = "{_words(code)[table]}"' for code in codes)]
        toml += [f'bilingual = "{BILINGUAL_SUBJECT}"'] if table == "subject" and len(codes) > 1 else []
        toml += [""]
    files = {"issue.toml": "\n".join(toml)}
    for code in codes:
        words = _words(code)
        files[f"opening.{code}.md"] = words["opening"] + "\n"
        for n in range(1, sections + 1):
            title, body = words["section"].format(n=n), words["body"].format(n=n)
            files[f"{n:02d}-section-{n}.{code}.md"] = f"# {title}\n\n{body}\n"
        files[f"closing.{code}.md"] = words["closing"] + "\n"
    return _write(where / slug, files)


def _write(folder: Path, files: dict[str, str]) -> list[Path]:
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    return [folder / name for name in files]
