"""SQL statements counted in every process of a measured command, without changing it.

`sql_env(env, out_dir)` returns an environment whose PYTHONPATH starts with a throwaway
`sitecustomize.py` (as bench/harness/profiling.py does for cProfile): every Python process
started with it (`newsletter send`, its `newsletter worker` children) listens to
SQLAlchemy's `before_cursor_execute` on the `Engine` class, so every engine the process
makes is counted, and at exit writes out_dir/<pid>.json:

- `statements`: what the database runs: one per `cursor.execute`, and for an executemany
  one per parameter set (an INSERT of 500 rows through executemany is 500 statements);
- `cursor_calls`: calls into the driver (an executemany is one);
- on SQLite, `sqlite_traced`: every statement SQLite itself ran (its trace callback: the
  above, and the driver's own BEGIN and COMMIT, and the PRAGMAs on connect), of which
  `sqlite_begins` transactions;
- `executemany_calls`, `argv`, and `newsletter`: the file the process imported the package
  from (the check that a side-by-side run measured the code it meant to).

`statements` leaves out what a process runs on the DBAPI connection without SQLAlchemy
(the store's PRAGMAs on connect) and the driver's BEGIN/COMMIT. SQLAlchemy's "insertmanyvalues" batches reach the event once
per batch: one statement each, which is what the database runs. The listener costs a few
µs per statement (about 0.02 ms a message at today's 3.8 statements). `totals(out_dir)`
adds the processes up. Only one sitecustomize is imported per process: not with profiling.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SITECUSTOMIZE = r'''
import atexit, json, os, sys, threading

_out = os.environ.get("BENCH_SQL_COUNT_DIR")
if _out and sys.argv and not sys.flags.no_site:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _lock = threading.Lock()
    _counts = {"statements": 0, "cursor_calls": 0, "executemany_calls": 0, "sqlite_traced": 0, "sqlite_begins": 0}

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):
        many = len(parameters) if executemany and parameters is not None else 1
        with _lock:
            _counts["cursor_calls"] += 1
            _counts["statements"] += many
            if executemany:
                _counts["executemany_calls"] += 1

    def _traced(statement):
        with _lock:
            _counts["sqlite_traced"] += 1
            if statement.startswith("BEGIN"):
                _counts["sqlite_begins"] += 1

    @event.listens_for(Engine, "connect")
    def _trace(dbapi_connection, record):
        if hasattr(dbapi_connection, "set_trace_callback"):  # sqlite3: what SQLite itself runs
            dbapi_connection.set_trace_callback(_traced)

    @atexit.register
    def _write():
        package = sys.modules.get("newsletter")
        record = dict(_counts, pid=os.getpid(), argv=sys.argv, newsletter=getattr(package, "__file__", None))
        with open(os.path.join(_out, f"{os.getpid()}.json"), "w", encoding="utf-8") as handle:
            json.dump(record, handle)
'''


def sql_env(env: dict[str, str], out_dir: Path) -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    site = out_dir / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env = dict(env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH", "")]))
    env["BENCH_SQL_COUNT_DIR"] = str(out_dir)
    return env


def totals(out_dir: Path) -> dict:
    """The processes' counts added up, with the files each imported `newsletter` from."""
    records = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(out_dir.glob("*.json"))]
    keys = ("statements", "cursor_calls", "executemany_calls", "sqlite_traced", "sqlite_begins")
    out = {key: sum(r.get(key, 0) for r in records) for key in keys}
    out["processes"] = len(records)
    out["newsletter_from"] = sorted({r["newsletter"] for r in records if r["newsletter"]})
    out["by_process"] = [{"argv": " ".join(r["argv"][1:3]), "statements": r["statements"], "cursor_calls": r["cursor_calls"]}
                         for r in records]
    return out
