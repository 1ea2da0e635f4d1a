"""The SpamAssassin score of each variant's sample message: `spamassassin -L -t` as a
local subprocess (local tests only, no network)."""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from newsletter.editor.results import ERROR, OK, WARNING, CheckResult
from newsletter.errors import NewsletterError
from newsletter.message.composer import sample_message

if TYPE_CHECKING:
    from newsletter.letter.render import Build

SPAM_WARN = 1.0
SPAM_FAIL = 5.0  # SpamAssassin's own "required" score


class CheckUnavailable(NewsletterError):
    exit_code = 2


_SCORE = re.compile(r"^Content analysis details:\s+\((-?[\d.]+) points", re.M)
_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s", re.M)


def spamassassin_score(message: bytes, timeout: float = 60) -> tuple[float, list[tuple[float, str]]]:
    """(score, [(points, rule)]) from `spamassassin -L -t` (local tests only)."""
    executable = shutil.which("spamassassin")
    if executable is None:
        raise CheckUnavailable("spamassassin: not installed (Debian package spamassassin; scripts/setup installs it)")
    proc = subprocess.run([executable, "-L", "-t"], input=message, capture_output=True, timeout=timeout)
    report = proc.stdout.decode("utf-8", "replace")
    match = _SCORE.search(report)
    if match is None:
        raise CheckUnavailable(f"spamassassin: no score in its output: {proc.stderr.decode('utf-8', 'replace')[:300]}")
    details = report[match.end() :].split("\n\n", 1)[0]  # the table only, not the report's repeats
    rules = [(float(points), name) for points, name in _RULE.findall(details)]
    return float(match.group(1)), rules


def check_spam(build: Build, *, max_score: float = SPAM_FAIL) -> list[CheckResult]:
    names = list(build.variants)
    with ThreadPoolExecutor(max_workers=len(names)) as pool:  # about a second each: run them side by side
        scores = list(pool.map(lambda n: spamassassin_score(sample_message(build.variants[n], build.config)), names))
    out = []
    for name, (score, rules) in zip(names, scores, strict=False):
        score = score + 0.0 if score else 0.0  # SpamAssassin prints -0.0
        fired = tuple(f"{rule} {points:g}" for points, rule in rules if points != 0)
        listing = ", ".join(fired) if fired else "no scoring rule fired"
        if score > max_score:
            level = ERROR
        elif score > SPAM_WARN:
            level = WARNING
        else:
            level = OK
        out.append(
            CheckResult(
                "spamassassin",
                level,
                f"score {score:g} (limit {max_score:g}): {listing}",
                name,
                score=score,
                rules=fired,
            )
        )
    return out
