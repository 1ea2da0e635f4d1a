"""The layout keeps its promises: short modules, no import cycle, a thin CLI, one home for
the database and the network, and the email templates shipped in the package."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest
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


# ---- layers: docs/architecture.md's list is the rule, read from the doc itself ----

ARCHITECTURE = ROOT / "docs" / "architecture.md"


def documented_layers() -> list[str]:
    """The first column of the table under "## Layers", top to bottom: core first, cli last."""
    section = ARCHITECTURE.read_text(encoding="utf-8").split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| layer ")]
    return [row.split("|")[1].strip().strip("`").rstrip("/") for row in rows]


def layer_of(name: str, layers: list[str]) -> str:
    """A subpackage is its own layer; the package's top-level modules and config/ are the core;
    `python -m newsletter` is the command line."""
    parts = name.split(".")
    if parts[1:] == ["__main__"]:
        return "cli"
    return parts[1] if len(parts) > 1 and parts[1] in layers else "core"


def upward_imports(graph: dict[str, set[str]], layers: list[str]) -> list[str]:
    rank = {layer: n for n, layer in enumerate(layers)}
    return sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        for target in targets
        if rank[layer_of(target, layers)] > rank[layer_of(name, layers)]
    )


def test_the_documented_layers_are_the_subpackages():
    layers = documented_layers()
    assert layers[0] == "core" and layers[-1] == "cli", layers
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")} - {"config"}
    assert set(layers[1:]) == subpackages, set(layers[1:]) ^ subpackages


def test_each_layer_imports_only_from_itself_and_the_layers_above_it():
    known = modules()
    graph = {name: {m for m in imports(path) if m in known and m != name} for name, path in known.items()}
    assert upward_imports(graph, documented_layers()) == []


def test_the_layer_check_finds_an_upward_import():
    layers = ["core", "letter", "store", "cli"]
    graph = {"newsletter.letter.a": {"newsletter.store.b", "newsletter.errors"}, "newsletter.store.b": {"newsletter.letter.a"}}
    assert upward_imports(graph, layers) == ["newsletter.letter.a imports newsletter.store.b"]


# ---- sizes the redesign promised ----

MAX_TOP_LEVEL = 8
MAX_PUBLIC_METHODS = 20
MAX_FUNCTION_LINES = 60
SHORT_FUNCTIONS_IN = ("newsletter/web",)


def test_the_top_level_holds_at_most_8_modules():
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(top) <= MAX_TOP_LEVEL, top


def long_functions(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{path.name}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_in_web_over_60_lines():
    paths = [p for p in modules().values() if str(p.relative_to(ROOT)).startswith(SHORT_FUNCTIONS_IN)]
    assert paths
    assert long_functions(paths) == []


def test_the_length_check_finds_a_long_function(tmp_path):
    body = "".join(f"    x{n} = {n}\n" for n in range(MAX_FUNCTION_LINES))
    (tmp_path / "m.py").write_text(f"def short():\n    return 1\n\n\ndef long():\n{body}", encoding="utf-8")
    found = long_functions([tmp_path / "m.py"])
    assert len(found) == 1 and "long (61 lines)" in found[0]


def public_methods(cls: type) -> list[str]:
    return sorted(name for name in dir(cls) if not name.startswith("_") and callable(getattr(cls, name)))


def test_no_class_in_the_store_has_more_than_20_public_methods():
    import importlib
    import inspect

    crowded = {}
    for name in modules():
        if not name.startswith("newsletter.store"):
            continue
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and not issubclass(cls, BaseException):
                methods = [m for m in public_methods(cls) if not hasattr(tuple, m)]  # NamedTuple's count, index
                if len(methods) > MAX_PUBLIC_METHODS:
                    crowded[f"{name}.{cls_name}"] = len(methods)
    assert not crowded, crowded


# ---- the doc's walks and network list are the code's ----

TRACE_START, TRACE_END = "<!-- trace-send -->", "<!-- /trace-send -->"
NETWORK_LIBRARIES = ("smtplib", "imaplib", "boto3", "urllib.request", "http.client")


def doc_section(title: str) -> str:
    return ARCHITECTURE.read_text(encoding="utf-8").split(f"\n## {title}", 1)[1].split("\n## ", 1)[0]


def module_name(path: str) -> str:
    return "newsletter." + path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")


def test_only_the_documented_modules_touch_the_network():
    rows = [line for line in doc_section("The network").splitlines() if line.startswith("| `")]
    documented = {module_name(row.split("`")[1]) for row in rows}
    reaching = {
        name
        for name, path in modules().items()
        if any(m == lib or m.startswith(lib + ".") for m in imports(path) for lib in NETWORK_LIBRARIES)
    }
    assert reaching == documented


def send_stations() -> list[str]:
    section = doc_section("The walk of one letter")
    return [module_name(line.split("**`", 1)[1].split("`**")[0]) for line in section.splitlines() if line[:3] in {f"{n}. " for n in range(1, 10)}]


@pytest.mark.trials  # a profiled send of its own: tens of seconds beside the fast tier's other tests
def test_the_walk_of_a_send_is_what_trace_send_prints():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NEWSLETTER_STORE_URL"}
    traced = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "trace-send")], capture_output=True, text=True, env=env, timeout=300
    )
    assert traced.returncode == 0, traced.stderr
    quoted = doc_section("The walk of one letter").split(TRACE_START, 1)[1].split(TRACE_END, 1)[0]
    assert quoted.strip().removeprefix("```").removesuffix("```").strip() == traced.stdout.strip()
    entered = set(traced.stdout.split()[:-1])
    stations = send_stations()
    assert 1 <= len(stations) <= 6, stations
    assert [s for s in stations if s not in entered] == []
