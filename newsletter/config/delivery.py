"""newsletter.toml's settings for sending and what comes back: `[send]`, `[smtp]`, `[ses]`,
`[feedback]` (with `[sqs]`) and `[privacy]`. Read by newsletter.config, with the same
`key: problem` messages."""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsletter.config.toml import TomlReader

PROVIDERS = ("outbox", "smtp", "ses")
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


_IMAGE_HOST = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+")


def privacy_settings(r: TomlReader) -> PrivacySettings:
    hosts = []
    for host in r.get("privacy.image_hosts", list, []) or []:
        if isinstance(host, str) and _IMAGE_HOST.fullmatch(host.lower()):
            hosts.append(host.lower())
        else:
            r.problem("privacy.image_hosts", f"expected host names such as images.example.org, got {host!r}")
    return PrivacySettings(image_hosts=tuple(hosts))


_TOPIC_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")


def feedback_settings(r: TomlReader) -> FeedbackSettings:
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
        region=r.get("sqs.region", str, None) or r.get("feedback.region", str, None),
        endpoint_url=r.get("sqs.endpoint_url", str, None) or r.get("feedback.endpoint_url", str, None),
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


def send_settings(r: TomlReader) -> SendSettings:
    d = SendSettings()
    return SendSettings(
        provider=_choice(r, "send.provider", None, PROVIDERS) if "provider" in (r.data.get("send") or {}) else None,
        rate=float(_number(r, "send.rate", d.rate, minimum=0.01)),
        threads=int(_number(r, "send.threads", d.threads, minimum=1, integer=True)),
        max_attempts=int(_number(r, "send.max_attempts", d.max_attempts, minimum=1, integer=True)),
        outbox=r.get("send.outbox", str, d.outbox) or d.outbox,
    )


def smtp_settings(r: TomlReader) -> SMTPSettings:
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


def ses_settings(r: TomlReader) -> SESSettings:
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
