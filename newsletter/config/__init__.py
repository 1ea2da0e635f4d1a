"""newsletter.toml: found (`config_for`), read and validated up front, every problem reported as
`key: problem`. Every setting is declared once, as a field of a `@table` class: the top level
here, the other tables in delivery.py, mail.py, web.py and signup.py; the reader and the kinds
of setting are in toml.py, README's table and the `init` scaffold come from document.py."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from newsletter.config.declare import DECLARED, Table, setting, table
from newsletter.config.delivery import FeedbackSettings, PrivacySettings, SendSettings, SESSettings, SMTPSettings
from newsletter.config.mail import TAG_DELIMITERS, BounceSettings, MailboxSettings
from newsletter.config.signup import DEFAULT_CONSENT, SignupSettings
from newsletter.config.toml import (
    CONTROL,
    MISSING,
    URL,
    Address,
    Choice,
    Kind,
    Languages,
    PerLanguage,
    Text,
    TomlReader,
    read_toml,
)
from newsletter.config.web import ArchiveSettings
from newsletter.errors import BadInput, Problems
from newsletter.languages import DATE_STYLES, DIGIT_STYLES, LANGUAGES, Language

CONFIG_NAME = "newsletter.toml"
STORE_ENV = "NEWSLETTER_STORE_URL"  # e.g. postgresql:// with libpq's PGHOST, PGUSER, PGPASSWORD…
STORE_FILE = "newsletter.sqlite3"  # the default database: a SQLite file beside newsletter.toml
LAYOUTS = ("bilingual", "per-recipient")
# The sender's name `newsletter init` writes: its example letter builds and checks with it, and a
# real send refuses it, as it refuses the example's addresses (newsletter.editor.checks).
EXAMPLE_ORGANISATION = {"ar": "منظمة المثال", "en": "Example Organisation"}


class FieldColumns(Kind):
    """The personal fields a letter may use besides `name`, each with the spreadsheet column it is
    filled from: a table of field = column (`fields = { organisation = "المنظمة" }`), or a list
    of columns that are fields of their own name (`fields = ["organisation"]`)."""

    type_name = "table of field = column, or list of columns"

    def read(self, r: TomlReader, key: str, default: Any) -> Any:
        raw = r.lookup(key)
        if raw is None:
            return ()
        if not isinstance(raw, dict | list):
            r.problem(key, f'expected a table such as {{ organisation = "المنظمة" }} or a list of columns, got {raw!r}')
            return ()
        found: dict[str, str] = {}
        for name, column in raw.items() if isinstance(raw, dict) else ((c, c) for c in raw):
            where = f"{key}.{name}" if isinstance(raw, dict) else key
            if not isinstance(column, str) or not column.strip() or CONTROL.search(column):
                r.problem(where, f"expected the name of a spreadsheet column, got {column!r}")
            elif not str(name).isidentifier() or name == "name":
                r.problem(where, f"{name!r} cannot be a field's name ({{{{ {name} }}}}): {_FIELD_NAME}")
            else:
                found[name] = column.strip()
        return tuple(found.items())


_FIELD_NAME = (
    "letters, digits and _, not `name` (always there); for a column such as 'Organisation name' write "
    'fields = { organisation = "Organisation name" }'
)
_LIST_ID = Text(re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+").fullmatch, "a dotted label such as updates.example.org")


@table("dates", "month names per language")
class DateSettings:
    """How each language writes a month: `[dates] ar = "both" | "egyptian" | "levantine"`."""

    styles: tuple[tuple[str, str], ...] = setting(
        PerLanguage(Choice(DATE_STYLES), any_code=True), key="dates", default=(), example={"ar": '"both"', "en": '"english"'},
        default_text="the first of each: ar both, en english",
        help='"levantine" (كانون الأول), "egyptian" (ديسمبر) or "both" (ديسمبر كانون الأول)',
    )  # fmt: skip

    def style(self, code: str) -> str | None:
        return dict(self.styles).get(code) or (DATE_STYLES.get(code) or (None,))[0]


@table("", kw_only=True)
class Config:
    root: Path
    path: Path
    languages: tuple[Language, ...] = setting(Languages(), example='["ar", "en"]', shown=True,
                                              help="the letters' languages; the first is the primary language")  # fmt: skip
    layout: str = setting(Choice(LAYOUTS), default="bilingual", example='"bilingual"', shown=True,
                          help="bilingual, or per-recipient: each subscriber gets their language")  # fmt: skip
    fields: tuple[tuple[str, str], ...] = setting(  # (field, column)
        FieldColumns(), default=(), default_text="none", example='{ organisation = "المنظمة" }',
        help="personal fields besides name, each filled from its spreadsheet column ({{ organisation }} from "
             'المنظمة); a list, ["organisation"], for fields named as their columns',
    )  # fmt: skip
    base_url: str = setting(URL(base=True), example='"https://news.example.org"', shown=True,
                            help="where `newsletter serve` answers (unsubscribe links)")  # fmt: skip
    list_id: str | None = setting(_LIST_ID, default=None, default_text='"newsletter." + base_url\'s host',
                                  example='"newsletter.news.example.org"', help="the List-Id label")  # fmt: skip
    templates: Path = setting(Text(), default=None, default_text="the package's", example='"templates"',
                              help="your own copy of the templates (a folder beside newsletter.toml)")  # fmt: skip
    organisation: dict[str, str] = setting(
        PerLanguage(Text(strip=True), each=MISSING), example={code: f'"{name}"' for code, name in EXAMPLE_ORGANISATION.items()},
        shown=True, help="the sender's name, per language",
    )  # fmt: skip
    organisation_bilingual: str | None = setting(
        Text(strip=True), key="organisation.bilingual", default=None, default_text="the names joined",
        example='"المنظمة · The organisation"',
        help="the bilingual letter's From name",
    )  # fmt: skip
    sender: str = setting(Address(), key="email.from", example='"updates@news.example.org"', shown=True,
                          help="the From address")  # fmt: skip
    reply_to: str = setting(Address(), key="email.reply_to", default_from="sender", default_text="email.from",
                            example='"contact@example.org"', help="where replies go")  # fmt: skip
    contact: str = setting(Address(), key="email.contact", default_from="reply_to", default_text="email.reply_to",
                           example='"contact@example.org"', help="shown in the footer")  # fmt: skip
    preview_to: str = setting(Address(), key="email.preview_to", default="preview@example.org",
                              example='"editor@example.org"', help="recipient of the sample .eml files")  # fmt: skip
    unsubscribe_mailto: str | None = setting(Address(), key="email.unsubscribe", default=None,
                                             example='"unsubscribe@news.example.org"',
                                             help="adds a mailto to List-Unsubscribe")  # fmt: skip
    numbering: dict[str, str] = setting(PerLanguage(Choice(DIGIT_STYLES), each="western"), default_text='"western"',
                                        example={"ar": '"arabic-indic"', "en": '"western"'}, shown=True,
                                        help='"western" (1.) or "arabic-indic" (١.)')  # fmt: skip
    store_url: str = setting(
        Text(), key="store.url", default=STORE_FILE, example=f'"{STORE_FILE}"',
        help=f"a file beside newsletter.toml, sqlite:///PATH or postgresql://user@host/db; {STORE_ENV} wins",
    )  # fmt: skip
    send: SendSettings = SendSettings()
    smtp: SMTPSettings = SMTPSettings()
    ses: SESSettings = SESSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    privacy: PrivacySettings = PrivacySettings()
    bounces: BounceSettings | None = None  # [bounces]: VERP envelope sender, tagged unsubscribe mailto
    mailbox: MailboxSettings | None = None  # [mailbox]: the IMAP mailbox `feedback mailbox` reads
    archive: ArchiveSettings = ArchiveSettings()  # [archive]: where the public archive answers
    dates: DateSettings = DateSettings()  # [dates]: month names per language
    signup: SignupSettings | None = None  # [signup]: the sign-up form of `newsletter serve`

    @property
    def primary(self) -> Language:
        return self.languages[0]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(language.code for language in self.languages)

    def language(self, code: str) -> Language:
        return LANGUAGES[code]


# Every declared table, in the order README's table and the scaffold show them.
TABLES = (Config, SendSettings, SMTPSettings, SESSettings, FeedbackSettings, BounceSettings, MailboxSettings,
          PrivacySettings, ArchiveSettings, DateSettings, SignupSettings)  # fmt: skip


def default_store_url(root: Path) -> str:
    """The database of a project at `root` when newsletter.toml names none."""
    return f"sqlite:///{(root / STORE_FILE).resolve()}"


def packaged_templates() -> Path:
    """The templates that come with the package: in an installed wheel they sit inside it;
    in a source checkout (or an editable install) they are the top-level templates/ folder."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "templates"
    return installed if installed.is_dir() else package.parent / "templates"


