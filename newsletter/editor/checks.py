"""Pre-send checks on a built issue: subjects, personal fields, links, images, sizes, client
support, and the spam score (newsletter.editor.spam). Each result names the variant and, where
there is one, the file and line. A send runs those that can find an error (`blocking_problems`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

from newsletter.config import EXAMPLE_ORGANISATION, Config
from newsletter.config.toml import line_of_key
from newsletter.editor.holders import Holders, field_holders, personal_fields
from newsletter.editor.inbox import check_inbox
from newsletter.editor.results import ERROR, OK, WARNING, CheckResult
from newsletter.editor.spam import SPAM_FAIL, check_spam
from newsletter.errors import Problem, Problems
from newsletter.languages import BILINGUAL, URL_LIKE
from newsletter.letter.assemble import PREHEADER_MAX, PREHEADER_MIN, SUBJECT_MAX  # what inboxes show
from newsletter.letter.images import image_lines
from newsletter.letter.render import (
    GMAIL_CLIP_BYTES,
    MESSAGE_WARNING_BYTES,
    SIZE_WARNING_BYTES,
    Build,
    build_issue,
    message_bytes,
    weight_line,
)
from newsletter.message.composer import ensure_composable
from newsletter.placeholders import CLOSE, LONG_NAMES, OPEN, Slots, person_values, unwritten

# Raw HTML is off in the letter's Markdown; this parser finds what an editor typed as HTML.
_WITH_HTML = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})

# What major clients do not support for layout, from caniemail.com's data and the
# project's rendering notes: (pattern in the final HTML, what, where it breaks).
UNSUPPORTED = [
    (re.compile(r"<bdi\b", re.I), "<bdi>", "Gmail, every Outlook and Yahoo drop it; use <span dir>"),
    (
        re.compile(r"text-align\s*:\s*(start|end)\b", re.I),
        "text-align:start/end",
        "Outlook for Windows, Yahoo and the Gmail apps ignore it; use left/right",
    ),
    (
        re.compile(r"display\s*:\s*(flex|grid)\b", re.I),
        "display:flex/grid",
        "Outlook for Windows and several webmails ignore it",
    ),
    (re.compile(r"position\s*:\s*(absolute|fixed|sticky)\b", re.I), "position", "Gmail and Outlook strip it"),
    (re.compile(r"<script\b", re.I), "<script>", "no mail client runs scripts; spam filters penalise them"),
    (re.compile(r"<form\b", re.I), "<form>", "Gmail and Outlook disable forms"),
    (
        re.compile(r"<(video|audio|iframe|object|embed|svg)\b", re.I),
        "embedded media",
        "Gmail and Outlook do not show it",
    ),
    (
        re.compile(r"<link\b[^>]*stylesheet", re.I),
        "external stylesheet",
        "Gmail drops <link> stylesheets, and loading one is a third-party request",
    ),
    (re.compile(r"@import\b", re.I), "@import", "Gmail and Outlook ignore it"),
    (re.compile(r"<mj-", re.I), "MJML left in the HTML", "an unknown MJML tag passed through"),
]


def check_issue(issue_dir: Path, config_path: Path | None = None, **options: Any) -> list[CheckResult]:
    """Build the issue (BadInput when it does not build, or a header cannot be written) and run
    every check on it, with who in the store has each personal field."""
    build = build_issue(issue_dir, config_path)
    ensure_composable(build)
    return run_checks(build, holders=field_holders(build), **options)


def run_checks(
    build: Build,
    *,
    spamassassin: bool = True,
    max_spam_score: float = SPAM_FAIL,
    blocking_only: bool = False,
    holders: Holders | None = None,
) -> list[CheckResult]:
    """Every check's results; with `blocking_only`, only those of the checks that can find an error."""
    results: list[CheckResult] = []
    if not blocking_only:  # these only warn
        results += check_inbox(build)
        results += check_subjects(build)
        results += check_personal(build, holders)
    results += check_links_and_images(build)
    results += check_raw_html(build)
    results += check_placeholders(build)
    results += check_sizes(build)
    results += check_support(build)
    if spamassassin:
        results += check_spam(build, max_score=max_spam_score)
    return results


