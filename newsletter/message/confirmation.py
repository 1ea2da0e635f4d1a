"""The two messages the sign-up form sends: the one asking a person to confirm their sign-up,
and the one telling someone already on the list that they are (with the link to their own
page). Short, in the person's language (both, the primary first, when they chose both), plain
text and HTML, with one link. They belong to no campaign and have no unsubscribe header."""

from __future__ import annotations

import datetime as dt
import secrets
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from markupsafe import Markup, escape

from newsletter.config import Config
from newsletter.keys import confirm_url
from newsletter.languages import word
from newsletter.letter.assemble import sender_name
from newsletter.message.composer import POLICY, Outgoing, domain_of, header
from newsletter.message.headers import from_header, subject_header

# Each message's words (newsletter.languages.WORDS): subject, greeting, what the link is for,
# the button, and what to do when it was not you.
CONFIRM_WORDS = ("mail_subject", "mail_hello", "mail_action", "mail_button", "mail_ignore")
KNOWN_WORDS = ("known_subject", "known_hello", "known_action", "known_button", "known_ignore")


def codes_for(choice: str, config: Config) -> list[str]:
    """The languages a message to a person who chose `choice` is written in, the primary first."""
    if choice in config.codes:
        return [choice]
    return list(config.codes)


def confirmation_message(config: Config, address: str, choice: str, token: str, now: dt.datetime) -> Outgoing:
    """The message asking to confirm a sign-up: its one link is the confirmation page."""
    return _message(config, address, codes_for(choice, config), confirm_url(config.base_url, token), now, CONFIRM_WORDS)


def already_subscribed_message(config: Config, address: str, choice: str, page: str, now: dt.datetime) -> Outgoing:
    """The message to someone on the list who signed up again: its one link is their own page."""
    return _message(config, address, codes_for(choice, config), page, now, KNOWN_WORDS)


def _block(config: Config, code: str, url: str, keys: tuple[str, ...], name: str) -> tuple[str, Markup]:
    """One language's part of the message: as plain text, and as HTML."""
    language = config.language(code)
    _subject, hello_key, action, button, ignore = keys
    organisation = config.organisation.get(code, name)
    hello = word(code, hello_key).format(organisation=organisation)
    text = f"{hello}\n\n{word(code, action)}\n{url}\n\n{word(code, ignore)}\n"
    html = Markup(
        '<div lang="{lang}" dir="{dir}" style="text-align:{align};font-family:{font};margin:0 0 28px">'
        "<p>{hello}</p><p>{action}</p>"
        '<p><a href="{url}" style="display:inline-block;padding:10px 22px;background:#1a5d8f;'
        'color:#ffffff;text-decoration:none">{button}</a></p>'
        '<p dir="ltr" style="text-align:left;font-size:13px;word-break:break-all">{url}</p>'
        "<p>{ignore}</p></div>"
    ).format(
        lang=code,
        dir=language.dir,
        align=language.align,
        font=language.font_stack,
        hello=hello,
        action=word(code, action),
        url=url,
        button=word(code, button),
        ignore=word(code, ignore),
    )
    return text, html


def _message(
    config: Config, address: str, codes: list[str], url: str, now: dt.datetime, keys: tuple[str, ...]
) -> Outgoing:
    name = sender_name(config, codes)
    subjects = [word(code, keys[0]).format(organisation=config.organisation.get(code, name)) for code in codes]
    blocks = [_block(config, code, url, keys, name) for code in codes]
    text_blocks = [text for text, _ in blocks]
    html_blocks = [html for _, html in blocks]
    first = config.language(codes[0])
    html = (
        f'<!doctype html><html lang="{first.code}" dir="{first.dir}"><head><meta charset="utf-8">'
        f"<title>{escape(subjects[0])}</title></head>"
        f'<body style="margin:0;padding:24px;color:#1f2933;font-size:16px;line-height:1.6">'
        f"{''.join(html_blocks)}</body></html>"
    )
    body = EmailMessage(policy=POLICY)
    body.set_content("\n".join(text_blocks), subtype="plain", charset="utf-8", cte="base64")
    body.add_alternative(html, subtype="html", charset="utf-8", cte="base64")

    sender = parseaddr(config.sender)[1]
    message_id = f"<signup.{secrets.token_hex(12)}@{domain_of(sender)}>"
    head = b"".join(
        (
            from_header(name, sender),
            header("Reply-To", config.reply_to) if config.reply_to else b"",
            header("To", address),
            subject_header(" | ".join(subjects)),
            b"Date: " + format_datetime(now).encode("ascii") + b"\r\n",
            b"Message-ID: " + message_id.encode("ascii") + b"\r\n",
            f"Content-Language: {','.join(codes)}\r\n".encode("ascii"),
            b"Auto-Submitted: auto-generated\r\n",  # RFC 3834: no vacation replies to it
        )
    )
    return_path = config.bounces.address if config.bounces else None
    return Outgoing(sender, address, message_id, head + body.as_bytes(policy=POLICY), 0, return_path)
