"""Per-recipient messages: placeholders, escaping, headers, tokens, and the MIME they make."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.letter.render import build_issue
from newsletter.message.composer import ComposeError, Composer, Recipient
from newsletter.message.headers import from_header, subject_header
from newsletter.placeholders import Slots
from newsletter.keys import TokenSigner

NOW = dt.datetime(2022, 12, 20, 9, 0, tzinfo=dt.timezone.utc)
KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def composer(year_end_build):
    return Composer(year_end_build.variants, year_end_build.config, signer=TokenSigner(b"k" * 32), campaign_id=3)


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


@pytest.mark.parametrize("variant", ["ar", "en", "bilingual"])
def test_message_is_the_rendered_variant_with_values_filled_in(composer, year_end_build, variant):
    out = composer.compose(variant, Recipient("Nour@example.org", "نور", KEY, 42), NOW)
    msg = parse(out.data)
    assert not msg.defects and all(not p.defects for p in msg.iter_parts())
    url = msg["List-Unsubscribe"].strip("<>")
    values = {"unsubscribe_url": url, "name": "نور", "email": "Nour@example.org"}
    v = year_end_build.variants[variant]
    def same(part: str, text: str, html: bool) -> None:
        got = msg.get_body((part,)).get_content().replace("\r\n", "\n")
        assert got == Slots(text, html=html).fill(values).replace("\r\n", "\n")

    same("html", v.html, True)
    same("plain", v.text, False)
    assert f'href="{url}"' in msg.get_body(("html",)).get_content()
    assert msg["Subject"] == v.subject
    assert msg["To"] == "Nour@example.org"
    assert msg["Content-Language"] == ",".join(v.languages)
    assert msg["Message-ID"].startswith("<3.42.") and msg["Message-ID"].endswith("@news.example.org>")
    assert out.data.isascii()
    assert max(len(line) for line in out.data.split(b"\r\n")) <= 998


def test_unsubscribe_header_holds_an_opaque_token_and_no_address(composer):
    out = composer.compose("en", Recipient("someone@example.org", "", KEY, 1), NOW)
    msg = parse(out.data)
    header = msg["List-Unsubscribe"]
    assert header.startswith("<https://news.example.org/u/") and "=?" not in header
    assert "someone" not in header and "@" not in header
    token = header.strip("<>").rsplit("/", 1)[1]
    assert TokenSigner(b"k" * 32).read(token) == (KEY, 3)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    raw_header = out.data.split(b"\r\n\r\n")[0]
    assert b"List-Unsubscribe: <https://" in raw_header  # not folded into encoded words


def test_values_are_escaped_in_html_and_cannot_inject_headers(year_end_build):
    v = year_end_build.variants["en"]
    filled = Slots('<a href="__NL_UNSUBSCRIBE_URL__">x</a> __NL_NAME__', html=True).fill(
        {"unsubscribe_url": 'https://x/"><script>', "name": "<b>Eve</b>"}
    )
    assert filled == '<a href="https://x/&quot;&gt;&lt;script&gt;">x</a> &lt;b&gt;Eve&lt;/b&gt;'
    composer = Composer({"en": v}, year_end_build.config, signer=None, campaign_id=0)
    for bad in ("a@example.org\r\nBcc: victim@example.org", "a@example.org, b@example.org", "نور@example.org"):
        with pytest.raises(ComposeError):
            composer.compose("en", Recipient(bad, "", KEY, 1), NOW)


def test_tokens_reject_tampering_and_other_keys():
    signer = TokenSigner(b"s" * 32)
    token = signer.make(KEY, 7)
    assert signer.read(token) == (KEY, 7)
    assert TokenSigner(b"t" * 32).read(token) is None
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert signer.read(flipped) is None
    for junk in ("", "x", "!" * 20, token + "AA", "preview"):
        assert signer.read(junk) is None
    assert "@" not in token and len(token) < 60


def test_ascii_parts_use_quoted_printable_and_arabic_base64(composer):
    msg = parse(composer.compose("en", Recipient("a@example.org", "", KEY, 1), NOW).data)
    assert [p["Content-Transfer-Encoding"] for p in msg.iter_parts()] == ["quoted-printable", "quoted-printable"]
    msg = parse(composer.compose("ar", Recipient("a@example.org", "", KEY, 1), NOW).data)
    assert [p["Content-Transfer-Encoding"] for p in msg.iter_parts()] == ["base64", "base64"]


def test_quoted_printable_split_encoding_decodes_to_the_same_bytes():
    """The shared beginning is encoded once with a soft line break, the rest per message."""
    import binascii
    import random

    from newsletter.message.composer import _qp, _qp_open_end

    rng = random.Random(7)
    for _ in range(3000):
        head = bytes(rng.choice(b"ab =\t\n\xc3\xa9<>") for _ in range(rng.randint(0, 300)))
        tail = bytes(rng.choice(b"cd =\n\xd8\xa7") for _ in range(rng.randint(0, 100))) + b">"
        encoded = _qp_open_end(head) + _qp(tail)
        assert binascii.a2b_qp(encoded.replace(b"\r\n", b"\n")) == head + tail
        # 78: binascii's own limit for lines ending in an escaped space
        assert max(len(line) for line in encoded.split(b"\r\n")) <= 78


# --- Subject and From: RFC 2047 encoded-words of at most 75 characters ------------------------------

ROOT = Path(__file__).resolve().parents[1]
ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
LONG_NAME = "غرفة دعم المجتمع المدني في مكتب المبعوث الخاص للأمين العام للأمم المتحدة إلى سوريا"


@pytest.fixture(scope="module")
def mailparser():
    """Node's mailparser (tests/node, installed by scripts/setup): a second, independent decoder."""
    node = shutil.which("node")
    assert node, "node not installed: scripts/setup installs it"
    folder = ROOT / "tests" / "node"
    assert (folder / "node_modules" / "mailparser").is_dir(), "run scripts/setup (npm ci in tests/node)"
    proc = subprocess.Popen([node, str(folder / "headers.js")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def parse(raw: bytes) -> dict:
        assert proc.stdin and proc.stdout
        proc.stdin.write(base64.b64encode(raw).decode("ascii") + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    yield parse
    proc.terminate()


def encoded_word_problems(raw: bytes) -> list[str]:
    """Encoded-words over 75 characters, and lines holding one over 76 (RFC 2047 section 2)."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    problems = [f"encoded-word of {len(w)}: {w[:30]!r}" for w in ENCODED_WORD.findall(head) if len(w) > 75]
    problems += [f"line of {len(line)}: {line[:30]!r}" for line in head.split(b"\r\n") if ENCODED_WORD.search(line) and len(line) > 76]
    return problems


def test_the_header_check_can_fail():
    """What the email package wrote before: the whole Arabic subject in one encoded-word."""
    from email.message import EmailMessage

    from newsletter.message.composer import POLICY

    msg = EmailMessage(policy=POLICY)
    msg["Subject"] = "تحديث نهاية العام لغرفة دعم المجتمع المدني – ديسمبر 2022"
    assert encoded_word_problems(msg.as_bytes(policy=POLICY))


@pytest.mark.parametrize("prefix", ["", "[TEST] "])
@pytest.mark.parametrize("issue", ["year-end", "links-and-lists"])
def test_every_header_decodes_to_exactly_the_subject_and_name_in_both_parsers(issue, prefix, mailparser):
    path = ROOT / "issues" / "2022-12-year-end" if issue == "year-end" else ROOT / "tests/fixtures/project/issues/links-and-lists"
    build = build_issue(path)
    names = {"ar": "غرفة دعم المجتمع المدني", "en": "Civil Society Support Room"}
    if issue != "year-end":
        names = {"ar": "غرفة الاختبار", "en": "Test Room"}
    names["bilingual"] = f"{names['ar']} | {names['en']}"
    composer = Composer(build.variants, build.config, signer=TokenSigner(b"k" * 32), campaign_id=3, subject_prefix=prefix)
    for name, variant in build.variants.items():
        raw = composer.compose(name, Recipient("nour@example.org", "نور", KEY, 1), NOW).data
        assert encoded_word_problems(raw) == [], name
        subject = prefix + variant.subject
        msg = parse(raw)
        assert msg["Subject"] == subject
        assert msg["From"].addresses[0].display_name == names[name]
        assert msg["From"].addresses[0].addr_spec == "updates@news.example.org"
        node = mailparser(raw)
        assert node == {"subject": subject, "fromName": names[name], "fromAddress": "updates@news.example.org"}, name
        if not variant.subject.isascii():
            assert b"=?utf-8?" in raw.split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize(
    "value",
    [LONG_NAME, "Room, Inc. — غرفة", 'A "quoted" name غرفة', "تحديث " * 30, "Civil Society Support Room Year-End Update – December 2022"],
)
def test_long_and_awkward_values_stay_within_the_limits(value, mailparser):
    raw = from_header(value, "updates@news.example.org") + subject_header(value) + b"\r\nbody\r\n"
    assert encoded_word_problems(raw) == []
    node = mailparser(raw)
    assert node["subject"] == value
    assert " ".join(node["fromName"].split()) == " ".join(value.split())
    assert parse(raw)["Subject"] == value


def test_organisation_bilingual_names_the_bilingual_sender(tmp_path):
    text = (ROOT / "newsletter.toml").read_text(encoding="utf-8")
    text = text.replace('en = "Civil Society Support Room"\n', 'en = "Civil Society Support Room"\nbilingual = "CSSR – الغرفة"\n', 1)
    path = tmp_path / "newsletter.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    build = build_issue(ROOT / "issues" / "2022-12-year-end")
    composer = Composer(build.variants, config, signer=None, campaign_id=0)
    msg = parse(composer.compose("bilingual", Recipient("a@example.org", "", KEY, 1), NOW).data)
    assert msg["From"].addresses[0].display_name == "CSSR – الغرفة"
