"""`newsletter serve` against hostile requests: bodies too big, JSON too deep, tokens spelt twice, timing.

* Bodies are counted as they stream and cut at their limit (256 KB for /sns, 16 KB for the
  unsubscribe forms) with 413. The 300 MB test runs `newsletter serve` as a child process and
  reads its memory from /proc (VmRSS, and VmHWM: the kernel's high-water mark, which catches a
  peak between two readings); the client streams the body from a generator, so it never holds
  300 MB either.
* JSON nested deeper than 32 is refused with 400 before any parser recurses.
* A token has one spelling, the one `TokenSigner.make` writes; any other is 404.
* A forged token (bad signature), an unknown one (genuine signature, nobody has its key) and a
  forgotten person's get the same 404, byte for byte, after the same one lookup. Their timing is
  measured by the benchmark (`python -m bench.unsubscribe --tokens`), never in a test.

The other tests run the app on uvicorn in this process (tests/uvicorn_server.py).
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from conftest import SECRET, Project
from ses_samples import SAMPLES
from uvicorn_server import free_port, running

from newsletter.cli import cli
from newsletter.domain import NewSubscriber
from newsletter.store import Store
from newsletter.store.feedback import Feedback
from newsletter.store.subscribers import Subscribers
from newsletter.keys import LENGTH, TokenSigner
from newsletter.web.public import create_app
from newsletter.web.sns import MAX_SNS_BODY, too_deep
from newsletter.web.unsubscribe import MAX_FORM_BODY

SECRET_BYTES = SECRET.encode()
SIGNER = TokenSigner(SECRET_BYTES)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
ONE_CLICK = {"content": b"List-Unsubscribe=One-Click", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}
MB = 1024 * 1024


def other_trailing_bits(token: str) -> str:
    """The same bytes, spelt with other values in the last character's unused low bits."""
    return token[:-1] + ALPHABET[ALPHABET.index(token[-1]) ^ 1]


