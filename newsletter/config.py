"""newsletter.toml: loaded and validated up front, every problem reported as `key: problem`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from newsletter.errors import BadInput, Problems
from newsletter.languages import DIGIT_STYLES, LANGUAGES, Language
from newsletter.tomlfile import TomlReader, read_toml

CONFIG_NAME = "newsletter.toml"
LAYOUTS = ("bilingual", "per-recipient")


PROVIDERS = ("outbox", "smtp", "ses")
_URL = re.compile(r"[\x21-\x7e]+", re.ASCII)
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?", re.ASCII)
SMTP_SECURITY = ("starttls", "tls", "none")


@dataclass(frozen=True)
class SendSettings:
    provider: str | None = None  # none: `send` asks for --provider
    rate: float = 14.0  # messages per second; SES's default sandbox-lifted rate
    threads: int = 4  # sending threads in each process
    max_attempts: int = 6
    outbox: str = "outbox"


@dataclass(frozen=True)
class SMTPSettings:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    timeout: float = 30.0


@dataclass(frozen=True)
class SESSettings:
    region: str | None = None
    configuration_set: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    endpoint_url: str | None = None


@dataclass(frozen=True)
class FeedbackSettings:
    topic_arns: tuple[str, ...] = ()  # SNS topics allowed to post to /sns and to the queue
    sns_path: str = "/sns"
    soft_bounce_limit: int = 3
    soft_bounce_days: int = 90
    region: str | None = None  # for the SQS poller; default: [ses] region or the environment
    endpoint_url: str | None = None


@dataclass(frozen=True)
class PrivacySettings:
    image_hosts: tuple[str, ...] = ()  # hosts a letter may load images from (each learns who opens it)


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
    package = Path(__file__).resolve().parent
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
            "base_url": 1,
            "templates": 1,
            "list_id": 1,
            "organisation": per_language,
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
    if store_url is not None and "://" not in store_url:
        store_url = f"sqlite:///{(root / store_url).resolve()}"
    elif store_url is not None and not store_url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        r.problem("store.url", f"expected a file name, sqlite:///PATH or postgresql://…, got {store_url!r}")

    send = _send_settings(r)
    smtp = _smtp_settings(r)
    ses = _ses_settings(r)
    feedback = _feedback_settings(r)
    privacy = _privacy_settings(r)

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
    )


_IMAGE_HOST = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+")


def _privacy_settings(r: TomlReader) -> PrivacySettings:
    hosts = []
    for host in r.get("privacy.image_hosts", list, []) or []:
        if isinstance(host, str) and _IMAGE_HOST.fullmatch(host.lower()):
            hosts.append(host.lower())
        else:
            r.problem("privacy.image_hosts", f"expected host names such as images.example.org, got {host!r}")
    return PrivacySettings(image_hosts=tuple(hosts))


_TOPIC_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")


def _feedback_settings(r: TomlReader) -> FeedbackSettings:
    d = FeedbackSettings()
    arns = r.get("feedback.topic_arns", list, []) or []
    for arn in arns:
        if not isinstance(arn, str) or not _TOPIC_ARN.match(arn):
            r.problem("feedback.topic_arns", f"not an SNS topic ARN: {arn!r}")
    path = r.get("feedback.sns_path", str, d.sns_path) or d.sns_path
    if not re.fullmatch(r"/[A-Za-z0-9/_-]*", path) or path.startswith("/u/"):
        r.problem("feedback.sns_path", f"expected a path such as /sns, got {path!r}")
    return FeedbackSettings(
        topic_arns=tuple(a for a in arns if isinstance(a, str)),
        sns_path=path,
        soft_bounce_limit=int(_number(r, "feedback.soft_bounce_limit", d.soft_bounce_limit, minimum=1, integer=True)),
        soft_bounce_days=int(_number(r, "feedback.soft_bounce_days", d.soft_bounce_days, minimum=1, integer=True)),
        region=r.get("feedback.region", str, None),
        endpoint_url=r.get("feedback.endpoint_url", str, None),
    )


def _number(r: TomlReader, key: str, default, *, minimum: float, integer: bool = False):
    value = r.get(
        key, (int, float) if not integer else int, default, kind_name="a whole number" if integer else "a number"
    )
    if value is None:
        return default
    if isinstance(value, bool) or value < minimum:
        r.problem(key, f"expected {'a whole number' if integer else 'a number'} of at least {minimum}, got {value!r}")
        return default
    return value


def _choice(r: TomlReader, key: str, default: str | None, choices: tuple[str, ...]) -> str:
    value = r.get(key, str, default)
    if value is not None and value not in choices:
        r.problem(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return default or choices[0]
    return value or default or choices[0]


def _send_settings(r: TomlReader) -> SendSettings:
    d = SendSettings()
    return SendSettings(
        provider=_choice(r, "send.provider", None, PROVIDERS) if "provider" in (r.data.get("send") or {}) else None,
        rate=float(_number(r, "send.rate", d.rate, minimum=0.01)),
        threads=int(_number(r, "send.threads", d.threads, minimum=1, integer=True)),
        max_attempts=int(_number(r, "send.max_attempts", d.max_attempts, minimum=1, integer=True)),
        outbox=r.get("send.outbox", str, d.outbox) or d.outbox,
    )


def _smtp_settings(r: TomlReader) -> SMTPSettings:
    d = SMTPSettings()
    security = _choice(r, "smtp.security", d.security, SMTP_SECURITY)
    default_port = 465 if security == "tls" else 587 if security == "starttls" else 25
    return SMTPSettings(
        host=r.get("smtp.host", str, d.host) or d.host,
        port=int(_number(r, "smtp.port", default_port, minimum=1, integer=True)),
        security=security,
        timeout=float(_number(r, "smtp.timeout", d.timeout, minimum=0.1)),
    )


_TAG = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def _ses_settings(r: TomlReader) -> SESSettings:
    tags = r.get("ses.tags", dict, {}) or {}
    for name, value in tags.items():
        if not _TAG.match(str(name)) or not isinstance(value, str) or not _TAG.match(value):
            r.problem(
                f"ses.tags.{name}",
                f"SES tag names and values allow only A-Z, a-z, 0-9, _ and -; got {name!r} = {value!r}",
            )
    return SESSettings(
        region=r.get("ses.region", str, None),
        configuration_set=r.get("ses.configuration_set", str, None),
        tags=tuple(sorted((str(k), str(v)) for k, v in tags.items())),
        endpoint_url=r.get("ses.endpoint_url", str, None),
    )