def find_config(start: Path) -> Path | None:
    """The nearest newsletter.toml in `start` or one of its parents."""
    start = Path(os.path.abspath(start))  # not resolve(): a symlinked issue belongs where it is linked
    for folder in [start, *start.parents]:
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def config_for(start: Path, explicit: Path | None = None) -> Path | None:
    """The newsletter.toml a command uses: the one given, else the nearest one above
    `start` (an issue folder), else the nearest one above the current folder."""
    return explicit or find_config(start) or find_config(Path.cwd())


def locate_config(start: Path, explicit: Path | None = None) -> Path:
    """`config_for`, or BadInput when there is none."""
    path = config_for(start, explicit)
    if path is None:
        raise BadInput.single(CONFIG_NAME, "not found in the issue folder, its parents or the current folder")
    return path


def load_config(path: Path) -> Config:
    """Read and validate newsletter.toml; raises BadInput listing every problem."""
    problems = Problems()
    data = read_toml(path, problems)
    config = _validate(data, path.resolve(), problems) if data is not None else None
    if config is None:
        problems.raise_if_any()
        raise AssertionError("newsletter.toml refused without a problem")
    return config


def _validate(data: dict[str, Any], path: Path, problems: Problems) -> Config | None:
    root = path.parent
    r = TomlReader(data, path, problems)
    r.unknown_keys(allowed_keys(DECLARED[declared] for declared in TABLES))
    top = read_table(r, DECLARED[Config])
    if top["list_id"] is None and top["base_url"] and top["sender"]:
        top["list_id"] = f"newsletter.{urlsplit(top['base_url']).hostname or 'localhost'}"
        _LIST_ID.refuse(r, "list_id", top["list_id"])
    templates = top["templates"]
    top["templates"] = root / templates if templates else packaged_templates()
    if templates and not top["templates"].is_dir():
        r.problem("templates", f"folder not found: {templates!r}")
    top["store_url"] = _store_url(r, root, top["store_url"])
    tables = _tables(r, top)
    if problems or not all(top[name] for name in ("sender", "reply_to", "contact", "preview_to")):
        return None
    return Config(root=root, path=path, **top, **tables)


