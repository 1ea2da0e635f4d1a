"""Benchmarks for newsletter (never timed tests). Run them with `scripts/bench`, which runs
`python -m bench` from the repository root and writes dist/bench.json and docs/benchmarks.md;
`--quick` (smaller sizes, a few minutes: what CI runs, .ci/run) writes dist/bench-quick.json and
dist/benchmarks-quick.md instead.

- bench.startup: whole commands from start to exit: `newsletter --help`, `newsletter build`,
  and the reference `mjml` command (npm, pinned in bench/node/) on the bilingual MJML;
- bench.build: building the year-end letter, and MJML alone against the reference compiler;
- bench.compose: per-recipient messages, in process;
- bench.send: `newsletter send` as a child process: a dry run's peak memory, SMTP throughput;
- bench.ses: sending through a simulated SES with 1, 2 and 4 worker processes (PostgreSQL);
- bench.memory: peak memory per sending process as the list grows (PostgreSQL);
- bench.unsubscribe: one-click unsubscribes against `newsletter serve`;
- bench.report: the markdown of docs/benchmarks.md;
- bench.harness: what they share: throwaway projects, the launcher, the SMTP sink, the SES
  stub, the load generator, PostgreSQL, /proc watching and profiling.

Child processes run as `python -m bench.…` from the repository root. This file and
bench/harness/__init__.py import the standard library only: the launcher runs under `python -S`.
"""
