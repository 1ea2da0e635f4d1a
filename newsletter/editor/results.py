"""One check's result, as `check`, the preview page and `send` show it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

OK, WARNING, ERROR = "ok", "warning", "error"


@dataclass(frozen=True)
class CheckResult:
    check: str
    level: str  # ok, warning, error
    message: str
    variant: str | None = None
    where: str | None = None  # file[:line]
    score: float | None = None
    rules: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        data = asdict(self)
        data["rules"] = list(self.rules)
        return data

    def __str__(self) -> str:
        parts = [f"{self.level.upper():7}", self.check]
        if self.variant:
            parts.append(f"[{self.variant}]")
        line = " ".join(parts) + ": "
        if self.where:
            line += f"{self.where}: "
        return line + self.message


def failed(results: list[CheckResult]) -> bool:
    return any(r.level == ERROR for r in results)
