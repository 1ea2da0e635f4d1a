"""The project's exceptions: one root, and bad input that lists every problem at once; and text
shown on a terminal as it is (`terminal_safe`): a stored name or address cannot move the cursor,
retitle the window, write to the clipboard or reorder the line it is printed on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


class NewsletterError(Exception):
    """Root of every error this project raises on purpose."""

    exit_code = 1


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the input: where it is and what is wrong."""

    where: str
    line: int | None
    message: str
    column: int | None = None

    def __str__(self) -> str:
        place = self.where
        if self.line is not None:
            place += f":{self.line}"
            if self.column is not None:
                place += f":{self.column}"
        return f"{place}: {self.message}"


class BadInput(NewsletterError):
    """The input cannot be used; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        # The same template fault shows up once per variant: report it once.
        self.problems = sorted(set(problems), key=lambda p: (p.where, p.line or 0, p.column or 0, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, where: str, message: str, line: int | None = None) -> BadInput:
        return cls([Problem(where, line, message)])


class Problems:
    """Collects problems while a loader keeps going, so one run reports them all."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    @staticmethod
    def where(path: Path | str) -> str:
        """The path as the user would type it: relative to the current folder when inside it."""
        path = Path(path)
        try:
            return str(path.resolve().relative_to(Path.cwd().resolve()))
        except (ValueError, OSError):
            return str(path)

    def add(self, path: Path | str, message: str, line: int | None = None, column: int | None = None) -> None:
        self.items.append(Problem(self.where(path), line, message, column))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise BadInput(self.items)


# C0, DEL and C1 (escape sequences start with ESC or CSI), the line and paragraph separators
# (a new line to some terminals), and the bidi embeddings, overrides and isolates (they reorder
# what follows them on the line). The marks (U+200E, U+200F, U+061C) and joiners stay: Arabic
# and mixed text use them and they reorder nothing.
CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """`text` with every control character written as an escape (`\\x1b`, `\\u202e`); all else,
    Arabic included, unchanged. For one field: a tab or a new line in it is escaped too."""
    return CONTROLS.sub(_escaped, text)