def _store_url(r: TomlReader, root: Path, url: str | None) -> str | None:
    if os.environ.get(STORE_ENV):  # a deployment's setting wins: no password in newsletter.toml
        url = os.environ[STORE_ENV].strip()
    if url is not None and "://" not in url:
        return f"sqlite:///{(root / url).resolve()}"
    if url is not None and not url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        r.problem("store.url", f"expected a file name, sqlite:///PATH or postgresql://…, got {url!r}")
    return url


def _tables(r: TomlReader, top: dict[str, Any]) -> dict[str, Any]:
    """The tables below the top level, with what they take from it."""
    found: dict[str, Any] = {
        name: declared(**read_table(r, DECLARED[declared]))
        for name, declared in (("send", SendSettings), ("smtp", SMTPSettings), ("ses", SESSettings),
                               ("feedback", FeedbackSettings), ("privacy", PrivacySettings))
    }  # fmt: skip
    found["bounces"] = _bounces(r) if "bounces" in r.data else None
    found["mailbox"] = _mailbox(r) if "mailbox" in r.data else None
    found["signup"] = _signup(r, top["organisation"]) if "signup" in r.data else None
    base_url = top["base_url"]
    archive = read_table(r, DECLARED[ArchiveSettings])
    url = (archive["url"] or (f"{base_url}/archive" if base_url else "")).rstrip("/") or None
    signup_url = archive["signup_url"]
    if found["signup"] and base_url and not signup_url:  # the archive's pages offer serve's own form
        signup_url = f"{base_url}/subscribe"
    found["archive"] = ArchiveSettings(url=url, signup_url=signup_url)
    found["dates"] = DateSettings(tuple(read_table(r, DECLARED[DateSettings])["styles"].items()))
    return found