def check_subjects(build: Build) -> list[CheckResult]:
    out = []
    issue_toml = Problems.where(build.issue.path / "issue.toml")
    lines: list[tuple[str, str | None, str | None]] = [(c, x.subject, x.preheader) for c, x in build.letters.items()]
    if BILINGUAL in build.variants:  # the bilingual inbox line where issue.toml gives one (the default is kept short)
        lines.append((BILINGUAL, build.issue.subject.get(BILINGUAL), build.issue.preheader.get(BILINGUAL)))
    for code, subject, preheader in lines:
        if subject is not None and len(subject) > SUBJECT_MAX:
            message = f"subject.{code} is {len(subject)} characters; inboxes show about {SUBJECT_MAX}"
            out.append(CheckResult("subject", WARNING, message, code, issue_toml))
        elif subject is not None:
            out.append(CheckResult("subject", OK, f"subject.{code}: {len(subject)} characters", code))
        if preheader is None:
            continue
        if not PREHEADER_MIN <= len(preheader) <= PREHEADER_MAX:
            message = f"preheader.{code} is {len(preheader)} characters; aim for {PREHEADER_MIN} to {PREHEADER_MAX}"
            out.append(CheckResult("preheader", WARNING, message, code, issue_toml))
        elif subject is not None and preheader.strip() == subject.strip():
            message = f"preheader.{code} repeats the subject; it is wasted space in the inbox"
            out.append(CheckResult("preheader", WARNING, message, code, issue_toml))
        else:
            out.append(CheckResult("preheader", OK, f"preheader.{code}: {len(preheader)} characters", code))
    return out


UNISOLATED = str.maketrans("", "", "\u2068\u2069")  # shown without the isolates around the value


def check_personal(build: Build, holders: Holders | None = None) -> list[CheckResult]:
    out: list[CheckResult] = []
    fields = personal_fields(build)
    for number, field in enumerate(fields):
        code = field.path.rsplit(".", 2)[-2] if field.path.count(".") >= 2 else build.config.primary.code
        variant = build.variants.get(code) or next(iter(build.variants.values()))
        where = f"{Problems.where(field.path)}:{field.line}"
        line = next((line for line in variant.text.split("\n") if f"{OPEN}{number}{CLOSE}" in line), "")
        fallbacks = tuple(f.fallback for f in fields)
        plain_slots = Slots(line, html=False, fallbacks=fallbacks)
        without = plain_slots.fill({}).strip()
        person = {f.column or f.name: LONG_NAMES.get(code, LONG_NAMES["en"]) for f in fields}
        long = plain_slots.fill(person_values(fields, person)).strip().translate(UNISOLATED)
        shown = f"{{{{ {field.name} }}}} reads {without!r} without a value, {long!r} with a long one"
        shown += holders.said(number, field) if holders else ""
        if not field.fallback:
            out.append(CheckResult("personal", WARNING, f'{shown}; give it a fallback: default("…")', code, where))
        else:
            level = WARNING if holders and holders.nobody(number) else OK
            out.append(CheckResult("personal", level, shown, code, where))
    return out


def _parts(build: Build):
    issue = build.issue
    for code in build.config.codes:
        for part in (issue.opening.get(code), *(s.parts[code] for s in issue.sections), issue.closing.get(code)):
            if part is not None:
                yield part


_DROPPED_LINK = re.compile(r"\]\(\s*<?\s*(javascript|vbscript|data|file):", re.I)


