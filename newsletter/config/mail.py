"""newsletter.toml's `[bounces]` and `[mailbox]`: where bounces and mailed unsubscribes go, and
the IMAP mailbox `newsletter feedback mailbox` reads them from (its password only from the
environment). Read by newsletter.config, with the same `key: problem` messages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parseaddr

from newsletter.config.toml import TomlReader

PASSWORD_ENV = "NEWSLETTER_MAILBOX_PASSWORD"
MAILBOX_SECURITY = ("tls", "starttls")  # never a password in clear text
TAG_DELIMITERS = ("+", "-", "=")  # between the local part and a token: + (Postfix), - (qmail, Exim)

KNOWN_KEYS = {
    "bounces": {"address": 1, "delimiter": 1},
    "mailbox": {
        "host": 1,
        "port": 1,
        "security": 1,
        "user": 1,
        "folder": 1,
        "processed_folder": 1,
        "interval": 1,
        "timeout": 1,
    },
}

_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]+\]?", re.ASCII)
# IMAP folder names travel quoted; non-ASCII ones would need modified UTF-7: keep to plain ASCII
_FOLDER = re.compile(r"[A-Za-z0-9 ._/-]{1,100}", re.ASCII)


@dataclass(frozen=True)
class BounceSettings:
    """SMTP messages' envelope sender is `address` tagged with a delivery token (VERP)."""

    address: str  # e.g. bounces@news.example.org
    delimiter: str = "+"  # between the local part and the token: + (Postfix), - (qmail, Exim)


@dataclass(frozen=True)
class MailboxSettings:
    host: str
    user: str
    port: int = 993
    security: str = "tls"  # implicit TLS (993) or "starttls" (143)
    folder: str = "INBOX"
    processed_folder: str = "processed"  # created when missing; nothing is ever deleted
    interval: float = 60.0  # seconds between rounds without --once
    timeout: float = 30.0


def bounce_settings(r: TomlReader) -> BounceSettings | None:
    if "bounces" not in r.data:
        return None
    raw = r.address("bounces.address")
    delimiter = r.get("bounces.delimiter", str, "+")
    if delimiter not in TAG_DELIMITERS:
        r.problem("bounces.delimiter", f"expected one of {' '.join(TAG_DELIMITERS)}, got {delimiter!r}")
        return None
    if raw is None:
        return None
    address = parseaddr(raw)[1]
    if delimiter in address.partition("@")[0]:
        r.problem("bounces.address", f"the local part must not contain the delimiter {delimiter!r}: {raw!r}")
        return None
    return BounceSettings(address=address, delimiter=delimiter)


def mailbox_settings(r: TomlReader) -> MailboxSettings | None:
    if "mailbox" not in r.data:
        return None
    host = r.get("mailbox.host", str)
    if host is not None and not _HOST.fullmatch(host):
        r.problem("mailbox.host", f"expected a host name or IP address, got {host!r}")
    user = r.get("mailbox.user", str)
    security = r.get("mailbox.security", str, "tls")
    if security not in MAILBOX_SECURITY:
        r.problem("mailbox.security", f"expected one of {', '.join(MAILBOX_SECURITY)}, got {security!r}")
        security = "tls"
    port = _whole(r, "mailbox.port", 993 if security == "tls" else 143, 1, 65535)
    folders = {}
    for key, default in (("folder", "INBOX"), ("processed_folder", "processed")):
        name = r.get(f"mailbox.{key}", str, default)
        if name is not None and not _FOLDER.fullmatch(name):
            r.problem(
                f"mailbox.{key}", f"expected a folder name of ASCII letters, digits, space, . _ / -, got {name!r}"
            )
        folders[key] = name or default
    if folders["folder"].lower() == folders["processed_folder"].lower():
        r.problem("mailbox.processed_folder", f"must differ from mailbox.folder ({folders['folder']!r})")
    interval = _positive(r, "mailbox.interval", 60.0)
    timeout = _positive(r, "mailbox.timeout", 30.0)
    if host is None or user is None:
        return None
    return MailboxSettings(
        host, user, port, security, folders["folder"], folders["processed_folder"], interval, timeout
    )


def _whole(r: TomlReader, key: str, default: int, low: int, high: int) -> int:
    value = r.get(key, int, default, kind_name="a whole number")
    if value is None or isinstance(value, bool) or not low <= value <= high:
        if value is not None:
            r.problem(key, f"expected a whole number from {low} to {high}, got {value!r}")
        return default
    return value


def _positive(r: TomlReader, key: str, default: float) -> float:
    value = r.get(key, (int, float), default, kind_name="a number")
    if value is None or isinstance(value, bool) or value <= 0:
        if value is not None:
            r.problem(key, f"expected a number above 0, got {value!r}")
        return default
    return float(value)
