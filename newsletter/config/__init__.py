"""newsletter.toml: loaded and validated up front, every problem reported as `key: problem`."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from newsletter.config.delivery import (
    FeedbackSettings,
    PrivacySettings,
    SendSettings,
    SESSettings,
    SMTPSettings,
    feedback_settings,
    privacy_settings,
    send_settings,
    ses_settings,
    smtp_settings,
)
from newsletter.config.mail import KNOWN_KEYS as MAIL_KEYS
from newsletter.config.mail import BounceSettings, MailboxSettings, bounce_settings, mailbox_settings
from newsletter.config.signup import KNOWN_KEYS as SIGNUP_KEYS
from newsletter.config.signup import SignupSettings, signup_settings
from newsletter.config.toml import TomlReader, read_toml
from newsletter.config.web import ArchiveSettings, DateSettings, read_archive, read_bilingual_name, read_dates
from newsletter.errors import BadInput, Problems
from newsletter.languages import DIGIT_STYLES, LANGUAGES, Language

CONFIG_NAME = "newsletter.toml"
STORE_ENV = "NEWSLETTER_STORE_URL"  # e.g. postgresql:// with libpq's PGHOST, PGUSER, PGPASSWORD…
LAYOUTS = ("bilingual", "per-recipient")


_URL = re.compile(r"[\x21-\x7e]+", re.ASCII)
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?", re.ASCII)


@dataclass(frozen=True)
class Config:
    root: Path
    path: Path
    languages: tuple[Language, ...]
    layout: str
    base_url: str
    organisation: dict[str, str]
    sender: str
    reply_to: str
    contact: str
    preview_to: str
    list_id: str
    numbering: dict[str, str]
    templates: Path
    store_url: str = "sqlite:///newsletter.sqlite3"
    unsubscribe_mailto: str | None = None
    send: SendSettings = SendSettings()
    smtp: SMTPSettings = SMTPSettings()
    ses: SESSettings = SESSettings()
    feedback: FeedbackSettings = FeedbackSettings()
    privacy: PrivacySettings = PrivacySettings()
    bounces: BounceSettings | None = None  # [bounces]: VERP envelope sender, tagged unsubscribe mailto
    mailbox: MailboxSettings | None = None  # [mailbox]: the IMAP mailbox `feedback mailbox` reads
    archive: ArchiveSettings = ArchiveSettings()  # [archive]: where the public archive answers
    dates: DateSettings = DateSettings()  # [dates]: month names per language
    organisation_bilingual: str | None = None  # the bilingual letter's From name
    signup: SignupSettings | None = None  # [signup]: the sign-up form of `newsletter serve`
    fields: tuple[str, ...] = ()  # the subscriber attributes a letter may use, besides `name`

    @property
    def primary(self) -> Language:
        return self.languages[0]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(language.code for language in self.languages)

    def language(self, code: str) -> Language:
        return LANGUAGES[code]


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
    per_language = dict.fromkeys(LANGUAGES, str)
    r.unknown_keys(
        {
            "languages": 1,
            "layout": 1,
            "fields": 1,
            "base_url": 1,
            "templates": 1,
            "list_id": 1,
            "organisation": {**per_language, "bilingual": 1},
            "email": {"from": 1, "reply_to": 1, "contact": 1, "preview_to": 1, "unsubscribe": 1},
            "numbering": per_language,
            "store": {"url": 1},
            "send": {"provider": 1, "rate": 1, "threads": 1, "max_attempts": 1, "outbox": 1},
            "smtp": {"host": 1, "port": 1, "security": 1, "timeout": 1},
            "ses": {"region": 1, "configuration_set": 1, "tags": 1, "endpoint_url": 1},
            "feedback": {
                "topic_arns": 1,
                "sns_path": 1,
                "soft_bounce_limit": 1,
                "soft_bounce_days": 1,
                "region": 1,
                "endpoint_url": 1,
            },
            "privacy": {"image_hosts": 1},
            "archive": {"url": 1, "signup_url": 1},
            "dates": per_language,
            **MAIL_KEYS,
            **SIGNUP_KEYS,
            "sqs": {"region": 1, "endpoint_url": 1},
        }
    )

    languages: list[Language] = []
    codes = r.get("languages", list) or []
    if isinstance(codes, list) and not codes and "languages" in data:
        r.problem("languages", "list at least one language")
    for code in codes:
        if code not in LANGUAGES:
            r.problem("languages", f"unknown language {code!r}; known: {', '.join(LANGUAGES)}")
        elif any(language.code == code for language in languages):
            r.problem("languages", f"{code!r} is listed twice")
        else:
            languages.append(LANGUAGES[code])

    layout = r.get("layout", str, "bilingual")
    if layout is not None and layout not in LAYOUTS:
        r.problem("layout", f"expected one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout == "bilingual" and len(languages) == 1:
        pass  # a one-language list simply gets its one language

    base_url = r.get("base_url", str)
    if base_url is not None:
        parts = urlsplit(base_url)
        if not _URL.fullmatch(base_url) or not _HOST.fullmatch(parts.netloc):
            # it goes into headers as it is: printable ASCII only, a plain host name
            message = "expected an https URL of printable ASCII with a host name (an internationalised domain in its xn-- form)"
            r.problem("base_url", f"{message}, got {base_url!r}")
            base_url = None
        elif parts.scheme != "https" or parts.query or parts.fragment:
            r.problem("base_url", f"expected an https URL without query, got {base_url!r}")
        base_url = base_url.rstrip("/") if base_url else None

    organisation: dict[str, str] = {}
    numbering: dict[str, str] = {}
    for language in languages:
        name = r.get(f"organisation.{language.code}", str)
        if name is not None:
            organisation[language.code] = name.strip()
        digits = r.get(f"numbering.{language.code}", str, "western")
        if digits is not None and digits not in DIGIT_STYLES:
            r.problem(f"numbering.{language.code}", f"expected one of {', '.join(DIGIT_STYLES)}, got {digits!r}")
        numbering[language.code] = digits or "western"
    for table in ("organisation", "numbering"):
        for code in (data.get(table) or {}) if isinstance(data.get(table), dict) else {}:
            if code in LANGUAGES and code not in [language.code for language in languages]:
                r.problem(f"{table}.{code}", f"language {code!r} is not in languages")

    sender = r.address("email.from")
    reply_to = r.address("email.reply_to", sender)
    contact = r.address("email.contact", reply_to)
    preview_to = r.address("email.preview_to", "preview@example.org")

    list_id = r.get("list_id", str, None)
    if list_id is None and base_url and sender:
        host = urlsplit(base_url).hostname or "localhost"
        list_id = f"newsletter.{host}"
    if list_id is not None and not re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", list_id):
        r.problem("list_id", f"expected a dotted label such as updates.example.org, got {list_id!r}")

    templates = r.get("templates", str, None)
    templates_dir = root / templates if templates else packaged_templates()
    if templates and not templates_dir.is_dir():
        r.problem("templates", f"folder not found: {templates!r}")

    unsubscribe_mailto = r.address("email.unsubscribe", None)
    store_url = r.get("store.url", str, "newsletter.sqlite3")
    if os.environ.get(STORE_ENV):  # a deployment's setting wins: no password in newsletter.toml
        store_url = os.environ[STORE_ENV].strip()
    if store_url is not None and "://" not in store_url:
        store_url = f"sqlite:///{(root / store_url).resolve()}"
    elif store_url is not None and not store_url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        r.problem("store.url", f"expected a file name, sqlite:///PATH or postgresql://…, got {store_url!r}")

    send, smtp, ses = send_settings(r), smtp_settings(r), ses_settings(r)
    feedback, privacy = feedback_settings(r), privacy_settings(r)
    bounces, mailbox = bounce_settings(r), mailbox_settings(r)
    signup = signup_settings(r, [language.code for language in languages], organisation)
    fields = []
    for value in r.get("fields", list, []) or []:
        if isinstance(value, str) and value.isidentifier() and value.isascii() and value != "name":
            fields.append(value)
        else:
            r.problem("fields", f"expected attribute names such as organisation (letters, digits, _), got {value!r}")
    archive, dates, bilingual_name = read_archive(r, base_url), read_dates(r, languages), read_bilingual_name(r)
    if signup and base_url and not archive.signup_url:  # the archive's pages offer serve's own form
        archive = dataclasses.replace(archive, signup_url=f"{base_url}/subscribe")

    if problems or not (sender and reply_to and contact and preview_to):
        return None
    return Config(
        root=root,
        path=path,
        languages=tuple(languages),
        layout=layout,
        base_url=base_url,
        organisation=organisation,
        sender=sender,
        reply_to=reply_to,
        contact=contact,
        preview_to=preview_to,
        list_id=list_id,
        numbering=numbering,
        templates=templates_dir,
        store_url=store_url,
        unsubscribe_mailto=unsubscribe_mailto,
        send=send,
        smtp=smtp,
        ses=ses,
        feedback=feedback,
        privacy=privacy,
        bounces=bounces,
        mailbox=mailbox,
        archive=archive,
        dates=dates,
        organisation_bilingual=bilingual_name,
        signup=signup,
        fields=tuple(fields),
    )