def check_links_and_images(build: Build) -> list[CheckResult]:
    out = []
    links = images = 0
    for part in _parts(build):
        # Markdown refuses these URLs and shows the link as plain text: tell the editor.
        for number, text in enumerate(part.body.split("\n")):
            for match in _DROPPED_LINK.finditer(text):
                where = f"{Problems.where(part.path)}:{part.body_line + number}"
                out.append(
                    CheckResult(
                        "links",
                        ERROR,
                        f"{match.group(1).lower()}: links are not allowed (shown as plain text)",
                        part.language,
                        where,
                    )
                )
        for kind, url, line in _links(part.tokens):
            where = f"{Problems.where(part.path)}:{part.body_line + (line or 0)}"
            if kind == "link":
                links += 1
                problem = _bad_link(url)
                if problem:
                    out.append(CheckResult("links", ERROR, f"{problem}: {url!r}", part.language, where))
        for text, line in _unlinked(part.tokens):  # bare URLs and addresses are links already
            where = f"{Problems.where(part.path)}:{part.body_line + (line or 0)}"
            message = f"{text!r} looks like a link but is not one; write it as <https://…> or [text](https://…)"
            out.append(CheckResult("links", WARNING, message, part.language, where))
        for src, _alt, line in image_lines(part):
            images += 1
            # The build refused every other remote image; these the editor allowed by host.
            if src in build.images.by_src and build.images.by_src[src] is None:
                message = (
                    f"{src!r} is loaded from {urlsplit(src).hostname} ([privacy] image_hosts) when the letter is "
                    "opened: that host learns when, where and by whom"
                )
                out.append(
                    CheckResult("images", WARNING, message, part.language, f"{Problems.where(part.path)}:{line}")
                )
    if not any(r.check == "links" for r in out):
        out.append(CheckResult("links", OK, f"{links} links, all absolute https, http or mailto"))
    if not any(r.check == "images" for r in out):
        out.append(CheckResult("images", OK, f"{images} images, all with alt text, all inside the message"))
    return out


def check_placeholders(build: Build) -> list[CheckResult]:
    """`[[…]]` left from `newsletter init` and `newsletter new`: text still to be written."""
    out = []
    config, issue = build.config, build.issue
    for code, name in config.organisation.items():
        for found in unwritten(name):
            out.append(
                CheckResult(
                    "placeholders",
                    ERROR,
                    f"organisation.{code}: {found} is still to be written",
                    code,
                    Problems.where(config.path),
                )
            )
    for table in ("subject", "preheader", "title"):
        for code, value in getattr(issue, table).items():
            for found in unwritten(value):
                out.append(
                    CheckResult(
                        "placeholders",
                        ERROR,
                        f"{table}.{code}: {found} is still to be written",
                        code,
                        Problems.where(issue.path / "issue.toml"),
                    )
                )
    for part in _parts(build):
        for number, line in enumerate(f"{part.title or ''}\n{part.body}".split("\n")):
            for found in unwritten(line):
                where = (
                    f"{Problems.where(part.path)}:{part.body_line + number - 1}"
                    if number
                    else Problems.where(part.path)
                )
                out.append(CheckResult("placeholders", ERROR, f"{found} is still to be written", part.language, where))
    return out or [CheckResult("placeholders", OK, "nothing left to write")]


def check_raw_html(build: Build) -> list[CheckResult]:
    """Raw HTML in Markdown is shown to the reader as text (`<b>` and all): say where."""
    out = []
    for part in _parts(build):
        for tag, line in _raw_html(part.body):
            where = f"{Problems.where(part.path)}:{part.body_line + line}"
            message = f"raw HTML {tag!r} is shown as text in the email; write Markdown (**bold**, [link](url))"
            out.append(CheckResult("html", ERROR, message, part.language, where))
    return out or [CheckResult("html", OK, "no raw HTML in the Markdown")]


# Placeholder domains: letters from them, or links to them, never reach anyone.
PLACEHOLDER_DOMAINS = ("example.org", "example.com", "example.net", "localhost")


def _placeholder(host: str) -> bool:
    host = host.lower().rstrip(".")
    return any(host == domain or host.endswith("." + domain) for domain in PLACEHOLDER_DOMAINS)


def real_send_problems(config: Config) -> list[Problem]:
    """What stops a real send (SMTP, SES) that a rehearsal allows: placeholder addresses and names."""
    found = Problems()
    for code, name in config.organisation.items():
        if name == EXAMPLE_ORGANISATION.get(code):
            message = f"organisation.{code}: {name!r} is the example's name from `newsletter init`; write yours"
            found.add(config.path, message, line=line_of_key(config.path, f"organisation.{code}"))
    host = urlsplit(config.base_url).hostname or ""
    if urlsplit(config.base_url).scheme != "https" or _placeholder(host):
        message = f"base_url: {config.base_url!r} is not where your `newsletter serve` answers; unsubscribe links would lead nowhere"
        found.add(config.path, message, line=line_of_key(config.path, "base_url"))
    if _placeholder(config.sender.rpartition("@")[2].strip("> ")):
        message = f"email.from: {config.sender!r} is a placeholder address; mail from it is refused or lost"
        found.add(config.path, message, line=line_of_key(config.path, "email.from"))
    if config.bounces and _placeholder(config.bounces.address.rpartition("@")[2]):
        message = f"bounces.address: {config.bounces.address!r} is a placeholder address; bounces sent there are lost"
        found.add(config.path, message, line=line_of_key(config.path, "bounces.address"))
    return found.items


