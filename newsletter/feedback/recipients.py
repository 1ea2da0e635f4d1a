"""Who a free-form bounce is about: the failed recipients named in the text a mail system wrote,
found the ways mail systems name them, and each one's own lines. Pure.

In order, the first source that names anyone wins:

1. X-Failed-Recipients (Exim, Google);
2. the lines of the text that name an address the way bounces do (LINE_FORMS): first on a line
   (`<jane@example.org>:` of Postfix and qmail, Exim's and Gmail's indented address, OpenSMTPD's
   `jane@example.org: 550 …`, Exchange 2003's `jane@example.org on 1/2/2010`), a transcript's
   `RCPT TO:<…>`, Sendmail's `<…>... User unknown`, and the phrases that introduce one ("your
   message to", "delivering your mail to", "Failed Recipient:", "Original-Recipient: rfc822;");
3. GNU Mailman's detectors (flufl.bounce), for the forms these lines miss;
4. any other address of the text; then the To of the returned message, when it names one.

Never a recipient: the mail system's own addresses (MAILER-DAEMON, postmaster…), the bounce's
own sender and recipient, the returned message's sender, and our own addresses.
"""

from __future__ import annotations

import email.utils
import logging
import re
from collections.abc import Iterable
from email.message import Message

from newsletter.feedback.parts import header, original_headers

# flufl.bounce logs a detector's exception with its traceback: never shown, the message is
# simply not recognised
logging.getLogger("flufl.bounce").addHandler(logging.NullHandler())
logging.getLogger("flufl.bounce").propagate = False

SECTION_LINES, SECTION_CHARS = 40, 4000  # what is read of one recipient's part of a free-form bounce
LINE_CHARS = 2000  # characters of one line looked at

_ADDRESS_CHARS = r"[\w.!#$%&*+/=?^`{|}~-]"
_DOMAIN = r"[\w-]+(?:\.[\w-]+)*\.[^\W\d_][\w-]*"
# an address starts only where a run of its characters starts: each run is scanned once
ADDRESS = re.compile(rf"(?<!{_ADDRESS_CHARS}){_ADDRESS_CHARS}+@{_DOMAIN}")
_A = rf"({_ADDRESS_CHARS}+@{_DOMAIN})"

LINE_FORMS = (
    # first on its line, alone or followed by what happened to it
    re.compile(rf"^[ \t]*[\"'<(\[]?{_A}[\"'>)\]]?(?:[ \t:,;(<]|\.?$)"),
    # a transcript of the SMTP session, and Sendmail's own lines
    re.compile(rf"\brcpt to:[ \t]*<?{_A}", re.IGNORECASE),
    re.compile(rf"<{_A}>\.\.\."),
    # the phrases that introduce the failed address
    re.compile(
        r"\b(?:delivering your (?:mail|message) to|(?:your )?message to|delivered to|delivery to|deliver to|"
        r"could not deliver to|undeliverable to|failed recipients?|recipient address|recipient|rcpt|"
        r"unknown user|user|mailbox|address(?:ee)?|original-recipient|final-recipient|(?<![-\w])to)"
        rf"[ \t]{{0,3}}:?[ \t]{{0,3}}(?:rfc822;[ \t]*)?[\"'<(\[]?{_A}",
        re.IGNORECASE,
    ),
)
# local parts of the mail systems' own addresses (newsletter.feedback.bounces: a sender that is one
# is a mail system); never a failed recipient, and neither is a no-reply address
MAIL_SYSTEM_LOCAL = r"mailer[-_]?daemon|mail-?daemon|maildaemon|post_?master|mdaemon"
_SYSTEM = re.compile(rf"^(?:{MAIL_SYSTEM_LOCAL}|no-?reply|do-?not-?reply)$", re.IGNORECASE)
_GENERATED = re.compile(
    r"\b(?:generated from|expanded from|alias for|forwarded (?:from|to)|original address)\b", re.IGNORECASE
)


