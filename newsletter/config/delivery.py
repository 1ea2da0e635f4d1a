"""newsletter.toml's settings for sending and what comes back: `[send]`, `[smtp]`, `[ses]`,
`[feedback]` (with `[sqs]`) and `[privacy]`, declared once (newsletter.config.declare)."""

from __future__ import annotations

import re

from newsletter.config.declare import setting, table
from newsletter.config.toml import Choice, Names, Number, Pairs, Text
from newsletter.keys import unsubscribe_path

PROVIDERS = ("outbox", "smtp", "ses")
SMTP_SECURITY = ("starttls", "tls", "none")

_SNS_PATH = re.compile(rf"(?!{re.escape(unsubscribe_path(''))})/[A-Za-z0-9/_-]*")  # /u/… is the unsubscribe pages'
_TOPIC_ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
_TAG = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_IMAGE_HOST = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+")


@table("send", "how `newsletter send` sends")
class SendSettings:
    provider: str | None = setting(
        Choice(PROVIDERS), default=None, default_text="none: `send` asks for --provider", example='"outbox"',
        help="outbox (files, a rehearsal), smtp or ses", shown=True,
    )  # fmt: skip
    rate: float = setting(Number(at_least=0.01), default=14.0, example="14",
                          help="messages per second for the whole campaign (SES's sandbox-lifted rate)")  # fmt: skip
    threads: int = setting(Number(at_least=1, whole=True), default=4, example="4",
                           help="sending threads in each process")  # fmt: skip
    max_attempts: int = setting(Number(at_least=1, whole=True), default=6, example="6",
                                help="attempts per message before it counts as failed")  # fmt: skip
    outbox: str = setting(Text(), default="outbox", example='"outbox"',
                          help="the folder the outbox provider writes .eml files to")  # fmt: skip


@table("smtp", "the SMTP server; login: NEWSLETTER_SMTP_USERNAME, NEWSLETTER_SMTP_PASSWORD")
class SMTPSettings:
    host: str = setting(Text(), default="localhost", example='"smtp.example.org"', help="the SMTP server")
    port: int = setting(
        Number(at_least=1, whole=True), default=587, default_by=("security", {"tls": 465, "starttls": 587, "none": 25}),
        default_text="465 with tls, 587 with starttls, 25 with none", example="587", help="the server's port",
    )  # fmt: skip
    security: str = setting(Choice(SMTP_SECURITY), default="starttls", example='"starttls"',
                            help="STARTTLS, implicit TLS, or none")  # fmt: skip
    timeout: float = setting(Number(at_least=0.1), default=30.0, example="30", help="seconds to wait for the server")


@table("ses", "Amazon SES (credentials from the standard AWS chain)")
class SESSettings:
    region: str | None = setting(Text(), default=None, default_text="AWS_REGION or the AWS configuration",
                                 example='"eu-west-1"', help="the SES region")  # fmt: skip
    configuration_set: str | None = setting(Text(), default=None, example='"newsletter"',
                                            help="the configuration set every message names")  # fmt: skip
    tags: tuple[tuple[str, str], ...] = setting(
        Pairs(_TAG.match, "SES tag names and values allow only A-Z, a-z, 0-9, _ and -; got {name!r} = {value!r}"),
        default=(), example='{ campaign = "newsletter" }', help="SES message tags (names and values: A-Z a-z 0-9 _ -)",
    )  # fmt: skip
    endpoint_url: str | None = setting(Text(), default=None, example='"http://127.0.0.1:5000"',
                                       help="another SES-compatible endpoint")  # fmt: skip


@table("feedback", "bounces and complaints from SES, through SNS (`serve`) or SQS (`feedback poll`)")
class FeedbackSettings:
    topic_arns: tuple[str, ...] = setting(
        Names(_TOPIC_ARN.match, "not an SNS topic ARN: {value!r}"), default=(),
        example='["arn:aws:sns:eu-west-1:123456789012:ses-feedback"]',
        help="SNS topics allowed to post to sns_path and to the queue",
    )  # fmt: skip
    sns_path: str = setting(Text(_SNS_PATH.fullmatch, "a path such as /sns"), default="/sns", example='"/sns"',
                            help="where `serve` takes SNS notifications")  # fmt: skip
    soft_bounce_limit: int = setting(Number(at_least=1, whole=True), default=3, example="3",
                                     help="soft bounces that suppress an address …")  # fmt: skip
    soft_bounce_days: int = setting(Number(at_least=1, whole=True), default=90, example="90",
                                    help="… within this many days")  # fmt: skip
    region: str | None = setting(
        Text(), default=None, key="sqs.region", aliases=("feedback.region",), example='"eu-west-1"',
        default_text="[ses] region or the environment", help="the SQS queue's region (also feedback.region)",
    )  # fmt: skip
    endpoint_url: str | None = setting(
        Text(), default=None, key="sqs.endpoint_url", aliases=("feedback.endpoint_url",),
        example='"http://127.0.0.1:9324"', help="another SQS-compatible endpoint (also feedback.endpoint_url)",
    )  # fmt: skip


@table("privacy", "what a letter may load from elsewhere")
class PrivacySettings:
    image_hosts: tuple[str, ...] = setting(
        Names(_IMAGE_HOST.fullmatch, "expected host names such as images.example.org, got {value!r}", lower=True),
        default=(), example="[]", default_text="none, best",
        help="hosts a letter may load images from (each learns who opens it)",
    )  # fmt: skip
