"""Spreadsheets as the team really has them, imported with `newsletter subscribers import`: each
file is written here in the form Excel or Google Forms writes it (the bytes, the separator, the
headers), and every good row must come in with the right name and language, the summary naming
the encoding, the separator and what each column was used for."""

from __future__ import annotations

import codecs
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import Project

from newsletter.cli import cli

PEOPLE = [
    ("nour@example.org", "نور حداد", "ar"),
    ("jane@example.org", "Jane Doe", "en"),
    ("salim@example.org", "سليم العلي", "ar"),
    ("maya@example.org", "Maya Haddad", "en"),
]


def csv_text(header: list[str], rows: list[list[str]], sep: str) -> str:
    return "\r\n".join(sep.join(cells) for cells in [header, *rows]) + "\r\n"


def written(project, name: str, data: bytes):
    path = project.root / name
    path.write_bytes(data)
    return path


def run_import(project, path, *extra: str):
    return CliRunner().invoke(
        cli,
        ["subscribers", "import", str(path), "--list", "partners", *extra, "--config", str(project.config_path)],
        env=project.env,
    )


def stored(project) -> dict[str, tuple[str, str]]:
    store = project.store()
    try:
        return {s.email: (s.name, s.language) for s in store.subscribers.all("partners")}
    finally:
        store.close()


EXPECTED = {email: (name, language) for email, name, language in PEOPLE}

# (file name, bytes, what the summary must say)
FORMS = {
    # Excel "CSV (Comma delimited)" on Windows in an Arabic locale: Windows-1256, no BOM
    "excel-arabic-locale.csv": (
        csv_text(["email", "name", "language"], [list(p) for p in PEOPLE], ",").encode("cp1256"),
        "Windows-1256, comma-separated; email from 'email', name from 'name', language from 'language'",
    ),
    # Excel "Unicode Text": UTF-16 little-endian with its BOM, tab-separated
    "excel-unicode-text.txt": (
        codecs.BOM_UTF16_LE + csv_text(["E-mail", "Full name", "Language"], [list(p) for p in PEOPLE], "\t").encode("utf-16-le"),
        "UTF-16, tab-separated; email from 'E-mail', name from 'Full name', language from 'Language'",
    ),
    # Excel "CSV UTF-8" in a locale whose list separator is the semicolon
    "excel-semicolons.csv": (
        codecs.BOM_UTF8 + csv_text(["Email", "Name", "Language"], [list(p) for p in PEOPLE], ";").encode("utf-8"),
        "UTF-8 (with BOM), semicolon-separated",
    ),
    # a Google Forms export: timestamp first, "Email Address", language written out, an extra column
    "google-forms.csv": (
        csv_text(
            ["Timestamp", "Email Address", "Full name", "Preferred language", "Organisation"],
            [
                ["2022/12/01 10:02:11 AM GMT+3", e, n, {"ar": "Arabic", "en": "English"}[lang], f"Org {i}"]
                for i, (e, n, lang) in enumerate(PEOPLE)
            ],
            ",",
        ).encode("utf-8"),
        "email from 'Email Address', name from 'Full name', language from 'Preferred language'; "
        "kept as attributes: 'Timestamp', 'Organisation'",
    ),
    # Excel "Unicode Text" run through a tool that dropped the byte-order mark, either byte order
    "utf16-little-endian-no-bom.txt": (
        csv_text(["E-mail", "Full name", "Language"], [list(p) for p in PEOPLE], "\t").encode("utf-16-le"),
        "UTF-16 (little-endian, no BOM), tab-separated; email from 'E-mail'",
    ),
    "utf16-big-endian-no-bom.txt": (
        csv_text(["البريد الإلكتروني", "الاسم", "اللغة"], [list(p) for p in PEOPLE], ",").encode("utf-16-be"),
        "UTF-16 (big-endian, no BOM), comma-separated; email from 'البريد الإلكتروني'",
    ),
    # Arabic headers and Arabic language values, as an Arabic form writes them
    "arabic-headers.csv": (
        csv_text(
            ["البريد الإلكتروني", "الاسم", "اللغة"],
            [[e, n, {"ar": "العربية", "en": "الإنجليزية"}[lang]] for e, n, lang in PEOPLE],
            ",",
        ).encode("utf-8"),
        "email from 'البريد الإلكتروني', name from 'الاسم', language from 'اللغة'",
    ),
}


