"""The report: dist/bench.json as it is, and docs/benchmarks.md written from it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from bench.harness import ROOT
from bench.bounces import markdown_bounces
from bench.imports import markdown_import
from bench.signup import markdown_signup_timing
from bench.startup import markdown_startup


def write(report: dict, extra: list[str] = ()) -> tuple[list[str], list[Path]]:
    """Writes dist/bench.json and docs/benchmarks.md; a quick run (CI's) writes dist/bench-quick.json
    and dist/benchmarks-quick.md instead, so that docs/ keeps the full-size figures. Returns the
    markdown's lines and the files written."""
    quick = report["quick"]
    data = ROOT / "dist" / ("bench-quick.json" if quick else "bench.json")
    page = ROOT / ("dist/benchmarks-quick.md" if quick else "docs/benchmarks.md")
    for path in (data, page):
        path.parent.mkdir(exist_ok=True)
    data.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = markdown(report) + list(extra)
    page.write_text("\n".join(lines), encoding="utf-8")
    return lines, [data, page]


def _meets(ok: bool) -> str:
    return "meets the target" if ok else "**misses the target**"


def markdown(report: dict) -> list[str]:
    lines = markdown_header(report)
    if "startup" in report:
        lines += markdown_startup(report["startup"])
    lines += markdown_build(report["build_ms"], report.get("mjml"))
    lines += markdown_compose(report["compose"])
    lines += markdown_dry_run(report["dry_run"])
    lines += markdown_smtp(report["smtp"])
    lines += markdown_ses(report["ses"])
    lines += markdown_memory(report["memory"])
    lines += markdown_unsubscribe(report["unsubscribe"])
    for key, section in (("signup", markdown_signup_timing), ("imports", markdown_import), ("bounces", markdown_bounces)):
        if key in report:
            lines += section(report[key])
    return lines


def markdown_header(report: dict) -> list[str]:
    return [
        "# Benchmarks",
        "",
        f"Made by `scripts/bench{' --quick' if report['quick'] else ''}` on {report['date']}: {report['machine']}.",
        "Medians of repeated runs; these machines are shared, so compare ratios rather than",
        "absolute figures." + (" Quick run: sizes are smaller than the targets assume." if report["quick"] else ""),
        f"1-minute load average at the start {report['load_average']['start']:g}, before the SMTP run "
        f"{report['load_average']['before_smtp']:g}, before the SES runs {report['load_average']['before_ses']:g},",
        f"before the memory runs {report['load_average']['before_memory']:g}, before the unsubscribe runs "
        f"{report['load_average']['before_unsubscribe']:g}, at the end {report['load_average']['end']:g}",
        f"({os.cpu_count()} cores); other work on the machine moves the SMTP and SES figures most (see the",
        "sender's and the sink's CPU a message, and \"cores busy while sending\").",
        "",
    ]


def markdown_build(build_ms: dict, m: dict | None) -> list[str]:
    lines = [
        "## Building the year-end letter",
        "",
        "Load + assemble + render (Jinja2 → MJML → HTML → premailer) + plain text, per variant;",
        "in-process runs after one warm-up (interpreter start excluded).",
        "",
        "| variant | median ms |",
        "|---|---:|",
    ]
    for name, ms in build_ms.items():
        lines.append(f"| {name} | {ms:.1f} |")
    lines += ["", "Target: all three variants in under 50 ms together.", ""]
    if m:
        lines += [
            "### MJML to HTML alone",
            "",
            f"The same MJML (the Jinja2 output for each variant) through mjml-python and through {m['reference']},",
            f"in-process medians of {m['repeat']} renders each.",
            "",
        ]
        if "ratio" in m:
            lines += ["| variant | mjml-python ms | reference ms | reference / mjml-python |", "|---|---:|---:|---:|"]
            for name, ms in m["mjml_python_ms"].items():
                lines.append(f"| {name} | {ms:.2f} | {m['reference_ms'][name]:.2f} | {m['ratio'][name]:.1f}× |")
            lines.append("")
        else:
            lines += [m["reference"], ""]
    return lines


def markdown_compose(c: dict) -> list[str]:
    lines = [
        "## Personalising and building messages",
        "",
        f"`Composer.compose` for {c['messages_per_run']:,} recipients per run, {c['runs']} runs per variant, one core,",
        "in process (the issue built once): signed unsubscribe token, placeholders filled, both",
        "parts encoded, MIME assembled.",
        "",
        "| variant | median messages/s | µs/message | ratio to target | message KB | encodings (text, html) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, r in c["variants"].items():
        lines.append(
            f"| {name} | {r['messages_per_s']:,.0f} | {r['us_per_message']:.1f} | {r['ratio_to_target']:.2f} | "
            f"{r['message_kb']:.1f} | {', '.join(r['transfer_encodings'])} |"
        )
    worst = min(r["messages_per_s"] for r in c["variants"].values())
    return [*lines, "", f"Target: at least {c['target_per_s']:,} messages/s per variant: {_meets(worst >= c['target_per_s'])}.", ""]


def markdown_dry_run(d: dict) -> list[str]:
    return [
        "## Peak memory of a dry run",
        "",
        "`newsletter send ISSUE --list main --dry-run --provider outbox` on a throwaway project (SQLite) with",
        f"{d['recipients']:,} subscribers (every other one Arabic; the bilingual layout sends everyone",
        "the bilingual variant), run as its own child process; peak RSS is its `ru_maxrss`.",
        f"Median of {d['runs']} run{'s' if d['runs'] != 1 else ''}.",
        "",
        "| | median |",
        "|---|---:|",
        f"| peak RSS, {d['recipients']:,} recipients | {d['peak_rss_mb']:.1f} MB |",
        f"| ratio to the 150 MB target | {d['ratio_to_target']:.2f} |",
        f"| peak RSS, 10 recipients (the floor: imports, build) | {d['peak_rss_mb_10_recipients']:.1f} MB |",
        f"| dry-run wall time (whole command) | {d['wall_s']:.1f} s |",
        f"| dry-run CPU time | {d['cpu_s']:.1f} s |",
        f"| messages composed | {d['messages_mb']:.0f} MB in all |",
        f"| `newsletter subscribers import` of {d['recipients']:,} rows (whole command) | {d['import_s']:.1f} s ({d['import_per_s']:,.0f} rows/s) |",
        "",
        "Target: under 150 MB for 100,000 recipients: "
        + (_meets(d["peak_rss_mb"] < 150) if d["recipients"] >= 100_000 else "not measured at this size (quick run)")
        + ".",
        "",
    ]


def markdown_smtp(m: dict) -> list[str]:
    return [
        "## Sending through SMTP",
        "",
        f"`newsletter send --provider smtp --yes` to {m['messages']:,} subscribers, `rate = {m['configured_rate']:g}`,",
        f"`workers = {m['workers']}`, plain SMTP on 127.0.0.1 to an aiosmtpd sink in its own process.",
        "Delivered rate = messages the sink accepted / the send summary's \"in X s\" (freezing",
        "the recipients into the ledger + sending). Median of"
        f" {m['runs']} run{'s' if m['runs'] != 1 else ''}, a fresh project each.",
        "",
        "| | median |", "|---|---:|",
        f"| delivered | {m['delivered']:,.0f} of {m['messages']:,} |",
        f"| delivered per second | {m['rate']:.0f}/s |",
        f"| fraction of the 500/s rate | {m['fraction_of_rate']:.1%} |",
        f"| ratio to the 90 % target | {m['ratio_to_target']:.2f} |",
        f"| at the sink, first to last message | {m['sink_rate']:.0f}/s ({m['sink_fraction_of_rate']:.1%}) |",
        f"| summary's \"in X s\" | {m['elapsed_s']:.1f} s |",
        f"| whole command (interpreter, build, freeze, send) | {m['wall_s']:.1f} s |",
        f"| sender CPU (user + sys) | {m['cpu_s']:.1f} s ({m['cpu_ms_per_message']:.2f} ms/message; "
        f"user {m['user_s']:.1f} s, sys {m['sys_s']:.1f} s) |",
        f"| sink CPU (its own process) | {m['sink_cpu_s']:.1f} s ({m['sink_cpu_ms_per_message']:.2f} ms/message; {m.get('sink', 'aiosmtpd')}) |",
        f"| SQL statements (whole command; bench/harness/sqlcount.py) | {m.get('sql_per_message', float('nan')):.2f}/message |",
        "",
        f"Target: at least 90 % of the configured rate: {_meets(m['fraction_of_rate'] >= 0.9)}.",
        "",
    ]


def _mb(value) -> str:
    return "–" if value is None else f"{value:.0f} MB"


def markdown_ses(r: dict) -> list[str]:
    ws = r["workers"]
    names = list(ws)
    head = " | ".join(f"{n} worker{'s' if n != '1' else ''}" for n in names)

    def row(label: str, fn) -> str:
        return f"| {label} | " + " | ".join(fn(ws[n]) for n in names) + " |"

    runs = r["runs"]
    lines = [
        "## Sending through a simulated SES: 1, 2 and 4 workers",
        "",
        "`newsletter send ISSUE --list main --provider ses --workers N --threads 8 --rate 100000 --yes`",
        "(with `--workers 1` the `send` process sends; with more it freezes the campaign and",
        "starts N `newsletter worker` processes sharing it through PostgreSQL). SES is a stub in",
        f"its own process (bench/harness/ses_stub.py) that answers SendEmail after {r['delay_ms']:.0f} ms,",
        "reached through `[ses] endpoint_url` with dummy credentials; the store is a real",
        "PostgreSQL on loopback, a fresh database per run filled through SQL. With 8 calls in",
        f"flight per worker the ceiling is 160 messages/s per worker. Median of {runs} run{'s' if runs != 1 else ''}",
        "per size, interleaved. Messages/s are the stub's own receive timestamps: first to last",
        "request (the sending phase), and the 10th to the 90th percentile (steady state). CPU:",
        "the whole command (RUSAGE_CHILDREN of the launcher: `send` and its workers, start-up",
        "included); \"while sending\": sampled from /proc between the stub's first and last",
        "request, for the senders, PostgreSQL (postmaster and backends), the stub and the rest",
        "of the machine.",
        "",
        f"| | {head} |",
        "|---|" + "---:|" * len(names),
        row("messages", lambda w: f"{w['messages']:,.0f}"),
        row("messages/s, sending phase", lambda w: f"{w['rate']:.0f}"),
        row("messages/s, steady (p10–p90)", lambda w: f"{w['steady_rate']:.0f}"),
        row("ceiling (8 in flight × 20/s × N)", lambda w: f"{w['ceiling']:.0f} ({w['fraction_of_ceiling']:.0%} reached)"),
        row("**ratio to 1 worker**", lambda w: f"**{w['ratio_to_1']:.2f}**"),
        row("ratio to 1 worker, steady", lambda w: f"{w['steady_ratio_to_1']:.2f}"),
        row("samples (messages/s)", lambda w: ", ".join(f"{x:.0f}" for x in w["rate_samples"])),
        row("sending phase / whole command", lambda w: f"{w['span_s']:.1f} s / {w['wall_s']:.1f} s"),
        row("senders' CPU, whole command", lambda w: f"{w['cpu_s']:.1f} s ({w['cpu_ms_per_message']:.2f} ms/message)"),
        row("senders' CPU while sending", lambda w: f"{w['phase_sender_cpu_ms_per_message']:.2f} ms/message"),
        row("PostgreSQL CPU while sending", lambda w: f"{w['phase_postgres_cpu_ms_per_message']:.2f} ms/message"),
        row("stub CPU while sending", lambda w: f"{w['phase_stub_cpu_ms_per_message']:.2f} ms/message"),
        row("cores busy while sending: senders", lambda w: f"{w['phase_sender_cores']:.2f}"),
        row("… PostgreSQL + stub", lambda w: f"{w['phase_postgres_cores'] + w['phase_stub_cores']:.2f}"),
        row("… other processes on the machine", lambda w: f"{max(w['phase_machine_other_cores'], 0):.2f}"),
        row(f"… all, of {os.cpu_count()}", lambda w: f"{w['phase_machine_busy_cores']:.2f}"),
        row("calls in flight at the stub, at most", lambda w: f"{w['max_in_flight']:.0f}"),
        row("peak RSS per sending process", lambda w: _mb(w.get("worker_peak_rss_mb"))),
        "",
    ]
    top = ws[names[-1]]
    ok = r["ratio"] >= r["target_ratio"]
    prof = r.get("profiled")
    if prof:
        lines += [
            f"Where the CPU goes: one more run of {prof['workers']} workers, {prof['messages']:,} messages, every thread of every",
            "sending process under cProfile with a CPU-time clock (bench/harness/profiling.py; it slows",
            f"Python code about twofold, {prof['rate']:.0f}/s in that run, so compare the rows with each other). Per message sent:",
            "",
            "| | CPU ms/message | CPU s in all | calls |",
            "|---|---:|---:|---:|",
        ]
        for row in prof["highlights"]["rows"]:
            lines.append(f"| {row['label']} (`{row['function']}`) | {row['ms_per_message']:.2f} | {row['s']:.2f} | {row['calls']:,} |")
        lines.append("")
    lines.append(f"Target: {names[-1]} workers at least {r['target_ratio']:g}× one worker: {r['ratio']:.2f}× "
                 f"(ratio to target {r['ratio_to_target']:.2f}; steady state {top['steady_ratio_to_1']:.2f}×): {_meets(ok)}.")
    if not ok:
        need = top["ceiling"] * (top["phase_sender_cpu_ms_per_message"] + top["phase_postgres_cpu_ms_per_message"]
                                 + top["phase_stub_cpu_ms_per_message"]) / 1000
        lines.append(f"At the ceiling of {top['ceiling']:.0f}/s the senders, PostgreSQL and the stub would need {need:.1f} cores "
                     f"at their measured cost per message; the machine has {os.cpu_count()}, and other processes used "
                     f"{max(top['phase_machine_other_cores'], 0):.2f} during the run.")
    lines.append("")
    return lines


def markdown_memory(r: dict) -> list[str]:
    sizes = r["sizes"]
    floor = r["floor_mb"]
    lines = [
        "## Peak memory per sending process as the list grows",
        "",
        "`newsletter send ISSUE --list main --dry-run --provider outbox` on PostgreSQL (the store several workers",
        "share), the subscribers and list memberships inserted with COPY; run under the",
        "launcher, peak RSS is its `ru_maxrss`. A dry run composes every message as a worker",
        "does, without sending.",
        "",
        "| recipients | runs | peak RSS | above the 10-recipient floor | wall | CPU | µs/message | list set up in |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, s in sizes.items():
        per = f"{s['us_per_message']:.0f}" if s["recipients"] >= 1000 else "–"  # the floor: start-up only
        lines.append(f"| {s['recipients']:,} | {s['runs']} | {s['peak_rss_mb']:.1f} MB | {s['peak_rss_mb'] - floor:+.1f} MB | "
                     f"{s['wall_s']:.1f} s | {s['cpu_s']:.1f} s | {per} | {s['fill_s']:.1f} s |")
    large = sizes[str(r["large"])]
    small = sizes[str(r["small"])]
    sub_linear = large["peak_rss_mb"] / small["peak_rss_mb"] < r["linear_growth"]
    lines += [
        "",
        f"From {r['small']:,} to {r['large']:,} recipients ({r['linear_growth']:g}× as many) the peak grows "
        f"{large['peak_rss_mb'] / small['peak_rss_mb']:.2f}× ({large['peak_rss_mb'] - small['peak_rss_mb']:+.1f} MB): "
        + ("less than linearly" if sub_linear else "**linearly or worse**") + ".",
    ]
    if r["large"] >= 1_000_000:
        lines.append(f"Target: {r['large']:,} recipients under {r['target_mb']} MB per process: {large['peak_rss_mb']:.1f} MB "
                     f"(ratio to target {r['ratio_to_target']:.2f}), growing less than linearly: "
                     f"{_meets(large['peak_rss_mb'] < r['target_mb'] and sub_linear)}.")
    else:
        lines.append(f"Target: 1,000,000 recipients under {r['target_mb']} MB per process: not measured at this size (quick run).")
    runs = r.get("worker_runs") or {}
    if runs:
        lines += [
            "",
            "A real campaign on the same lists: `newsletter send --provider ses --workers 2 --threads 8` to",
            "the SES stub, stopped with SIGINT (Ctrl-C) after 5 s of sending; peak RSS (VmHWM sampled",
            "from /proc) of the `send` process, which freezes the whole list into the ledger before the",
            "workers start, and of each `newsletter worker`.",
            "",
            "| recipients | freeze (create the campaign) | `send` peak RSS | worker peak RSS | sent before the stop | stopped |",
            "|---:|---:|---:|---:|---:|---|",
        ]
        for key, w in runs.items():
            stop = ("**did not stop within 60 s** (killed)" if w["stop_hung"]
                    else f"in {w['stop_s']:.1f} s, exit status {w['exit_status']}")
            lines.append(f"| {w['recipients']:,} | {w['freeze_s']:.1f} s | {_mb(w['send_peak_rss_mb'])} | "
                         f"{', '.join(_mb(x) for x in w['worker_peak_rss_mb']) or '–'} | {w['sent']:,} at {w['rate']:.0f}/s | {stop} |")
        biggest = runs[max(runs, key=int)]
        if biggest["send_peak_rss_mb"] and biggest["send_peak_rss_mb"] >= r["target_mb"]:
            lines += ["", f"The `send` process itself passes {r['target_mb']} MB while it freezes {biggest['recipients']:,} recipients "
                      "(`store.campaigns.create` reads the whole list with `.all()` before inserting the deliveries): "
                      "**it misses the per-process target** although the workers and the dry run stay flat."]
    lines.append("")
    return lines


def markdown_unsubscribe(r: dict) -> list[str]:
    runs = r["runs"]
    lines = [
        "## One-click unsubscribe",
        "",
        "`newsletter serve` (uvicorn, Starlette, access log on) on 127.0.0.1 with the SQLite store holding",
        f"{r['subscribers']:,} subscribers and a finished campaign with a delivery each. A load generator in its own",
        f"process (bench/harness/loadgen.py, asyncio, keep-alive) keeps {r['connections']} connections busy, each",
        "request a one-click `POST /u/<token>` (body `List-Unsubscribe=One-Click`) to a token not used",
        f"before, for {r['duration_s']:g} s or {r['max_requests']:,} requests, after a warm-up of a few hundred. Every",
        "answer is checked (200 and the confirmation page) and so is the store (exactly as many",
        f"people unsubscribed as 200s counted). Median of {runs} run{'s' if runs != 1 else ''}.",
        "",
        "| | median |",
        "|---|---:|",
        f"| requests per run | {r['requests']:,.0f} |",
        f"| requests/s | {r['rate']:,.0f} (runs: {', '.join(str(x) for x in r['rate_samples'])}) |",
        f"| latency p50 | {r['p50_ms']:.1f} ms |",
        f"| latency p90 | {r['p90_ms']:.1f} ms |",
        f"| latency p99 | {r['p99_ms']:.1f} ms |",
        f"| latency, slowest | {r['max_ms']:.0f} ms |",
        f"| server CPU | {r['server_cpu_ms_per_request']:.2f} ms/request ({r['server_cores']:.2f} cores busy) |",
        f"| load generator CPU | {r['client_cpu_ms_per_request']:.2f} ms/request |",
        "",
    ]
    prof = r.get("profiled")
    if prof:
        cpu, wall = prof["cpu"], prof["wall"]
        lines += [
            "Where the time goes: two more short runs with the server under cProfile (bench/harness/profiling.py),",
            "one with a CPU-time clock (what keeps the core busy), one with a wall clock (where a request",
            f"waits; summed over the thread pool's threads). Both slow the server down ({cpu['rate']:.0f}/s and",
            f"{wall['rate']:.0f}/s), so compare rows with each other. Per request:",
            "",
            "| | CPU ms/request | wall ms/request |",
            "|---|---:|---:|",
        ]
        wall_rows = {row["label"]: row for row in wall["highlights"]["rows"]}
        for row in cpu["highlights"]["rows"]:
            w = wall_rows.get(row["label"])
            # a coroutine's (the web handlers') wall time leaves out its awaits: not comparable, not shown
            wall_cell = f"{w['ms_per_request']:.2f}" if w and not row["function"].startswith("newsletter/web/unsubscribe.py") else "–"
            lines.append(f"| {row['label']} (`{row['function']}`) | {row['ms_per_request']:.2f} | {wall_cell} |")
        lines.append("")
    lines += [
        f"Target: at least {r['target_rate']:,} requests/s: {r['rate']:,.0f}/s (ratio to target {r['rate_ratio_to_target']:.2f}): "
        f"{_meets(r['rate'] >= r['target_rate'])}; p99 under {r['target_p99_ms']} ms: {r['p99_ms']:.1f} ms "
        f"(ratio to target {r['p99_ratio_to_target']:.2f}): {_meets(r['p99_ms'] < r['target_p99_ms'])}.",
        "",
    ]
    # where the time of one request goes, before and after the batching (measured, written by hand)
    if (ROOT / "bench" / "unsubscribe_profile.md").is_file():
        lines += [*(ROOT / "bench" / "unsubscribe_profile.md").read_text(encoding="utf-8").rstrip().splitlines(), ""]
    if "tokens" in r:
        lines += markdown_token_timing(r["tokens"])
    return lines


def markdown_token_timing(t: dict) -> list[str]:
    kinds = ("forged", "unknown", "forgotten")
    return [
        "### The 404 of a token that leads nowhere",
        "",
        "`GET /u/<token>` for three kinds of token that must answer the same 404 at the same cost, so that",
        "nobody can tell a forgotten person's link from a forged one: forged (a real person's token, its",
        "signature altered), unknown (a genuine signature over a key nobody has) and forgotten (genuine, its",
        f"person forgotten). {t['requests']:,} requests of each kind, one at a time on one keep-alive connection,",
        f"the kinds interleaved, against {t['subscribers']:,} subscribers; every answer checked byte for byte.",
        "",
        "| token | median | p90 | ratio to forged |",
        "|---|---:|---:|---:|",
        *(f"| {k} | {t['median_ms'][k]:.3f} ms | {t['p90_ms'][k]:.3f} ms | {t['ratio_to_forged'][k]:.3f} |" for k in kinds),
        "",
        f"Target: the three medians within {t['tolerance']:.0%} of each other: slowest/fastest {t['spread']:.3f}: "
        f"{_meets(t['within_tolerance'])}.",
        "",
    ]

