"""newsletter.toml's `[bounces]` and `[mailbox]`: where bounces and mailed unsubscribes go, and
the IMAP mailbox `newsletter feedback mailbox` reads them from (its password only from the
environment), declared once (newsletter.config.declare)."""

from __future__ import annotations

import re

from newsletter.config.declare import setting, table
from newsletter.config.toml import Address, Choice, Number, Text, Whole

PASSWORD_ENV = "NEWSLETTER_MAILBOX_PASSWORD"
MAILBOX_SECURITY = ("tls", "starttls")  # never a password in clear text
TAG_DELIMITERS = ("+", "-", "=")  # between the local part and a token: + (Postfix), - (qmail, Exim)

_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]+\]?", re.ASCII)
# IMAP folder names travel quoted; non-ASCII ones would need modified UTF-7: keep to plain ASCII
_FOLDER = re.compile(r"[A-Za-z0-9 ._/-]{1,100}", re.ASCII)
_FOLDER_NAME = "a folder name of ASCII letters, digits, space, . _ / -"


@table("bounces", "SMTP only: bounces come back to a mailbox (`feedback mailbox`)")
class BounceSettings:
    """SMTP messages' envelope sender is `address` tagged with a delivery token (VERP)."""

    address: str = setting(Address(), example='"bounces@news.example.org"',
                           help="the envelope sender (Return-Path) of SMTP messages")  # fmt: skip
    delimiter: str = setting(
        Choice(TAG_DELIMITERS, " ", unreadable_too=True), default="+", example='"+"',
        help="between the local part and the token: + (Postfix), - (qmail, Exim)",
    )  # fmt: skip


@table("mailbox", "the IMAP mailbox `feedback mailbox` reads; password: NEWSLETTER_MAILBOX_PASSWORD")
class MailboxSettings:
    host: str = setting(Text(_HOST.fullmatch, "a host name or IP address"), example='"mail.example.org"',
                        help="the IMAP server")  # fmt: skip
    user: str = setting(Text(), example='"bounces"', help="the login")
    port: int = setting(
        Whole(1, 65535), default=993, default_by=("security", {"tls": 993, "starttls": 143}),
        default_text="993 with tls, 143 with starttls", example="993", help="the server's port",
    )  # fmt: skip
    security: str = setting(Choice(MAILBOX_SECURITY, unreadable_too=True), default="tls", example='"tls"',
                            help="implicit TLS (993) or starttls (143); never without TLS")  # fmt: skip
    folder: str = setting(Text(_FOLDER.fullmatch, _FOLDER_NAME), default="INBOX", example='"INBOX"',
                          help="the folder read")  # fmt: skip
    processed_folder: str = setting(Text(_FOLDER.fullmatch, _FOLDER_NAME), default="processed",
                                    example='"processed"',
                                    help="where read messages go; created when missing, nothing is deleted")  # fmt: skip
    interval: float = setting(Number(above=0), default=60.0, example="60",
                              help="seconds between rounds without --once")  # fmt: skip
    timeout: float = setting(Number(above=0), default=30.0, example="30", help="seconds to wait for the server")