def forged(token: str) -> str:
    """The same payload with one bit of the signature flipped, spelt canonically."""
    raw = bytearray(base64.urlsafe_b64decode(token + "=="))
    raw[-1] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def stream(total: int, size: int = 64 * 1024):
    block = b"[" * size
    for _ in range(total // size):
        yield block


# --- TokenSigner.read: one spelling -------------------------------------------------------------


def test_read_accepts_the_one_spelling_make_writes_and_nothing_else():
    key = "0123456789abcdef0123456789abcdef"
    token = SIGNER.make(key, 7)
    assert len(token) == LENGTH == 50 and "=" not in token
    assert SIGNER.read(token) == (key, 7)
    assert base64.urlsafe_b64decode(other_trailing_bits(token) + "==") == base64.urlsafe_b64decode(token + "==")
    others = [
        token + "==",  # padded
        token + "=",
        other_trailing_bits(token),  # the same 37 bytes
        token + "A",
        token[:-1],
        " " + token,
        token + "\n",
        token.upper(),
        token[:-1] + "é",
        "",
        "A" * LENGTH,
        forged(token),
    ]
    for other in others:
        assert SIGNER.read(other) is None, other
    assert TokenSigner(b"another-secret-key-0123456789-abcdefghijklmnop").read(token) is None


def test_read_rejects_the_standard_base64_alphabet():
    """A token with '-' or '_' must not pass with '+' or '/', though base64 decodes them alike."""
    keys = (secrets.token_hex(16) for _ in range(10_000))
    token = next(t for t in (SIGNER.make(k, 1) for k in keys) if "-" in t and "_" in t)
    assert SIGNER.read(token) is not None
    for other in (token.replace("-", "+"), token.replace("_", "/"), token.replace("-", "+").replace("_", "/")):
        assert base64.urlsafe_b64decode(other + "==") == base64.urlsafe_b64decode(token + "==")  # what read did
        assert SIGNER.read(other) is None, other


def test_every_last_character_but_the_canonical_one_is_refused():
    token = SIGNER.make(secrets.token_hex(16), 3)
    accepted = [c for c in ALPHABET if SIGNER.read(token[:-1] + c) is not None]
    assert accepted == [token[-1]]


def test_too_deep_reads_the_bytes_without_recursing():
    assert too_deep(b"[" * 100_000 + b"]" * 100_000)
    assert too_deep(b"[" * 100_000)  # unterminated as well
    assert too_deep(b"[" * 33 + b"]" * 33) and not too_deep(b"[" * 32 + b"]" * 32)
    assert not too_deep(json.dumps({"a": "[" * 1000, "b": '"\\[{' * 100}).encode())  # brackets in strings
    assert not too_deep(b'"' + b'\\"[' * 100_000)  # an unterminated string, scanned once
    assert not too_deep((SAMPLES / "sns_envelope_notification.json").read_bytes())


# --- the server, in this process ----------------------------------------------------------------


class Site:
    def __init__(self, root: Path):
        self.project = Project(root)
        self.store = RecordingStore.open(self.project.config().store_url)
        self.app = create_app(self.project.config(), self.store, SECRET_BYTES)

    def add(self, *addresses: str) -> dict[str, str]:
        """address → its genuine token."""
        self.store.subscribers.import_rows([NewSubscriber(a, "Person", "en") for a in addresses], "main", SECRET_BYTES)
        return {a: SIGNER.make(self.store.subscribers.by_email(a).token_key, 0) for a in addresses}

    def forget(self, address: str) -> None:
        result = CliRunner().invoke(
            cli, ["subscribers", "forget", address, "--config", str(self.project.config_path)], env=self.project.env
        )
        assert result.exit_code == 0, result.output
        assert self.store.subscribers.by_email(address) is None


class RecordingSubscribers(Subscribers):
    def __init__(self, db, asked: list[tuple[str, str]]):
        super().__init__(db)
        self.asked = asked

    def by_token_key(self, token_key):
        self.asked.append(("get", token_key))
        return super().by_token_key(token_key)


class RecordingFeedback(Feedback):
    def __init__(self, db, asked: list[tuple[str, str]]):
        super().__init__(db)
        self.asked = asked

    def unsubscribe_many(self, links):  # the one-click POSTs, gathered (newsletter/web/batches.py)
        self.asked.extend(("unsubscribe", token_key) for token_key, _campaign in links)
        return super().unsubscribe_many(links)

    def resubscribe(self, token_key, campaign_id):
        self.asked.append(("resubscribe", token_key))
        return super().resubscribe(token_key, campaign_id)


class RecordingStore(Store):
    """The real store, noting the token keys the web app looks up or changes."""

    def __init__(self, db):
        super().__init__(db)
        self.asked: list[tuple[str, str]] = []
        self.subscribers = RecordingSubscribers(db, self.asked)
        self.feedback = RecordingFeedback(db, self.asked)


@pytest.fixture
def site(tmp_path, secret_env):
    site = Site(tmp_path / "p")
    with running(site.app) as url, httpx.Client(base_url=url, timeout=60) as client:
        site.client = client
        yield site
    site.store.close()


def test_other_spellings_of_a_genuine_token_are_404(site):
    token = site.add("nour@example.org")["nour@example.org"]
    for other in (token + "==", other_trailing_bits(token)):
        for method, suffix in (("GET", ""), ("POST", ""), ("POST", "/resubscribe")):
            response = site.client.request(method, f"/u/{other}{suffix}", **(ONE_CLICK if method == "POST" else {}))
            assert response.status_code == 404, (other, method, suffix)
    assert site.store.subscribers.by_email("nour@example.org").status == "active"
    assert site.client.get(f"/u/{token}").status_code == 200
    assert site.client.post(f"/u/{token}", **ONE_CLICK).status_code == 200
    assert site.store.subscribers.by_email("nour@example.org").status == "unsubscribed"


def test_forged_unknown_and_forgotten_tokens_get_the_same_404_after_the_same_lookup(site):
    tokens = site.add("nour@example.org", "gone@example.org")
    site.forget("gone@example.org")
    kinds = {
        "forged": forged(tokens["nour@example.org"]),
        "unknown": SIGNER.make(secrets.token_hex(16), 0),
        "forgotten": tokens["gone@example.org"],
        "malformed": "garbage",
    }
    assert SIGNER.read(kinds["forged"]) is None and SIGNER.read(kinds["forgotten"]) is not None
    answers: dict[tuple[str, str], set] = {}
    for kind, token in kinds.items():
        for method, suffix in (("GET", ""), ("HEAD", ""), ("POST", ""), ("POST", "/resubscribe")):
            site.store.asked.clear()
            response = site.client.request(method, f"/u/{token}{suffix}", **(ONE_CLICK if method == "POST" else {}))
            headers = sorted((k, v) for k, v in response.headers.items() if k != "date")
            answers.setdefault((method, suffix), set()).add((response.status_code, tuple(headers), response.content))
            # one lookup each, by a key that finds nobody: the token's own when it is genuine, else a
            # random one a character short of a real key (32 hex digits)
            action = "resubscribe" if suffix else "get" if method in ("GET", "HEAD") else "unsubscribe"
            [(asked, key)] = site.store.asked
            genuine = SIGNER.read(token)
            assert asked == action, (kind, asked)
            assert key == genuine[0] if genuine else len(key) == 31 and int(key, 16) >= 0, (kind, key)
    for (method, suffix), distinct in answers.items():
        assert len(distinct) == 1, (method, suffix, distinct)
        [(status, headers, body)] = distinct
        assert status == 404 and body == (b"" if method == "HEAD" else b"Not found\n")
        assert ("cache-control", "no-store") in headers
    assert site.store.subscribers.by_email("nour@example.org").status == "active"
    assert site.client.get(f"/u/{tokens['nour@example.org']}").status_code == 200


def test_unsubscribe_bodies_over_16_kb_are_413_and_change_nothing(site):
    token = site.add("nour@example.org")["nour@example.org"]
    big = b"List-Unsubscribe=One-Click&" + b"x" * MAX_FORM_BODY
    for suffix in ("", "/resubscribe"):
        declared = site.client.post(f"/u/{token}{suffix}", content=big, headers=ONE_CLICK["headers"])
        chunked = site.client.post(f"/u/{token}{suffix}", content=stream(4 * MB), headers=ONE_CLICK["headers"])
        assert declared.status_code == chunked.status_code == 413, (suffix, declared.status_code, chunked.status_code)
    assert site.store.asked == []  # refused before the token was looked at
    assert site.store.subscribers.by_email("nour@example.org").status == "active"
    at_limit = b"List-Unsubscribe=One-Click&" + b"x" * (MAX_FORM_BODY - 27)
    assert len(at_limit) == MAX_FORM_BODY
    assert site.client.post(f"/u/{token}", content=at_limit, headers=ONE_CLICK["headers"]).status_code == 200
    assert site.store.subscribers.by_email("nour@example.org").status == "unsubscribed"
    # the test copy's link still answers its page
    assert site.client.post("/u/preview", **ONE_CLICK).status_code == 200
    assert site.client.get("/u/preview").status_code == 200


def test_sns_deep_json_is_400_and_the_server_stays_up(site):
    deep = b"[" * 100_000 + b"]" * 100_000
    envelope = json.loads((SAMPLES / "sns_envelope_notification.json").read_bytes())
    envelope["Deep"] = []
    deep_envelope = json.dumps(envelope).replace('"Deep": []', '"Deep": ' + "[" * 100_000 + "]" * 100_000).encode()
    for body in (deep, deep_envelope, b"{" * 40_000):
        response = site.client.post("/sns", content=body, headers={"Content-Type": "text/plain"})
        assert response.status_code == 400 and response.text == "nested too deeply\n", response.text
    # the fixture's own shape passes the depth check (and is rejected for what it is)
    response = site.client.post("/sns", json=envelope)
    assert response.status_code == 400 and response.text.startswith("rejected:"), response.text
    too_big = json.dumps({**envelope, "Pad": "x" * MAX_SNS_BODY}).encode()
    assert site.client.post("/sns", content=too_big).status_code == 413
    assert site.client.post("/sns", content=stream(2 * MB)).status_code == 413
    assert site.client.get("/u/preview").status_code == 200


# --- 300 MB to `newsletter serve` in a child process ---------------------------------------------


def memory_mb(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {name: int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM")}


def test_300_mb_streamed_to_sns_is_413_and_the_server_stays_within_20_mb(tmp_path, secret_env):
    project = Project(tmp_path / "p")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--config", str(project.config_path)],
        env=project.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None and time.monotonic() < deadline, "newsletter serve did not start"
                try:
                    client.get("/u/preview")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            # warm up every path the big request takes
            for _ in range(3):
                assert client.post("/sns", content=stream(1 * MB)).status_code == 413
                assert client.post("/sns", json={"Type": "Notification"}).status_code == 400
            before = memory_mb(server.pid)
            started = time.perf_counter()
            response = client.post("/sns", content=stream(300 * MB))
            took = time.perf_counter() - started
            after = memory_mb(server.pid)
            assert response.status_code == 413, response.status_code
            assert client.get("/u/preview").status_code == 200
        print(f"\n300 MB chunked POST to /sns: {response.status_code} in {took:.1f} s; server VmRSS "
              f"{before['VmRSS']:.1f} → {after['VmRSS']:.1f} MB, VmHWM {before['VmHWM']:.1f} → {after['VmHWM']:.1f} MB")  # fmt: skip
        assert after["VmRSS"] - before["VmRSS"] < 20, (before, after)
        assert after["VmHWM"] - before["VmHWM"] < 20, (before, after)
    finally:
        server.terminate()
        server.wait(timeout=30)