@pytest.mark.parametrize("name", sorted(FORMS))
def test_every_good_row_comes_in_with_its_name_and_language(project, name):
    data, summary = FORMS[name]
    result = run_import(project, written(project, name, data))
    assert result.exit_code == 0, result.output
    assert summary in result.output, result.output
    assert "partners: 4 added, 0 updated" in result.output
    assert stored(project) == EXPECTED


def test_language_values_in_words_both_languages(project):
    values = ["Arabic", "عربي", "العربية", "ENGLISH", "english ", "الإنجليزية", "en", "AR", "both", "كلتاهما"]
    rows = [[f"p{i}@example.org", f"P {i}", value] for i, value in enumerate(values)]
    result = run_import(project, written(project, "values.csv", csv_text(["email", "name", "language"], rows, ",").encode()))
    assert result.exit_code == 0, result.output
    got = {email: language for email, (_, language) in stored(project).items()}
    assert [got[f"p{i}@example.org"] for i in range(len(values))] == [
        "ar", "ar", "ar", "en", "en", "en", "en", "ar", "both", "both"
    ]


def test_extra_columns_are_kept_as_attributes_or_dropped(project):
    text = csv_text(["Email", "Name", "Organisation", "City"], [["rana@example.org", "Rana", "Amel", "صيدا"]], ",")
    result = run_import(project, written(project, "extra.csv", text.encode()))
    assert "kept as attributes: 'Organisation', 'City'" in result.output
    store = project.store()
    assert store.reports.person("rana@example.org", project.env["NEWSLETTER_SECRET_KEY"].encode()).attributes == {
        "City": "صيدا", "Organisation": "Amel"
    }
    # a second file adds to them and changes what it gives
    text = csv_text(["Email", "City", "Phone"], [["rana@example.org", "Beirut", "+961 1 000 000"]], ",")
    run_import(project, written(project, "more.csv", text.encode()))
    assert store.reports.person("rana@example.org", project.env["NEWSLETTER_SECRET_KEY"].encode()).attributes == {
        "City": "Beirut", "Organisation": "Amel", "Phone": "+961 1 000 000"
    }
    store.close()
    dropped = run_import(project, written(project, "drop.csv", b"email,name,Notes\nnew@example.org,New,private\n"), "--ignore-extra")
    assert dropped.exit_code == 0 and "kept as attributes" not in dropped.output
    store = project.store()
    assert store.reports.person("new@example.org", project.env["NEWSLETTER_SECRET_KEY"].encode()).attributes == {}
    store.close()


def test_a_column_named_by_the_user(project):
    text = csv_text(["Contact", "Who"], [["x@example.org", "X"]], ",")
    path = written(project, "named.csv", text.encode())
    refused = run_import(project, path)
    assert refused.exit_code == 2 and "no email column in the header" in refused.output
    result = run_import(project, path, "--column", 'email="Contact"', "--column", "name=Who")
    assert result.exit_code == 0, result.output
    assert "email from 'Contact', name from 'Who'" in result.output
    assert stored(project)["x@example.org"] == ("X", "ar")


def test_a_bad_row_in_a_windows_1256_file_is_named_by_line_and_the_rest_come_in(project):
    rows = [["nour@example.org", "نور", "عربي"], ["not-an-address", "خطأ", "ar"], ["jane@example.org", "Jane", "Klingon"]]
    result = run_import(project, written(project, "bad.csv", csv_text(["email", "name", "language"], rows, ",").encode("cp1256")))
    assert result.exit_code == 1
    assert "bad.csv:3: 'not-an-address'" in result.output
    assert "bad.csv:4: language 'Klingon' is not one of ar, en" in result.output
    assert stored(project) == {"nour@example.org": ("نور", "ar")}


