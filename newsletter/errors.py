"""The project's exceptions: one root, and bad input that lists every problem at once."""

from __future__ import annotations

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

    def __str__(self) -> str:
        place = self.where if self.line is None else f"{self.where}:{self.line}"
        return f"{place}: {self.message}"


class BadInput(NewsletterError):
    """The input cannot be used; carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.where, p.line or 0))
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, where: str, message: str, line: int | None = None) -> "BadInput":
        return cls([Problem(where, line, message)])


class Problems:
    """Collects problems while a loader keeps going, so one run reports them all."""

    def __init__(self, root: Path | None = None):
        self.root = root
        self.items: list[Problem] = []

    def where(self, path: Path | str) -> str:
        path = Path(path)
        if self.root is not None:
            try:
                return str(path.relative_to(self.root))
            except ValueError:
                pass
        return str(path)

    def add(self, path: Path | str, message: str, line: int | None = None) -> None:
        self.items.append(Problem(self.where(path), line, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise BadInput(self.items)
