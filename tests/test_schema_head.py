"""The schema's revision as the code states it (newsletter.store.database.HEAD) is the
migrations' own head, and a command on a current database does not load alembic at all
(importing it cost every command 0.19 s, its script directory every migration module)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from newsletter.store import database


def test_the_stated_head_is_the_migrations_head():
    from alembic.script import ScriptDirectory

    assert database.head() == ScriptDirectory.from_config(database._config()).get_current_head()


OPEN = """
import sys
from newsletter.store import Store
store = Store.open(sys.argv[1])
store.close()
print("alembic" in sys.modules)
"""


def test_a_current_database_is_opened_without_alembic_and_a_new_one_created_with_it(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"

    def opened() -> str:
        result = subprocess.run([sys.executable, "-c", OPEN, url], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert opened() == "True"  # created: the migrations ran
    assert opened() == "False"  # current: one query of the version table
    assert database.status(database.make_engine(url)).current == database.HEAD