def failed_recipients(msg: Message, text: str, ours: Iterable[str]) -> list[str]:
    """The failed recipients a free-form bounce names, in the order it names them."""
    excluded = _not_recipients(msg, ours)
    sources = (
        lambda: _listed(msg.get_all("x-failed-recipients") or [], excluded),
        lambda: _from_lines(text, excluded),
        lambda: _from_detectors(msg, excluded),
        lambda: _addresses(text, excluded),
        lambda: _returned_to(msg, excluded),
    )
    for source in sources:
        found = source()
        if found:
            return found
    return []


def _from_lines(text: str, excluded: set[str]) -> list[str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        if "@" not in line or _GENERATED.search(line[:LINE_CHARS]):
            continue
        for form in LINE_FORMS:
            for match in form.finditer(line[:LINE_CHARS]):
                _keep(match.group(1), excluded, found)
    return list(found.values())


def _from_detectors(msg: Message, excluded: set[str]) -> list[str]:
    from flufl.bounce import all_failures  # imported here: most bounces never need it

    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001 - a detector tripping over odd mail: nothing found, that is all
        return []
    found: dict[str, str] = {}
    for address in sorted(permanent or temporary):
        _keep(address.decode("ascii", "replace"), excluded, found)
    return list(found.values())


def _addresses(text: str, excluded: set[str]) -> list[str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        if "@" in line and not _GENERATED.search(line[:LINE_CHARS]):
            for address in ADDRESS.findall(line[:LINE_CHARS]):
                _keep(address, excluded, found)
    return list(found.values())


def _listed(values: list[str], excluded: set[str]) -> list[str]:
    found: dict[str, str] = {}
    for _, address in email.utils.getaddresses([str(value) for value in values]):
        _keep(address, excluded, found)
    return list(found.values())


def _returned_to(msg: Message, excluded: set[str]) -> list[str]:
    original = original_headers(msg)
    found = _listed([header(original, "to")], excluded) if original is not None else []
    return found if len(found) == 1 else []


def _keep(address: str, excluded: set[str], found: dict[str, str]) -> None:
    """`address` added to `found` (by its lower case) unless it is never a recipient."""
    address = address.strip(".")
    key = address.lower()
    local, _, domain = address.rpartition("@")
    if not local or "." not in domain or _SYSTEM.match(local) or key in excluded or key in found:
        return
    tagged = "+" in local or "-" in local or "=" in local
    if tagged and any(key.startswith(prefix) for prefix in excluded if prefix.endswith(("+", "-", "="))):
        return
    found[key] = address


def _not_recipients(msg: Message, ours: Iterable[str]) -> set[str]:
    """The addresses a bounce names that are never its failed recipients (a tagged one of ours
    given as its prefix, `bounces+`)."""
    names = ("from", "to", "reply-to", "sender", "return-path", "delivered-to", "x-original-to", "envelope-to")
    values = [header(msg, name) for name in names]
    original = original_headers(msg)
    if original is not None:
        values += [header(original, name) for name in ("from", "sender", "reply-to", "return-path")]
    excluded = {address.lower() for _, address in email.utils.getaddresses(values) if address}
    for address in ours:
        local = address.lower().rpartition("@")[0]
        excluded.add(address.lower())
        excluded.update(f"{local}{delimiter}" for delimiter in "+-=")  # the prefix of its tagged forms
    return excluded


def sections(text: str, failed: list[str], kept: list[str]) -> tuple[str, dict[str, str]]:
    """The text before the first failed recipient is named, and each kept one's own lines: from
    the line that first names it up to the line that first names another (both cut short).
    One pass over the lines, whatever the number of recipients."""
    lines = text.splitlines()
    wanted = {address.lower() for address in failed}
    first: dict[str, int] = {}
    for number, line in enumerate(lines):
        if "@" in line:
            for found in ADDRESS.findall(line[:LINE_CHARS]):
                key = found.lower()
                if key in wanted and key not in first:
                    first[key] = number
    starts = sorted(set(first.values()))
    ends = dict(zip(starts, [*starts[1:], len(lines)], strict=False))
    found_sections = {}
    for address in kept:
        start = first.get(address.lower())
        if start is not None:
            end = min(ends[start], start + SECTION_LINES)
            found_sections[address] = "\n".join(lines[start:end])[:SECTION_CHARS]
    preamble = "\n".join(lines[: starts[0] if starts else SECTION_LINES][:SECTION_LINES])[:SECTION_CHARS]
    return preamble, found_sections
