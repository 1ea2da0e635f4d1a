"""Building the year-end letter, and MJML to HTML alone against the reference compiler.

`bench_build`: load + assemble + render + plain text, per variant and all three in one
`build_issue` call, in process after a warm-up. `bench_mjml`: mjml-python against the
reference MJML compiler (npm `mjml`) on the same MJML. The reference compiler is installed
into bench/node/ from its lock file when Node is present (benchmarks only; the project never
runs it). Both are timed in-process: medians of repeated renders of the year-end letter's MJML,
one per variant.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from pathlib import Path

from bench.harness import ROOT
from bench.startup import NODE_DIR, mjml_sources, reference_compiler, reference_version
from newsletter.config import find_config, load_config
from newsletter.errors import Problems
from newsletter.letter import render
from newsletter.letter.assemble import assemble
from newsletter.letter.render import build_issue
from newsletter.letter.issue_folder import load_issue

ISSUE = ROOT / "issues" / "2022-12-year-end"


def median_ms(fn, repeat: int) -> tuple[float, list[float]]:
    fn()  # warm caches (template compilation) as a long-lived process would have them
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), samples


def bench_build(repeat: int, issue: Path = ISSUE) -> dict:
    config = load_config(find_config(issue))
    results: dict[str, float] = {}

    def one(name: str):
        problems = Problems()
        letters = assemble(load_issue(issue, config, problems), config)
        render.render_variants(letters, config, problems, only=[name])

    for name in render.variant_names(config):
        results[name], _ = median_ms(lambda: one(name), repeat)
    results["all three (one build_issue call)"], _ = median_ms(lambda: build_issue(issue), repeat)
    return results


NODE_SCRIPT = r"""
const mjml = require('mjml');
const fs = require('fs');
(async () => {
  const sources = JSON.parse(fs.readFileSync(0, 'utf8'));
  const repeat = parseInt(process.argv[1], 10);
  const out = {};
  for (const [name, source] of Object.entries(sources)) {
    await mjml(source, {validationLevel: 'skip'});  // mjml 5 returns a promise
    const samples = [];
    for (let i = 0; i < repeat; i++) {
      const t = process.hrtime.bigint();
      await mjml(source, {validationLevel: 'skip'});
      samples.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    samples.sort((a, b) => a - b);
    out[name] = samples[Math.floor(samples.length / 2)];
  }
  process.stdout.write(JSON.stringify(out));
})();
"""


def bench_mjml(repeat: int = 50, log=print) -> dict:
    from mjml import mjml2html

    sources = mjml_sources(ISSUE)
    python_ms = {}
    for name, source in sources.items():
        mjml2html(source, disable_comments=True)
        samples = []
        for _ in range(repeat):
            start = time.perf_counter()
            mjml2html(source, disable_comments=True)
            samples.append((time.perf_counter() - start) * 1000)
        python_ms[name] = statistics.median(samples)
    result: dict = {"repeat": repeat, "mjml_python_ms": python_ms}
    if reference_compiler(log) is None:
        result["reference"] = "Node not present: ratio not measured"
        return result
    proc = subprocess.run(["node", "-e", NODE_SCRIPT, str(repeat)], input=json.dumps(sources), capture_output=True,
                          text=True, cwd=NODE_DIR, check=True, timeout=600)
    node_ms = json.loads(proc.stdout)
    result.update({
        "reference": reference_version(),
        "reference_ms": node_ms,
        "ratio": {name: node_ms[name] / python_ms[name] for name in python_ms},
    })
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="building the year-end letter alone (python -m bench runs it with the rest)")
    parser.add_argument("--issue", type=Path, default=ISSUE, help="the issue folder (a side-by-side run: the other tree's)")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--build-only", action="store_true", help="one JSON line, the build alone (no mjml comparison)")
    args = parser.parse_args()
    if args.build_only:
        print(json.dumps({"build_ms": bench_build(args.repeat, args.issue)}))
    else:
        print(json.dumps({"build_ms": bench_build(args.repeat), "mjml": bench_mjml(args.repeat)}, indent=2))
