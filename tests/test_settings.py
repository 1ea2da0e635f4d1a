"""Each setting of newsletter.toml is declared once (newsletter/config/): README's table of
settings and the newsletter.toml `newsletter init` writes are made from the declarations, hold
every declared key and no other."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.config.document import (
    README_END,
    README_START,
    declared_keys,
    markdown_table,
    readme_with_table,
    scaffold_toml,
)
from newsletter.errors import BadInput
from newsletter.languages import LANGUAGES

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

_HEADER = re.compile(r"^(?:#\s*)?\[([A-Za-z0-9_.]+)\]")
_ASSIGNMENT = re.compile(r"^(?:#\s*)?([A-Za-z0-9_]+)\s*=")
_ROW_KEY = re.compile(r"^\| `([^`]+)` \|")


def _expanded(keys: list[str]) -> set[str]:
    """`organisation.<language>` as one key per known language, as newsletter.toml writes them."""
    found = set()
    for key in keys:
        if key.endswith(".<language>"):
            found |= {key.replace("<language>", code) for code in LANGUAGES}
        else:
            found.add(key)
    return found


def scaffold_keys(text: str) -> list[str]:
    """Every key set or shown commented out in a newsletter.toml, with its table."""
    keys, table = [], ""
    for line in text.splitlines():
        if header := _HEADER.match(line):
            table = header.group(1)
        elif assignment := _ASSIGNMENT.match(line):
            keys.append(".".join(filter(None, (table, assignment.group(1)))))
    return keys


def readme_table() -> str:
    text = README.read_text(encoding="utf-8")
    assert text.count(README_START) == 1 and text.count(README_END) == 1, "README lost its settings markers"
    return text.partition(README_START)[2].partition(README_END)[0].strip("\n") + "\n"


def test_every_declared_key_is_in_readmes_table_and_nothing_else_is():
    rows = [m.group(1) for line in readme_table().splitlines() if (m := _ROW_KEY.match(line))]
    assert len(rows) == len(set(rows)), "a key is in README's table twice"
    assert set(rows) == set(declared_keys())


def test_readmes_table_is_what_the_declarations_make():
    assert readme_table() == markdown_table(), "run: python -m newsletter.config --readme README.md"
    text = README.read_text(encoding="utf-8")
    assert readme_with_table(text) == text


def test_every_declared_key_is_in_the_scaffold_and_nothing_else_is():
    keys = scaffold_keys(scaffold_toml())
    assert len(keys) == len(set(keys)), "a key is in the scaffold twice"
    assert set(keys) == _expanded(declared_keys())


def test_a_key_nobody_declared_fails_the_comparison():
    assert "send.colour" in set(scaffold_keys(scaffold_toml() + "\n[send]\n# colour = 1\n")) - _expanded(declared_keys())


def test_the_scaffold_is_what_init_writes_and_it_loads(tmp_path: Path):
    from newsletter.editor.scaffold import init_project

    init_project(tmp_path / "site")
    written = (tmp_path / "site" / "newsletter.toml").read_text(encoding="utf-8")
    assert written == scaffold_toml()
    config = load_config(tmp_path / "site" / "newsletter.toml")
    assert config.codes == ("ar", "en") and config.send.provider == "outbox"
    assert config.store_url == f"sqlite:///{(tmp_path / 'site' / 'newsletter.sqlite3').resolve()}"


def test_every_example_in_the_scaffold_is_a_valid_value(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("NEWSLETTER_STORE_URL", raising=False)
    (tmp_path / "templates").mkdir()
    every = re.sub(r"(?m)^# (?=\[|[A-Za-z0-9_]+ =)", "", scaffold_toml())
    (tmp_path / "newsletter.toml").write_text(every, encoding="utf-8")
    config = load_config(tmp_path / "newsletter.toml")
    assert config.signup is not None and config.mailbox is not None and config.bounces is not None
    assert config.smtp.host == "smtp.example.org" and config.feedback.region == "eu-west-1"


def test_an_undeclared_key_is_refused_with_its_line(tmp_path: Path):
    lines = scaffold_toml().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.startswith('provider = "outbox"')) + 1
    lines.insert(line - 1, 'colour = "blue"')
    text = "\n".join(lines) + "\n"
    (tmp_path / "newsletter.toml").write_text(text, encoding="utf-8")
    with pytest.raises(BadInput) as refused:
        load_config(tmp_path / "newsletter.toml")
    assert [str(p).split("newsletter.toml")[1] for p in refused.value.problems] == [f":{line}: send.colour: unknown key"]


# Each kind of setting, refused with the message it always had (the table appended to the
# project's own newsletter.toml).
REFUSED = [
    ('[send]\nrate = 0\nthreads = 1.5\nmax_attempts = true\noutbox = ""', [
        "send.rate: expected a number of at least 0.01, got 0", "send.threads: expected a whole number, got 1.5",
        "send.max_attempts: expected a whole number of at least 1, got True",
        "send.outbox: expected a non-empty string, got ''"]),
    ('[send]\nprovider = "pigeon"', ["send.provider: expected one of outbox, smtp, ses, got 'pigeon'"]),
    ('[smtp]\nsecurity = "bogus"\nport = "x"', [
        "smtp.security: expected one of starttls, tls, none, got 'bogus'", "smtp.port: expected a whole number, got 'x'"]),
    ('[ses]\ntags = { a = 1 }', ["ses.tags.a: SES tag names and values allow only A-Z, a-z, 0-9, _ and -; got 'a' = 1"]),
    ('[feedback]\ntopic_arns = ["nope"]\nsns_path = "/u/x"', [
        "feedback.topic_arns: not an SNS topic ARN: 'nope'", "feedback.sns_path: expected a path such as /sns, got '/u/x'"]),
    ('[sqs]\nregion = 5', ["sqs.region: expected a non-empty string, got 5"]),
    ('[privacy]\nimage_hosts = ["bad_host"]', [
        "privacy.image_hosts: expected host names such as images.example.org, got 'bad_host'"]),
    ('[archive]\nurl = "http://news.example.org/letters"\nsignup_url = "https://join.example.org/x?y=1"', [
        "archive.url: expected an https URL of printable ASCII with a host name, got 'http://news.example.org/letters'",
        "archive.signup_url: expected a URL without query or fragment, got 'https://join.example.org/x?y=1'"]),
    ('[dates]\nar = "roman"\nfr = "x"', [
        "dates.ar: expected one of both, egyptian, levantine, got 'roman'", "dates.fr: language 'fr' is not in languages",
        "dates.fr: unknown key"]),
    ('[bounces]\naddress = "b@x.org"\ndelimiter = 5', [
        "bounces.delimiter: expected a non-empty string, got 5", "bounces.delimiter: expected one of + - =, got None"]),
    ('[mailbox]\nhost = "imap.example.org"\nuser = "u"\nport = 70000\nfolder = "In"\nprocessed_folder = "in"\n'
     'interval = 0', [
        "mailbox.port: expected a whole number from 1 to 65535, got 70000",
        "mailbox.processed_folder: must differ from mailbox.folder ('In')",
        "mailbox.interval: expected a number above 0, got 0"]),
    ('[signup]\nlist = "bad list!"\nper_client = "x"\n[signup.consent]\nfr = "x"', [
        "signup.list: expected a list name of letters, digits, '.', '-' or '_', got 'bad list!'",
        "signup.per_client: expected int, got 'x'", "signup.consent.fr: language 'fr' is not in languages",
        "signup.consent.fr: unknown key"]),
    ('[store]\nurl = "mysql://x"', ["store.url: expected a file name, sqlite:///PATH or postgresql://…, got 'mysql://x'"]),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "messages"), REFUSED, ids=[extra.split("]")[0][1:] for extra, _ in REFUSED])
def test_each_kind_of_setting_keeps_its_message(extra: str, messages: list[str], tmp_path: Path, monkeypatch):
    monkeypatch.delenv("NEWSLETTER_STORE_URL", raising=False)
    text = (ROOT / "newsletter.toml").read_text(encoding="utf-8") + "\n" + extra + "\n"
    (tmp_path / "newsletter.toml").write_text(text, encoding="utf-8")
    with pytest.raises(BadInput) as refused:
        load_config(tmp_path / "newsletter.toml")
    assert sorted(problem.message for problem in refused.value.problems) == sorted(messages)


@pytest.mark.parametrize(("first", "key"), [("send = 5", "send"), ("[signup]\nlist = \"x\"\nconsent = 5", "signup.consent")])
def test_a_value_where_a_table_belongs_is_refused_not_ignored(first: str, key: str, tmp_path: Path):
    text = first + "\n" + (ROOT / "newsletter.toml").read_text(encoding="utf-8")
    (tmp_path / "newsletter.toml").write_text(text, encoding="utf-8")
    with pytest.raises(BadInput) as refused:
        load_config(tmp_path / "newsletter.toml")
    wanted = f"{key}: expected a table ([{key}] with its settings), got 5"
    assert any(str(p).endswith(wanted) for p in refused.value.problems), refused.value.problems


def test_a_mistyped_key_is_refused_with_the_nearest_known_one(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("NEWSLETTER_STORE_URL", raising=False)
    text = 'layuot = "bilingual"\n' + (ROOT / "newsletter.toml").read_text(encoding="utf-8")
    text += '\n[sned]\nrate = 5\n\n[smtp]\nhots = "smtp.example.org"\ncolour = 1\n'
    (tmp_path / "newsletter.toml").write_text(text, encoding="utf-8")
    with pytest.raises(BadInput) as refused:
        load_config(tmp_path / "newsletter.toml")
    assert sorted(problem.message for problem in refused.value.problems) == [
        "layuot: unknown key; did you mean 'layout'?",
        "smtp.colour: unknown key",  # nothing near it: no guess
        "smtp.hots: unknown key; did you mean 'host'?",
        "sned: unknown key; did you mean 'send'?",
    ]


@pytest.mark.parametrize("where", ["a-folder", "a-file/newsletter.toml"])
def test_a_config_that_cannot_be_read_is_one_line(where: str, tmp_path: Path):
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(BadInput) as refused:
        load_config(tmp_path / where)
    [problem] = refused.value.problems
    assert problem.message in ("cannot be read: is a directory", "cannot be read: not a directory"), problem