def test_a_sheet_of_utf8_and_windows_1256_rows_names_the_1256_ones_and_stores_the_others_right(project):
    # rows pasted together from two files: one saved as CSV UTF-8, one by Excel in an Arabic locale
    utf8 = [["nour@example.org", "نور حداد", "ar"], ["jane@example.org", "Jane Doe", "en"], ["salim@example.org", "سليم العلي", "ar"]]
    cp1256 = [["rana@example.org", "رنا صالح", "ar"], ["omar@example.org", "عمر العطار", "عربي"]]
    data = (
        csv_text(["email", "name", "language"], utf8[:2], ",").encode()
        + csv_text([], cp1256, ",").lstrip("\r\n").encode("cp1256")
        + csv_text([], utf8[2:], ",").lstrip("\r\n").encode()
    )
    result = run_import(project, written(project, "mixed.csv", data))
    assert result.exit_code == 1, result.output
    assert "read mixed.csv as UTF-8, comma-separated" in result.output
    named = [line.split(":")[1] for line in result.output.splitlines() if line.startswith(str(project.root / "mixed.csv:"))]
    assert named == ["4", "5"], result.output
    assert "mixed.csv:4: not UTF-8 text, unlike the rest of the file" in result.output
    assert "partners: 3 added, 0 updated" in result.output and "2 bad rows" in result.output
    assert stored(project) == {e: (n, lang) for e, n, lang in utf8}


def test_text_garbled_before_it_was_saved_is_named_not_stored(project):
    garbled = "نور حداد".encode().decode("cp1256")  # ظ†ظˆط± ط­ط¯ط§ط¯: opened once as Windows-1256
    text = csv_text(["email", "name"], [["nour@example.org", garbled], ["jane@example.org", "Jane"]], ",")
    result = run_import(project, written(project, "garbled.csv", text.encode()))
    assert result.exit_code == 1
    assert "garbled.csv:2: garbled text: UTF-8 once opened as Windows-1256" in result.output
    assert stored(project) == {"jane@example.org": ("Jane", "ar")}


def test_a_workbook_saved_with_a_csv_name_is_refused_and_nothing_is_written(project):
    result = run_import(project, written(project, "people.csv", b"PK\x03\x04" + bytes(2000)))
    assert result.exit_code == 2 and "people.csv: an Excel workbook, not CSV" in result.output
    assert not (project.root / "newsletter.sqlite3").exists()  # the file was refused before the store was opened


# --- a big file, read as it goes ----------------------------------------------------------------


def big_sheet(path, size: int) -> int:
    """A sheet of about `size` bytes of people (every other one Arabic); the number of rows."""
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("email,name,language\n")
        written_bytes = 0
        while written_bytes < size:
            block = "".join(
                f"person{n:08d}@example.org,{'مشارك' if n % 2 else 'Participant'} {n},{'ar' if n % 2 else 'en'}\n"
                for n in range(rows, rows + 10_000)
            )
            fh.write(block)
            written_bytes += len(block.encode())
            rows += 10_000
    return rows


# The child's own peak: an exec keeps the high-water mark of the process it replaces, and a
# posix_spawn (vfork) child's starts from its parent's, so an import spawned straight from pytest
# would report pytest's peak whenever that is the larger. A small interpreter without site in
# between starts it and reports what wait4 says of it.
PEAK_OF_CHILD = """
import os, sys
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def import_peak_mb(project, path) -> tuple[float, str]:
    """`newsletter subscribers import` of `path` in a child process: its peak RSS in MB, and its output."""
    command = [sys.executable, "-m", "newsletter", "subscribers", "import", str(path), "--list", "main",
               "--config", str(project.config_path)]  # fmt: skip
    done = subprocess.run([sys.executable, "-S", "-c", PEAK_OF_CHILD, *command], env=project.env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    *output, last = done.stdout.splitlines()
    status, peak_kb = (int(word) for word in last.split())
    assert status == 0, done.stderr[-2000:]
    return peak_kb / 1024, "\n".join(output)


@pytest.mark.trials
def test_an_imports_memory_does_not_grow_with_the_file(tmp_path):
    """Two sheets of the same kind, 1 MB and 6 MB, each imported into its own project: the larger
    one's peak RSS is at most a few MB above the smaller one's. An import that held its rows
    (about 125,000 more) was 47 MB above when tried. The 200 MB figure is bench/imports.py's."""
    peaks = {}
    for size_mb in (1, 6):
        project = Project(tmp_path / f"{size_mb}mb")
        path = tmp_path / f"{size_mb}mb.csv"
        rows = big_sheet(path, size_mb * 1024 * 1024)
        peaks[size_mb], output = import_peak_mb(project, path)
        assert f"main: {rows} added" in output, output
    print(f"\npeak RSS: 1 MB sheet {peaks[1]:.1f} MB, 6 MB sheet {peaks[6]:.1f} MB ({peaks[6] - peaks[1]:+.1f} MB)")
    assert peaks[6] - peaks[1] < 10, peaks
