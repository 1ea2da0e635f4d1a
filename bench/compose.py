"""Per-recipient personalisation + MIME building, in process, on one core.

The year-end issue is built once; then `Composer.compose` runs for `messages` recipients per
run, per variant, as the send loop calls it (a fresh `utcnow()` per message, a signed
unsubscribe token, the placeholders filled and both parts encoded).
"""

from __future__ import annotations

import email
import email.policy
import secrets
import statistics
import time
from pathlib import Path

from newsletter.letter.render import build_issue
from newsletter.message.composer import Composer, Recipient
from newsletter.store import utcnow
from newsletter.keys import TokenSigner

SECRET = b"bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
TARGET = 20_000  # messages per second


def recipients(count: int, language: str) -> list[Recipient]:
    out = []
    for n in range(count):
        arabic = language == "ar" or (language == "bilingual" and n % 2 == 0)
        name = f"مشارك {n}" if arabic else f"Participant {n}"
        domain = "example.org" if n % 3 else "example.net"
        out.append(Recipient(f"person{n:06d}@{domain}", name, secrets.token_hex(16), n + 1))
    return out


def bench_compose(issue: Path, messages: int, runs: int) -> dict:
    build = build_issue(issue)
    composer = Composer(build.variants, build.config, signer=TokenSigner(SECRET), campaign_id=1)
    results: dict[str, dict] = {}
    for variant in build.variants:
        people = recipients(messages, variant)
        sample = composer.compose(variant, people[0], utcnow())
        parsed = email.message_from_bytes(sample.data, policy=email.policy.default)
        assert parsed.get_content_type() == "multipart/alternative", parsed.get_content_type()
        ctes = [part["Content-Transfer-Encoding"] for part in parsed.iter_parts()]
        compose = composer.compose
        for person in people[: min(1000, messages)]:  # warm-up
            compose(variant, person, utcnow())
        rates = []
        for _ in range(runs):
            start = time.perf_counter()
            for person in people:
                compose(variant, person, utcnow())
            rates.append(messages / (time.perf_counter() - start))
        median = statistics.median(rates)
        results[variant] = {
            "messages_per_s": median,
            "samples": [round(r) for r in rates],
            "us_per_message": 1e6 / median,
            "message_kb": len(sample.data) / 1024,
            "transfer_encodings": ctes,
            "ratio_to_target": median / TARGET,
        }
    return {"messages_per_run": messages, "runs": runs, "target_per_s": TARGET, "variants": results}


if __name__ == "__main__":
    import argparse
    import json

    from bench.harness import ROOT

    parser = argparse.ArgumentParser(description="composing messages alone (python -m bench runs it with the rest)")
    parser.add_argument("--issue", type=Path, default=ROOT / "issues" / "2022-12-year-end")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(bench_compose(args.issue, args.messages, args.runs)))
