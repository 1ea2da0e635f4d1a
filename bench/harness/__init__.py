"""What the benchmarks share, each in a module of its own (several run as child processes,
`python -m bench.harness.NAME` from the repository root):

- project: throwaway projects and the people in them (child: fills a project's SQLite store);
- bulk: fills a store with many subscribers through SQL (child);
- launcher: runs one command and reports its rusage (child, stdlib only, under `python -S`);
- children: starting child processes: the line-protocol servers, one-shot JSON helpers;
- sink: an SMTP sink (child);
- ses_stub: a simulated Amazon SES endpoint (child, stdlib only);
- loadgen: an HTTP load generator for the one-click unsubscribe (child, stdlib only);
- postgres: a throwaway PostgreSQL server;
- proc: what /proc tells about other processes (peak RSS, CPU time);
- profiling: cProfile of every thread of the processes a benchmark starts.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: child processes start here