def blocking_problems(build: Build, *, spamassassin: bool) -> list[Problem]:
    """The errors of every check, as problems that stop a send (`--skip-checks` sends anyway)."""
    return [
        Problem(r.where or r.variant or "check", None, f"{r.check}: {r.message}")
        for r in run_checks(build, spamassassin=spamassassin, blocking_only=True)
        if r.level == ERROR
    ]


def _bad_link(url: str) -> str | None:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return None if parts.netloc else "link without a host"
    if scheme == "mailto":
        return None if parts.path else "mailto link without an address"
    if not scheme:
        return "relative link (the email has no page to be relative to)"
    return f"{scheme}: links are not allowed"


def check_sizes(build: Build) -> list[CheckResult]:
    out = []
    for name, variant in build.variants.items():
        size = len(variant.html.encode("utf-8"))
        kb = f"{size / 1024:.1f} KB"
        if size > GMAIL_CLIP_BYTES:
            out.append(
                CheckResult(
                    "size", ERROR, f"{kb} of HTML: Gmail clips messages over about {GMAIL_CLIP_BYTES // 1024} KB", name
                )
            )
        elif size > SIZE_WARNING_BYTES:
            out.append(
                CheckResult(
                    "size",
                    WARNING,
                    f"{kb} of HTML: close to Gmail's clipping at about {GMAIL_CLIP_BYTES // 1024} KB",
                    name,
                )
            )
        else:
            out.append(CheckResult("size", OK, f"{kb} of HTML", name))
        if variant.images:
            heavy = message_bytes(variant) > MESSAGE_WARNING_BYTES
            advice = f"; keep it under {MESSAGE_WARNING_BYTES // 1024} KB" if heavy else ""
            out.append(CheckResult("weight", WARNING if heavy else OK, weight_line(variant) + advice, name))
    return out


def check_support(build: Build) -> list[CheckResult]:
    out = []
    for name, variant in build.variants.items():
        found = [(what, why) for pattern, what, why in UNSUPPORTED if pattern.search(variant.html)]
        for what, why in found:
            out.append(CheckResult("support", ERROR, f"{what}: {why}", name))
        if not found:
            out.append(CheckResult("support", OK, "nothing that major clients drop", name))
    return out


def _links(tokens: list[Token]) -> list[tuple[str, str, int | None]]:
    """Every link and image in `tokens` as (kind, url, line within the body), for checks."""
    found: list[tuple[str, str, int | None]] = []
    for token in tokens:
        if token.type != "inline":
            continue
        line = token.map[0] if token.map else None
        for child in token.children or []:
            if child.type == "link_open":
                found.append(("link", _attribute(child, "href"), line))
            elif child.type == "image":
                found.append(("image", _attribute(child, "src"), line))
    return found


def _unlinked(tokens: list[Token]) -> list[tuple[str, int | None]]:
    """URL-like text that is not a link (linkify did not take it, or it is in `code`), for checks."""
    found: list[tuple[str, int | None]] = []
    for token in tokens:
        if token.type != "inline":
            continue
        line = token.map[0] if token.map else None
        depth = 0
        for child in token.children or []:
            depth += {"link_open": 1, "link_close": -1}.get(child.type, 0)
            if depth == 0 and child.type in ("text", "code_inline"):
                found.extend((match.group(), line) for match in URL_LIKE.finditer(child.content))
    return found


def _raw_html(body: str) -> list[tuple[str, int]]:
    """Raw HTML an editor typed (shown as text, since HTML is off) as (tag, line within the body)."""
    found = []
    for token in _WITH_HTML.parse(body):
        line = token.map[0] if token.map else 0
        if token.type == "html_block":
            found.append((token.content.strip().split("\n")[0][:40], line))
        for child in token.children or []:
            if child.type == "html_inline" and not child.content.startswith("</"):
                found.append((child.content[:40], line))
    return found


def _attribute(token: Token, name: str) -> str:
    value = token.attrGet(name)
    return "" if value is None else str(value)