def _bounces(r: TomlReader) -> BounceSettings | None:
    values = read_table(r, DECLARED[BounceSettings])
    raw, delimiter = values["address"], values["delimiter"]
    if delimiter not in TAG_DELIMITERS or raw is None:
        return None
    address = parseaddr(raw)[1]
    if delimiter in address.partition("@")[0]:
        r.problem("bounces.address", f"the local part must not contain the delimiter {delimiter!r}: {raw!r}")
        return None
    return BounceSettings(address=address, delimiter=delimiter)


def _mailbox(r: TomlReader) -> MailboxSettings | None:
    values = read_table(r, DECLARED[MailboxSettings])
    if values["folder"].lower() == values["processed_folder"].lower():
        r.problem("mailbox.processed_folder", f"must differ from mailbox.folder ({values['folder']!r})")
    if values["host"] is None or values["user"] is None:
        return None
    return MailboxSettings(**values)


def _signup(r: TomlReader, organisation: dict[str, str]) -> SignupSettings | None:
    values = read_table(r, DECLARED[SignupSettings])
    own = values["consent"]
    consent = []
    for code in r.codes:
        name = organisation.get(code) or next(iter(organisation.values()), "")
        sentence = DEFAULT_CONSENT.get(code, DEFAULT_CONSENT["en"]).format(organisation=name)
        consent.append((code, own.get(code) or sentence))
    if values["list_name"] is None:
        return None
    return SignupSettings(**{**values, "consent": tuple(consent)})


# --- reading a declared table ------------------------------------------------------------------


def read_table(r: TomlReader, table: Table, **given: Any) -> dict[str, Any]:
    """Every setting of a declared table by its field name, read with its kind; a setting whose
    default follows another is read after it."""
    values = dict(given)
    for about in sorted(table.settings, key=lambda about: about.default_by is not None):
        if about.name in values:
            continue
        default = values[about.default_from] if about.default_from else about.default
        if about.default_by is not None:
            other, by = about.default_by
            default = by.get(values[other], about.default)
        value = about.kind.read(r, about.key, default)
        for alias in about.aliases:
            value = value if value is not None else about.kind.read(r, alias, default)
        values[about.name] = value
    return values


def allowed_keys(tables: Iterable[Table]) -> dict[str, Any]:
    """The keys newsletter.toml may hold, as nested tables, for TomlReader.unknown_keys."""
    allowed: dict[str, Any] = {}
    for declared in tables:
        for about in declared.settings:
            for key in (about.key, *about.aliases):
                *parents, last = key.split(".")
                node = allowed
                for part in parents:
                    node = node.setdefault(part, {})
                if isinstance(about.kind, PerLanguage):
                    node.setdefault(last, {}).update(dict.fromkeys(LANGUAGES, 1))
                else:
                    node[last] = 1
    return allowed
