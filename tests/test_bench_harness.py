"""The bench's own instruments: the SQL statement counter (bench/harness/sqlcount.py) must
count what the database runs, an executemany as its parameter sets; a side-by-side run's
processes must import the measured tree's `newsletter` (bench/harness/trees.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.against import choose
from bench.harness import ROOT
from bench.harness.children import module_command
from bench.harness.sqlcount import sql_env, totals
from bench.harness.trees import active, code_root, make_tree, measuring, newsletter_file

STATEMENTS = """
from sqlalchemy import create_engine, text
engine = create_engine("sqlite://")
with engine.begin() as conn:
    conn.execute(text("CREATE TABLE t (x INTEGER)"))
    conn.execute(text("INSERT INTO t VALUES (:x)"), [{"x": 1}, {"x": 2}, {"x": 3}])
    conn.execute(text("SELECT count(*) FROM t")).scalar_one()
"""


def test_sql_statements_counted_in_a_child_process(tmp_path):
    env = sql_env({k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, tmp_path / "sql")
    subprocess.run([sys.executable, "-c", STATEMENTS], cwd=tmp_path, env=env, check=True, timeout=60)
    found = totals(tmp_path / "sql")
    assert found["processes"] == 1
    assert (found["statements"], found["cursor_calls"], found["executemany_calls"]) == (5, 3, 1)
    assert found["sqlite_traced"] >= 5  # SQLite's own trace: those, and the driver's BEGIN/COMMIT


def test_measured_processes_import_the_trees_newsletter(tmp_path):
    tree_root = tmp_path / "old"
    (tree_root / "newsletter").mkdir(parents=True)
    (tree_root / "newsletter" / "__init__.py").write_text("", encoding="utf-8")
    tree = make_tree("old", "a revision", tree_root, tmp_path / "scratch")
    assert newsletter_file(tree, tmp_path) == str(tree_root / "newsletter" / "__init__.py")
    before = os.environ.get("PYTHONPATH")
    with measuring(tree):
        assert active() is tree and code_root() == tree_root
        assert module_command("bench.harness.bulk")[1] == "-P"  # this root's newsletter kept off sys.path
        # a helper started from this root finds this tree's bench and the tree's newsletter
        probe = subprocess.run([*module_command("bench.harness.trees")[:2], "-c",
                                "import bench, newsletter; print(bench.__file__); print(newsletter.__file__)"],
                               cwd=ROOT, capture_output=True, text=True, check=True, timeout=60).stdout.split()
    assert os.path.realpath(probe[0]) == str(ROOT / "bench" / "__init__.py")
    assert probe[1] == str(tree_root / "newsletter" / "__init__.py")
    assert active() is None and os.environ.get("PYTHONPATH") == before


def test_unknown_measure_named(capsys):
    with pytest.raises(SystemExit) as stopped:
        choose("smtp,nothing")
    assert stopped.value.code == 2
    assert "nothing: not a measure" in capsys.readouterr().err
    assert choose(None) == ["smtp", "ses", "unsubscribe", "startup"]
