"""What each variant's inbox line says as it is sent, its subject and preheader, and whether one
had to be shortened to fit: shown by `check`, the preview, and `send` before it asks and in a dry
run. The bilingual line is issue.toml's `subject.bilingual` and `preheader.bilingual`, or each
language's joined (`newsletter.letter.assemble.inbox_line`)."""

from __future__ import annotations

from collections.abc import Iterable

from newsletter.editor.results import OK, WARNING, CheckResult
from newsletter.errors import Problems
from newsletter.letter.assemble import PREHEADER_MAX, SUBJECT_MAX, InboxLine, inbox_lines
from newsletter.letter.render import Build


def sent_lines(build: Build, names: Iterable[str] | None = None) -> dict[str, InboxLine]:
    """The inbox line of each variant named (default: every variant built), as the composer sends it."""
    lines = inbox_lines(build.letters)
    return {name: lines[name] for name in (build.variants if names is None else names) if name in lines}


def as_sent(name: str, line: InboxLine) -> tuple[str, str]:
    return f"subject ({name}, as sent): {line.subject}", f"preheader ({name}, as sent): {line.preheader}"


def shortened_advice(key: str, long: str) -> str:
    """Why a bilingual subject or preheader reads as it does, and how to choose its words."""
    limit = SUBJECT_MAX if key == "subject" else PREHEADER_MAX
    return (
        f"{key} (bilingual) shortened to fit {limit} characters: each language's joined make {len(long)}; "
        f"write {key}.bilingual in issue.toml to choose its words"
    )


def check_inbox(build: Build) -> list[CheckResult]:
    """Each variant's subject and preheader as sent, and a warning for each one that was shortened."""
    issue_toml = Problems.where(build.issue.path / "issue.toml")
    out: list[CheckResult] = []
    for name, line in sent_lines(build).items():
        subject, preheader = as_sent(name, line)
        out += [CheckResult("subject", OK, subject, name), CheckResult("preheader", OK, preheader, name)]
        for key, long in line.shortened.items():
            out.append(CheckResult(key, WARNING, shortened_advice(key, long), name, issue_toml))
    return out


def before_sending(build: Build, names: Iterable[str]) -> list[str]:
    """What `send` shows of the variants it sends, before it asks and in a dry run."""
    out: list[str] = []
    for name, line in sent_lines(build, names).items():
        out += [f"{name}, as sent:", f"  Subject: {line.subject}", f"  Preheader: {line.preheader}"]
        out += [f"  Warning: {shortened_advice(key, long)}" for key, long in line.shortened.items()]
    return out
