"""The bounce corpus (tests/bounce_corpus/): every message read by the bounce mailbox's reader
(newsletter.feedback.bounces.read_message) and checked against its expected reading in
tests/bounce_corpus/expected.toml: the kind of message, each failed (or complained-about)
recipient found, its reason and whether it is hard. One test per message, named family/file.

`python tests/test_bounce_corpus.py` prints the measures of issue 20 overall and per family.
Marked `corpus`, so that `-m corpus` runs it alone; it is part of the fast tier and the whole
suite. Each event's reason is checked against the expected one; hard is the event's own `hard`
when it has one, else bounce_type == "Permanent".
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import time
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.feedback.bounces import Addresses, read_message

pytestmark = pytest.mark.corpus

CORPUS = Path(__file__).resolve().parent / "bounce_corpus"
ADDRESSES = Addresses("bounce@news.example.org", "unsubscribe@news.example.org", "+")
NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)

KINDS = ("bounce", "complaint", "auto-reply", "delivery-report", "other")
REASONS = (
    "user-unknown", "host-unknown", "has-moved", "mailbox-full", "message-too-big", "content-rejected", "blocked",
    "sender-rejected", "authentication", "rate-limited", "expired", "suspended", "system-error", "undetermined",
)  # fmt: skip
HARD_REASONS = {"user-unknown", "host-unknown", "has-moved"}
# about the sender, the message, or passing: never a reason to suppress a person for good
NEVER_HARD = {"mailbox-full", "message-too-big", "content-rejected", "blocked", "sender-rejected", "authentication",
              "rate-limited", "expired"}  # fmt: skip
# the reader's kinds, in the corpus's words; anything else is "other"
READ_KINDS = {
    "bounce": "bounce",
    "complaint": "complaint",
    "auto-reply": "auto-reply",
    "delay": "delivery-report",
    "delivery-report": "delivery-report",
    "delivered": "delivery-report",
    "relayed": "delivery-report",
}
_TOKEN = re.compile(rb"(?:bounce|unsubscribe)\+([a-z2-7]{32})@news\.example\.org", re.IGNORECASE)


@dataclass(frozen=True)
class Expected:
    address: str
    reason: str | None = None
    hard: bool | None = None


@dataclass(frozen=True)
class Case:
    path: str  # family/file.eml
    kind: str
    recipients: tuple[Expected, ...]
    known_miss: str | None = None

    @property
    def family(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def id(self) -> str:
        return self.path.removesuffix(".eml")

    def raw(self) -> bytes:
        return (CORPUS / self.path).read_bytes()


@dataclass
class Outcome:
    """What the reader made of one message: the kind in the corpus's words, and per address the
    reason and hardness it read (failed recipients of a bounce, complained-about addresses)."""

    kind: str
    failed: dict[str, tuple[str | None, bool]] = field(default_factory=dict)
    complained: set[str] = field(default_factory=set)
    token_found: bool = False
    crash: str | None = None
    unreadable: bool = False


def load_cases() -> list[Case]:
    table = tomllib.loads((CORPUS / "expected.toml").read_text(encoding="utf-8"))
    cases = []
    for path, entry in table.items():
        recipients = tuple(Expected(r["address"], r.get("reason"), r.get("hard")) for r in entry.get("recipients", []))
        cases.append(Case(path, entry["kind"], recipients, entry.get("known_miss")))
    return sorted(cases, key=lambda case: case.path)


CASES = load_cases()


def _hard(event: object) -> bool:
    hard = getattr(event, "hard", None)
    return bool(hard) if hard is not None else getattr(event, "bounce_type", None) == "Permanent"


def read(case: Case) -> Outcome:
    raw = case.raw()
    try:
        reading = read_message(raw, ADDRESSES, NOW)
    except Exception as exc:  # noqa: BLE001 - a crash is a measure here, not an error of the test
        return Outcome("other", crash=f"{type(exc).__name__}: {exc}")
    outcome = Outcome(READ_KINDS.get(reading.kind, "other"), unreadable=reading.kind == "unreadable")
    for event in reading.events:
        address = (event.recipient or "").strip().lower()
        if event.kind == "bounce" and address:
            outcome.failed[address] = (getattr(event, "reason", None), _hard(event))
        elif event.kind == "complaint" and address:
            outcome.complained.add(address)
    ours = {token.lower() for token in _TOKEN.findall(raw)}
    outcome.token_found = any(token.encode("ascii").lower() in ours for _, token in reading.tokens)
    return outcome


def problems(case: Case, outcome: Outcome) -> list[str]:
    """Each way the reading differs from the expected one, in words that name the message."""
    found = [f"crashed: {outcome.crash}"] if outcome.crash else []
    if outcome.kind != case.kind:
        found.append(f"kind: read as {outcome.kind}, expected {case.kind}")
    read_addresses = outcome.complained if case.kind == "complaint" else set(outcome.failed)
    expected = {e.address.lower(): e for e in case.recipients}
    for address, want in expected.items():
        if address not in read_addresses:
            found.append(f"{address}: not found (read: {sorted(read_addresses) or 'nothing'})")
        elif case.kind == "bounce":
            reason, hard = outcome.failed[address]
            if reason is not None and reason != want.reason:
                found.append(f"{address}: reason {reason}, expected {want.reason}")
            if hard != want.hard:
                found.append(
                    f"{address}: read as {'hard' if hard else 'soft'}, expected {'hard' if want.hard else 'soft'}"
                )
    for address in sorted((set(outcome.failed) | outcome.complained) - set(expected)):
        found.append(f"{address}: read as failed or complaining, but the message is not about it")
    return found


# --- the corpus itself ------------------------------------------------------------------------


def test_every_message_has_one_expected_reading():
    on_disk = {str(path.relative_to(CORPUS)) for path in CORPUS.glob("*/*.eml")}
    listed = {case.path for case in CASES}
    assert on_disk - listed == set(), "messages without an entry in expected.toml"
    assert listed - on_disk == set(), "entries in expected.toml without a message"
    assert len(CASES) >= 150 and len({case.family for case in CASES}) >= 25


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_the_expected_reading_follows_the_rules(case):
    assert case.kind in KINDS
    if case.kind not in ("bounce", "complaint"):
        assert case.recipients == ()
    raw = case.raw().lower()
    for want in case.recipients:
        assert want.address.lower().encode() in raw, f"{want.address} is not in the message"
        if case.kind == "complaint":
            assert (want.reason, want.hard) == (None, None)
            continue
        assert want.reason in REASONS and isinstance(want.hard, bool), want
        if want.reason in HARD_REASONS:
            assert want.hard, f"{want.reason} is hard"
        if want.reason in NEVER_HARD:
            assert not want.hard, f"{want.reason} is never hard"


# --- the reader against it --------------------------------------------------------------------


def _param(case: Case):
    marks = [pytest.mark.xfail(reason=case.known_miss, strict=True)] if case.known_miss else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_message_read_as_expected(case):
    found = problems(case, read(case))
    assert not found, f"{case.path}:\n  " + "\n  ".join(found)


def _mutate(raw: bytes, mutations: list[tuple]) -> bytes:
    for mutation in mutations:
        at = int(mutation[1] * len(raw))
        if mutation[0] == "flip":
            raw = raw[:at] + bytes([mutation[2]]) + raw[at + 1 :]
        elif mutation[0] == "cut":
            raw = raw[:at]
        elif mutation[0] == "insert":
            raw = raw[:at] + mutation[2] + raw[at:]
        else:  # a header line repeated, as broken mail systems do
            head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0].split(b"\n")
            line = head[min(int(mutation[1] * len(head)), len(head) - 1)] + b"\n"
            raw = raw.replace(line, line * mutation[2], 1)
    return raw


MUTATIONS = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.floats(0, 1)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(max_size=40)),
    st.tuples(st.just("repeat-header"), st.floats(0, 1, exclude_max=True), st.integers(2, 200)),
)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(CASES), mutations=st.lists(MUTATIONS, min_size=1, max_size=4))
def test_mutated_messages_never_crash_the_reader(case, mutations):
    reading = read_message(_mutate(case.raw(), mutations), ADDRESSES, NOW)
    assert isinstance(reading.kind, str)
    assert all(event.recipient is None or isinstance(event.recipient, str) for event in reading.events)


# --- the measures of issue 20 -----------------------------------------------------------------


@dataclass
class Tally:
    messages: int = 0
    recognised: int = 0
    recipients: int = 0
    found: int = 0
    bounced: int = 0
    agree: int = 0
    soft_as_hard: int = 0
    hard_not_hard: int = 0
    reasons_read: int = 0
    reasons_agree: int = 0
    extra: int = 0
    crashes: int = 0
    unreadable: int = 0
    with_token: int = 0
    token_found: int = 0
    known_misses: int = 0

    def add(self, case: Case, outcome: Outcome) -> None:
        self.messages += 1
        self.recognised += outcome.kind == case.kind
        self.crashes += outcome.crash is not None
        self.unreadable += outcome.unreadable
        self.known_misses += case.known_miss is not None
        if case.kind in ("bounce", "complaint"):
            self.with_token += 1
            self.token_found += outcome.token_found
        read_addresses = outcome.complained if case.kind == "complaint" else set(outcome.failed)
        expected = {e.address.lower(): e for e in case.recipients}
        self.extra += len((set(outcome.failed) | outcome.complained) - set(expected))
        for address, want in expected.items():
            self.recipients += 1
            self.found += address in read_addresses
            if case.kind == "bounce":
                self._bounced(want, outcome.failed.get(address))

    def _bounced(self, want: Expected, read_as: tuple[str | None, bool] | None) -> None:
        reason, hard = read_as or (None, False)  # not found: nobody is suppressed
        self.bounced += 1
        self.agree += hard == want.hard
        self.soft_as_hard += hard and not want.hard
        self.hard_not_hard += bool(want.hard) and not hard
        if reason is not None:
            self.reasons_read += 1
            self.reasons_agree += reason == want.reason


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def _share(part: int, whole: int) -> str:
    return f"{part} of {whole} ({_percent(part, whole)})"


def _row(name: str, t: Tally) -> str:
    cells = [name, str(t.messages), _percent(t.recognised, t.messages), _percent(t.found, t.recipients),
             _percent(t.agree, t.bounced), str(t.soft_as_hard), str(t.hard_not_hard), str(t.crashes)]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


HEAD = (
    "| family | messages | recognised | recipients found | hard/soft agree | soft read as hard "
    "| hard not read as hard | crashes |\n|---|---:|---:|---:|---:|---:|---:|---:|"
)


def summary() -> str:
    """The measures of issue 20, per family (a table for README) and overall."""
    overall, families = Tally(), defaultdict(Tally)
    started = time.process_time()
    for case in CASES:
        outcome = read(case)
        overall.add(case, outcome)
        families[case.family].add(case, outcome)
    seconds = time.process_time() - started
    bounced = [e for case in CASES if case.kind == "bounce" for e in case.recipients]
    o = overall
    lines = [
        HEAD,
        *(_row(name, families[name]) for name in sorted(families)),
        _row("**all**", o),
        "",
        f"messages recognised for what they are: {_share(o.recognised, o.messages)}",
        f"failed or complained-about recipients found: {_share(o.found, o.recipients)}",
        f"hard/soft agreement per bounced recipient: {_share(o.agree, o.bounced)}",
        f"soft bounces read as hard: {o.soft_as_hard} of {sum(not e.hard for e in bounced)}",
        f"hard bounces not read as hard: {o.hard_not_hard} of {sum(bool(e.hard) for e in bounced)}",
        f"reasons given: {o.reasons_read} of {o.bounced}; of those, as expected: {o.reasons_agree}",
        f"addresses read as failed or complaining that the message is not about: {o.extra}",
        f"bounces and complaints whose token of ours was found: {_share(o.token_found, o.with_token)}",
        f"crashes: {o.crashes}; read as unreadable: {o.unreadable}; known misses: {o.known_misses}",
        f"read in {seconds:.2f} s of CPU ({len(CASES)} messages, one process)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(summary() + "\n")
