"""Nothing reaches a header but what belongs there: subjects, preheaders, organisation names,
`base_url`, `from`, subscriber names and addresses, hostile or not.

Every value is either refused, with a problem that names where it came from (the key of
newsletter.toml or issue.toml, or the bad row), or it goes into a message in which Python's
email parser and Node's mailparser (tests/node, an independent implementation) both find
exactly the headers the composer writes, each once. The seven injections found by hand come
first; Hypothesis then searches (a few hundred examples per target in the fast tier, 2,000
with HYPOTHESIS_PROFILE=full, as scripts/test runs the whole suite).
"""

from __future__ import annotations

import base64
import dataclasses
import email
import functools
import email.policy
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, YEAR_END
from newsletter.keys import normalise_email
from newsletter.config import load_config
from newsletter.errors import BadInput, Problems
from newsletter.letter.render import build_issue
from newsletter.letter.issue_folder import _load_issue_toml
from newsletter.letter.render import render_variants
from newsletter.message.composer import ComposeError, Composer, Recipient, composable
from newsletter.store import utcnow
from newsletter.keys import TokenSigner

FULL = os.environ.get("HYPOTHESIS_PROFILE") == "full"
settings.register_profile("headers-fast", max_examples=150, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("headers-full", max_examples=2000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
PROFILE = settings.get_profile("headers-full" if FULL else "headers-fast")

HEADERS = [
    "From", "Reply-To", "Subject", "To", "Date", "Message-ID", "List-Id", "List-Unsubscribe",
    "List-Unsubscribe-Post", "Content-Language", "MIME-Version", "Content-Type",
]  # fmt: skip
INJECTIONS = [
    "=?utf-8?q?Hello=0D=0ABcc:_evil@attacker.example?=",
    "=?utf-8?b?SGVsbG8NCkJjYzogZXZpbEBhdHRhY2tlci5leGFtcGxl?=",
    "Hello\r\nBcc: evil@attacker.example",
    "Hello\nBcc: evil@attacker.example",
    "Hello\x00there",
    "Hello\x1b]0;owned\x07",
    "=?utf-8?q?=0D=0A?=\u0628",
]

hostile = st.one_of(
    st.sampled_from(INJECTIONS),
    st.text(st.sampled_from("=?qQbB_:<>\"'\\\r\n\t\x00\x0b\x7f\x85\u2028 abcdefgh@.,;تحديث"), max_size=60),
    st.builds(lambda a, b: f"=?utf-8?q?{a}=0D=0A{b}?=", st.text("abcXYZ_:", max_size=10), st.text("abc:@._", max_size=20)),
    st.text(max_size=80),
)


# --- the second parser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mailparser():
    node = shutil.which("node")
    assert node, "node not installed: scripts/setup installs it"
    folder = ROOT / "tests" / "node"
    assert (folder / "node_modules" / "mailparser").is_dir(), "run scripts/setup (npm ci in tests/node)"
    proc = subprocess.Popen([node, str(folder / "parse.js")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def parse(raw: bytes) -> dict:
        assert proc.stdin and proc.stdout
        proc.stdin.write(base64.b64encode(raw).decode("ascii") + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    yield parse
    proc.terminate()


def assert_only_our_headers(raw: bytes, mailparser) -> email.message.EmailMessage:
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\n" not in head.replace(b"\r\n", b"") and b"\r" not in head.replace(b"\r\n", b""), head
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert list(message.keys()) == HEADERS, message.keys()
    for name in HEADERS:
        assert "\n" not in str(message[name]) and "\r" not in str(message[name]), (name, message[name])
    parsed = mailparser(raw)
    assert "error" not in parsed, parsed
    assert parsed["names"] == [name.lower() for name in HEADERS], parsed["names"]
    return message


# --- what the tests compose with -----------------------------------------------------------------


@functools.cache
def the_year_end():
    return build_issue(YEAR_END)


@pytest.fixture(scope="module")
def year_end():
    return the_year_end()


def compose(build, *, config=None, subject: str | None = None, name: str = "", address: str = "reader@example.org") -> bytes:
    config = config or build.config
    variants = build.variants
    if subject is not None:
        variants = {key: dataclasses.replace(v, subject=subject) for key, v in variants.items()}
    composer = Composer(variants, config, signer=TokenSigner(b"k" * 32), campaign_id=7)
    return composer.compose("en", Recipient(address, name, "ab" * 16, 3), utcnow()).data


def config_with(tmp_path: Path, replace: str, by: str):
    text = (ROOT / "newsletter.toml").read_text(encoding="utf-8")
    assert replace in text
    path = tmp_path / "newsletter.toml"
    path.write_text(text.replace(replace, by, 1), encoding="utf-8")
    return path


def toml_string(value: str) -> str:
    """`value` as a TOML basic string: quotes, backslashes and control characters escaped."""
    escaped = "".join(f"\\u{ord(ch):04x}" if ch in '"\\' or ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in value)
    return f'"{escaped}"'


def refusal_names(problems: list, *keys: str) -> None:
    assert problems, "refused without a problem"
    text = "\n".join(str(p) for p in problems)
    assert any(key in text for key in keys), text


# --- subjects (issue.toml) -----------------------------------------------------------------------


def write_issue_toml(folder: Path, subject: str, preheader: str = "x") -> Path:
    issue = folder / "issue.toml"
    issue.write_text(
        f'date = 2022-12-20\n[subject]\nar = "ت"\nen = {toml_string(subject)}\n'
        f'[preheader]\nar = "ت"\nen = {toml_string(preheader)}\n',
        encoding="utf-8",
    )
    return issue


def check_subject(value: str, tmp_path: Path, year_end, mailparser) -> None:
    issue = write_issue_toml(tmp_path, value)
    problems = Problems()
    loaded = _load_issue_toml(issue, year_end.config, problems)
    if loaded is None:
        return refusal_names(problems.items, "subject.en")
    subject = loaded["subject"]["en"]
    variants = {k: dataclasses.replace(v, subject=subject) for k, v in year_end.variants.items() if k == "en"}
    problems_found = composable(dataclasses.replace(year_end, variants=variants))
    if problems_found:
        return refusal_names(problems_found, "subject.en")
    message = assert_only_our_headers(compose(year_end, subject=subject), mailparser)
    if "=?" not in subject:  # text shaped like an encoded-word is decoded by the email package
        assert message["Subject"] == subject
    return None


@pytest.mark.parametrize("value", INJECTIONS)
def test_each_injection_in_a_subject_is_refused(value, tmp_path, year_end, mailparser):
    issue = write_issue_toml(tmp_path, value)
    problems = Problems()
    loaded = _load_issue_toml(issue, year_end.config, problems)
    if loaded is not None:
        variants = {k: dataclasses.replace(v, subject=loaded["subject"]["en"]) for k, v in year_end.variants.items()}
        problems.items += composable(dataclasses.replace(year_end, variants=variants))
    refusal_names(problems.items, "subject.en")


@PROFILE
@given(value=hostile)
def test_no_subject_adds_a_header(value, tmp_path_factory, mailparser):
    year_end = the_year_end()
    check_subject(value, tmp_path_factory.mktemp("subject"), year_end, mailparser)


# --- organisation, base_url, from (newsletter.toml) ------------------------------------------------


def check_config(value: str, key: str, replace: str, by: str, tmp_path: Path, year_end, mailparser) -> None:
    path = config_with(tmp_path, replace, by.format(toml_string(value)))
    try:
        config = load_config(path)
    except BadInput as exc:
        return refusal_names(exc.problems, key)
    try:
        raw = compose(year_end, config=config)
    except ComposeError as exc:
        problems = composable(dataclasses.replace(year_end, config=config))
        return refusal_names(problems, key) if problems else pytest.fail(f"compose refused {exc} but composable did not")
    assert_only_our_headers(raw, mailparser)
    return None


ORGANISATION = ('en = "Civil Society Support Room"', "en = {}")
BASE_URL = ('base_url = "https://news.example.org"', "base_url = {}")
FROM = ('from = "updates@news.example.org"', "from = {}")


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize(("key", "where"), [("organisation.en", ORGANISATION), ("base_url", BASE_URL), ("email.from", FROM)])
def test_each_injection_in_the_config_is_refused(value, key, where, tmp_path, year_end, mailparser):
    path = config_with(tmp_path, where[0], where[1].format(toml_string(value)))
    try:
        config = load_config(path)
    except BadInput as exc:
        return refusal_names(exc.problems, key)
    refusal_names(composable(dataclasses.replace(year_end, config=config)), key)
    return None


def test_a_base_url_with_a_line_break_does_not_move_the_list_id(tmp_path, year_end):
    with pytest.raises(BadInput, match="base_url: control characters"):
        load_config(config_with(tmp_path, *BASE_URL[:1], 'base_url = "https://news.example.org\\r\\n.evil.example"'))


@PROFILE
@given(value=hostile)
def test_no_organisation_name_adds_a_header(value, tmp_path_factory, mailparser):
    year_end = the_year_end()
    check_config(value, "organisation.en", *ORGANISATION, tmp_path_factory.mktemp("org"), year_end, mailparser)


@PROFILE
@given(value=st.one_of(hostile, st.builds(lambda s: "https://news.example.org/" + s, hostile)))
def test_no_base_url_adds_a_header(value, tmp_path_factory, mailparser):
    year_end = the_year_end()
    check_config(value, "base_url", *BASE_URL, tmp_path_factory.mktemp("url"), year_end, mailparser)


@PROFILE
@given(value=st.one_of(hostile, st.builds(lambda s: s + "@news.example.org", hostile)))
def test_no_sender_adds_a_header(value, tmp_path_factory, mailparser):
    year_end = the_year_end()
    check_config(value, "email.from", *FROM, tmp_path_factory.mktemp("from"), year_end, mailparser)


# --- subscriber names and addresses ---------------------------------------------------------------


@PROFILE
@given(name=hostile)
def test_no_subscriber_name_reaches_a_header(name, mailparser):
    year_end = the_year_end()
    message = assert_only_our_headers(compose(year_end, name=name), mailparser)
    assert message["To"].addresses[0].display_name == ""  # names go into the body, never a header


@PROFILE
@given(address=st.one_of(hostile, st.builds(lambda a, b: f"{a}@{b}.org", hostile, hostile)))
def test_no_address_adds_a_header(address, mailparser):
    year_end = the_year_end()
    try:
        stored = normalise_email(address)  # what an import or `add` would keep; refused rows are bad rows
    except ValueError:
        return
    try:
        raw = compose(year_end, address=stored)
    except ComposeError:
        return  # refused at send time: that delivery fails, naming the address
    message = assert_only_our_headers(raw, mailparser)
    assert message["To"].addresses[0].addr_spec.lower() == stored.lower()


# --- the preheader: in the body only --------------------------------------------------------------


@PROFILE
@given(value=hostile)
def test_no_preheader_reaches_a_header(value, tmp_path_factory, mailparser):
    year_end = the_year_end()
    issue = write_issue_toml(tmp_path_factory.mktemp("pre"), "x", preheader=value)
    problems = Problems()
    loaded = _load_issue_toml(issue, year_end.config, problems)
    if loaded is None:
        return refusal_names(problems.items, "preheader.en")
    # the English letter rendered again with this preheader (the rest as built)
    letters = {**year_end.letters, "en": dataclasses.replace(year_end.letters["en"], preheader=loaded["preheader"]["en"])}
    rendered = render_variants(letters, year_end.config, problems, only=["en"])
    assert not problems.items, problems.items
    build = dataclasses.replace(year_end, variants={**year_end.variants, **rendered})
    assert_only_our_headers(compose(build), mailparser)
    return None
