"""The layout keeps its promises: short modules, no import cycle, a thin CLI, one home for
the database and the network, and the email templates shipped in the package."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "newsletter"
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        found[name] = path
    return found


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return out


def test_no_module_over_400_lines():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, long


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> list[str] | None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                return [*trail, name, target]
            if target not in state and (cycle := visit(target, [*trail, name])):
                return cycle
        state[name] = "done"
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name, [])):
            return cycle
    return None


def test_no_import_cycle():
    known = modules()
    graph = {name: {m for m in imports(path) if m in known and m != name} for name, path in known.items()}
    cycle = find_cycle(graph)
    assert cycle is None, " → ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle(tmp_path):
    (tmp_path / "a.py").write_text("from newsletter.b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    import newsletter.c\n")
    (tmp_path / "c.py").write_text("import newsletter.a\n")
    graph = {f"newsletter.{n}": imports(tmp_path / f"{n}.py") & {"newsletter.a", "newsletter.b", "newsletter.c"} for n in "abc"}
    assert find_cycle(graph) == ["newsletter.a", "newsletter.b", "newsletter.c", "newsletter.a"]


def test_only_the_store_touches_the_database_and_the_cli_stays_thin():
    for name, path in modules().items():
        used = imports(path)
        if any(m == "sqlalchemy" or m.startswith(("sqlalchemy.", "alembic")) for m in used):
            assert name.startswith("newsletter.store"), f"{name} uses the database directly"
        if name.startswith("newsletter.cli"):
            assert not used & {"subprocess", "sqlite3", "psycopg", "boto3", "smtplib"}, f"{name}: {used}"


def test_email_templates_ship_in_the_wheel():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = project["tool"]["setuptools"]
    assert setuptools["package-dir"]["newsletter.templates"] == "templates"
    assert "newsletter.templates" in setuptools["packages"]
    assert setuptools["package-data"]["newsletter.templates"] == ["*.j2"]
    assert {p.name for p in (ROOT / "templates").glob("*.j2")} >= {"email.mjml.j2", "email.txt.j2", "page.html.j2"}


def test_every_package_is_listed_for_the_wheel():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(project["tool"]["setuptools"]["packages"])
    packages = {".".join(p.parent.relative_to(ROOT).parts) for p in PACKAGE.rglob("__init__.py")}
    assert packages <= listed, packages - listed
