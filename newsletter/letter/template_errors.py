"""Where a template went wrong: a Jinja2 error's template line, an MJML error's template tag.

Reached only when a build fails; the render itself is `newsletter.letter.render`."""

from __future__ import annotations

import re
from pathlib import Path
from types import TracebackType

from newsletter.config import Config
from newsletter.errors import Problem, Problems

HTML_TEMPLATE = "email.mjml.j2"
_POSITION = re.compile(r"\s*at position (\d+):(\d+)")


def template_frame(tb: TracebackType | None, folder: Path) -> tuple[Path | None, int | None]:
    """The innermost traceback frame inside a template (Jinja2 rewrites them to template lines)."""
    found: tuple[Path | None, int | None] = (None, None)
    root = str(folder.resolve())
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(root):
            found = (Path(filename), tb.tb_lineno)
        tb = tb.tb_next
    return found


def mjml_error(source: str, message: str, config: Config, problems: Problems) -> None:
    """mjml-python's error, at the template tag it names when it gives a position."""
    match = _POSITION.search(message)
    reason = _POSITION.sub("", message)
    if match:
        start = int(match.group(1))
        problems.items.append(_locate(source, start, int(match.group(2)), f"MJML error: {reason}", config, problems))
    else:
        problems.add(config.templates / HTML_TEMPLATE, f"MJML error: {reason}")


def leftover_tag(source: str, tag: str, config: Config, problems: Problems) -> None:
    """An MJML tag mjml-python passed through as text, at the template tag that wrote it."""
    encoded = source.encode("utf-8")
    needle = tag.encode()
    at = encoded.find(needle)
    if at < 0:
        problems.add(config.templates / HTML_TEMPLATE, f"MJML left {tag!r} in the HTML: unknown or misplaced MJML tag")
    else:
        message = f"unknown or misplaced MJML tag {tag + '>'!r} left in the HTML"
        problems.items.append(_locate(source, at + 1, at + len(needle), message, config, problems))


def _locate(source: str, start: int, end: int, message: str, config: Config, problems: Problems) -> Problem:
    """Turn a UTF-8 byte span in the generated MJML into a template file, line and column.

    Jinja2 keeps no output-to-source map, so the tag text is looked up in the templates;
    when it is not found there, the position in the generated MJML is given instead.
    """
    encoded = source.encode("utf-8")
    snippet = encoded[max(start - 1, 0) : end].decode("utf-8", "replace").strip()
    line_start = encoded.rfind(b"\n", 0, start) + 1
    generated_line = encoded.count(b"\n", 0, start) + 1
    generated_col = len(encoded[line_start:start].decode("utf-8", "replace")) + 1
    token = snippet if snippet.startswith("<") else f"<{snippet}" if snippet else ""
    if token:
        for template in sorted(config.templates.glob("*.j2")):
            lines = template.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines, 1):
                col = line.find(token)
                if col >= 0 and _tag_boundary(line, col + len(token)):
                    return Problem(problems.where(template), number, message, col + 1)
    return Problem(
        problems.where(config.templates / HTML_TEMPLATE),
        None,
        f"{message} (generated MJML line {generated_line}, column {generated_col}: {snippet!r})",
    )


def _tag_boundary(line: str, index: int) -> bool:
    return index >= len(line) or not (line[index].isalnum() or line[index] == "-")
