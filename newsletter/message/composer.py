"""One message for one person: the variant's placeholders filled, the headers written, the
MIME assembled. Every message a person gets is composed here (the unsubscribe URL from keys.py,
the markers filled by placeholders.py); the editor's previews fill the same markers with sample values.

Everything that is the same for every recipient of a variant (encoded subject, sender,
list headers, the split HTML and text) is prepared once; each message then costs two
joins, two encodings and one concatenation. The output parses as a standard
multipart/alternative message (tests check it with Python's email parser); a variant with
images makes its HTML a multipart/related of the HTML and the images, encoded once per variant:

    multipart/alternative
    ├── text/plain
    └── multipart/related; type="text/html"
        ├── text/html            <img src="cid:…">
        └── image/jpeg, image/png   Content-ID, Content-Disposition: inline
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.errors
import email.policy
import re
import secrets
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from newsletter.config import Config
from newsletter.config.toml import line_of_key
from newsletter.errors import BadInput, Problem, Problems
from newsletter.keys import TokenSigner, tagged, unsubscribe_url
from newsletter.letter.assemble import sender_name
from newsletter.letter.images import EmbeddedImage
from newsletter.letter.render import Build, Variant
from newsletter.message.headers import ComposeError, from_header, subject_header
from newsletter.placeholders import Slots, person_values

# What the unsubscribe link of a preview or test copy says: no page answers to it.
PREVIEW_TOKEN = "preview"
NOBODY_TOKEN_KEY = "00" * 16


# Python's default SMTP policy folds a long List-Unsubscribe into RFC 2047 encoded words,
# which breaks it; 998 is RFC 5322's hard limit. Used here only to encode single headers.
POLICY = email.policy.SMTP.clone(max_line_length=998, cte_type="7bit")


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def header(name: str, value: str) -> bytes:
    """A header encoded the way the email package would, without its line folding surprises.

    Checked on the way in and on the way out: the email package decodes RFC 2047 encoded-words
    it is given, so `=?utf-8?q?=0D=0ABcc:…?=` would otherwise come out as a line break and a
    header of its own. Raises ComposeError for any control character in the value or the result.
    """
    if _CONTROL.search(value):
        raise ComposeError(name, f"a control character or line break in {value!r}")
    msg = EmailMessage(policy=POLICY)
    try:
        msg[name] = value
        out = msg.as_bytes(policy=POLICY).split(b"\r\n\r\n", 1)[0]
    except (ValueError, TypeError) as exc:  # e.g. an encoded-word that decodes to a line break
        raise ComposeError(name, f"{value!r} cannot be written as a header: {exc}") from None
    first, *rest = out.split(b"\r\n")
    if any(_CONTROL_BYTES.search(line) for line in (first, *rest)) or any(
        line[:1] not in (b" ", b"\t") for line in rest
    ):
        raise ComposeError(name, f"{value!r} would put a line break or control character into the header")
    return out + b"\r\n"


def _base64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _qp(data: bytes) -> bytes:
    return binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


def _qp_open_end(data: bytes) -> bytes:
    """Quoted-printable for a prefix whose text goes on: ends with a soft line break
    (`=`), every line 76 characters at most, escapes never split."""
    encoded = _qp(data)
    if not data or data.endswith(b"\n"):
        return encoded
    head, newline, last = encoded.rpartition(b"\r\n")
    lines = []
    while len(last) > 75:
        cut = 75
        if b"=" in last[cut - 2 : cut]:  # do not split "=XX"
            cut = last.rindex(b"=", cut - 2, cut)
        lines.append(last[:cut] + b"=")
        last = last[cut:]
    lines.append(last + b"=")
    return head + newline + b"\r\n".join(lines) + b"\r\n"


class BodyEncoder:
    """Encodes a personalised part, reusing the encoding of its unchanging beginning.

    Base64 turns each 57 input bytes into one 76-character line and quoted-printable works
    line by line, so the text before the first placeholder, cut at such a boundary, encodes
    the same for every recipient. Placeholders sit in the footer: most of the work is done once.
    """

    def __init__(self, text: str, *, html: bool, fallbacks: tuple[str, ...] = ()):
        self.slots = Slots(text.replace("\r\n", "\n"), html=html, fallbacks=fallbacks)
        whole = "".join(self.slots.literals).encode("utf-8")
        # Quoted-printable triples each non-ASCII byte: right for English, wasteful for Arabic.
        non_ascii = sum(1 for byte in whole if byte > 127)
        self.cte = b"quoted-printable" if non_ascii <= len(whole) // 20 else b"base64"
        # Text travels with CRLF line breaks (its canonical form); quoted-printable adds them itself.
        newline = "\r\n" if self.cte == b"base64" else "\n"
        literals = [lit.replace("\n", newline).encode("utf-8") for lit in self.slots.literals]
        head = literals[0]
        if self.cte == b"base64":
            cut = len(head) // 57 * 57
            self.head_encoded = _base64(head[:cut])
        else:
            # premailer writes the body as one long line: cut anywhere, ending the shared part
            # with a soft line break so that the rest starts a fresh encoded line
            cut = len(head)
            self.head_encoded = _qp_open_end(head)
        self.head_rest = head[cut:]
        self.literals = literals[1:]

    def _encode(self, data: bytes) -> bytes:
        return _base64(data) if self.cte == b"base64" else _qp(data)

    def encode(self, values: dict[str, str]) -> bytes:
        tail = [self.head_rest]
        for value, literal in zip(self.slots.values(values), self.literals, strict=True):
            tail.append(value.encode("utf-8"))
            tail.append(literal)
        return self.head_encoded + self._encode(b"".join(tail))


def domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2]


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str
    token_key: str
    delivery_id: int = 0
    attributes: dict[str, str] = field(default_factory=dict, compare=False)  # for the letter's personal fields


@dataclass(frozen=True)
class Outgoing:
    """One message for one recipient, ready for a provider."""

    sender: str  # envelope sender (address only)
    recipient: str
    message_id: str
    data: bytes
    delivery_id: int = 0
    return_path: str | None = None  # with [bounces]: the VERP envelope sender SMTP uses instead of `sender`


def _image_part(image: EmbeddedImage) -> bytes:
    return b"".join(
        (
            f"Content-Type: {image.media_type}\r\n".encode("ascii"),
            b"Content-Transfer-Encoding: base64\r\n",
            f"Content-ID: <{image.content_id}>\r\n".encode("ascii"),
            f'Content-Disposition: inline; filename="{image.filename}"\r\n\r\n'.encode("ascii"),
            _base64(image.data),
        )
    )


def _boundary() -> bytes:
    # "=_" cannot occur in base64 or quoted-printable text, so no part can contain a boundary
    return f"=_{secrets.token_hex(12)}".encode("ascii")


def _check(name: str, value: str) -> str:
    if _CONTROL.search(value):
        raise ComposeError(name, f"line break or control character in header value {value!r}")
    return value


class VariantComposer:
    def __init__(self, variant: Variant, config: Config, *, subject_prefix: str = ""):
        self.variant = variant
        self.fields = variant.fields
        fallbacks = tuple(field.fallback for field in variant.fields)
        self.html = BodyEncoder(variant.html, html=True, fallbacks=fallbacks)
        self.text = BodyEncoder(variant.text, html=False, fallbacks=fallbacks)
        self.image_parts = [_image_part(image) for image in variant.images]
        try:
            sender_address = Address(addr_spec=parseaddr(config.sender)[1])
        except (ValueError, TypeError, email.errors.MessageError) as exc:
            raise ComposeError("Sender", f"{config.sender!r} cannot be written as an address: {exc}") from None
        name = sender_name(config, variant.languages)  # both languages' in the bilingual letter
        self.envelope_sender = sender_address.addr_spec
        self.domain = domain_of(self.envelope_sender)
        head = [
            from_header(name, sender_address.addr_spec),  # encoded-words of at most 75 characters
            header("Reply-To", config.reply_to) if config.reply_to else b"",
            subject_header(subject_prefix + variant.subject),
        ]
        self.head_before_to = b"".join(head)
        list_name = config.organisation.get("en") or ""
        list_id = f"{list_name} <{config.list_id}>" if list_name.isascii() and list_name else f"<{config.list_id}>"
        self.list_id = header("List-Id", list_id)
        self.content_language = f"Content-Language: {','.join(variant.languages)}\r\n".encode("ascii")
        self.base_url = config.base_url
        self.mailto = config.unsubscribe_mailto
        self.bounces = config.bounces
        self.mailto_address = parseaddr(self.mailto)[1] if self.mailto else None

    def compose(
        self, recipient: Recipient, *, signer: TokenSigner | None, campaign_id: int, now: dt.datetime
    ) -> Outgoing:
        to = _check("To", recipient.email)
        if not to.isascii() or "@" not in to or "=?" in to or any(c in to for c in ' <>,;"()'):
            raise ComposeError("To", f"not a plain ASCII address: {to!r}")
        token = signer.make(recipient.token_key, campaign_id) if signer else PREVIEW_TOKEN
        unsubscribe = unsubscribe_url(self.base_url, token)
        values = {"unsubscribe_url": unsubscribe, "name": recipient.name, "email": to}
        if self.fields:
            values |= person_values(self.fields, {**recipient.attributes, "name": recipient.name})
        text_cte, text_body = self.text.cte, self.text.encode(values)
        html_cte, html_body = self.html.cte, self.html.encode(values)
        message_id = f"<{campaign_id}.{recipient.delivery_id}.{secrets.token_hex(8)}@{self.domain}>"
        boundary = _boundary()
        targets = f"<{unsubscribe}>"
        return_path, mailto = self._tagged(recipient.delivery_id, signer, token)
        if mailto:
            targets += f", <{mailto}>"
        data = b"".join(
            (
                self.head_before_to,
                b"To: ",
                to.encode("ascii"),
                b"\r\n",
                b"Date: ",
                format_datetime(now).encode("ascii"),
                b"\r\n",
                b"Message-ID: ",
                message_id.encode("ascii"),
                b"\r\n",
                self.list_id,
                b"List-Unsubscribe: ",
                targets.encode("ascii"),
                b"\r\n",
                b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
                self.content_language,
                b"MIME-Version: 1.0\r\n",
                b'Content-Type: multipart/alternative; boundary="',
                boundary,
                b'"\r\n',
                b"\r\n",
                b"--",
                boundary,
                b"\r\n",
                b'Content-Type: text/plain; charset="utf-8"\r\n',
                b"Content-Transfer-Encoding: ",
                text_cte,
                b"\r\n\r\n",
                text_body,
                b"\r\n--",
                boundary,
                b"\r\n",
                *self._html_part(html_cte, html_body),
                b"\r\n--",
                boundary,
                b"--\r\n",
            )
        )
        return Outgoing(self.envelope_sender, to, message_id, data, recipient.delivery_id, return_path)

    def _tagged(self, delivery_id: int, signer: TokenSigner | None, token: str) -> tuple[str | None, str | None]:
        """(envelope sender for SMTP, List-Unsubscribe mailto). With [bounces] both name the
        delivery with a token of their own role, `bounces+<token>@…` and `unsubscribe+<token>@…`,
        read back by `newsletter feedback mailbox`; a test copy names none."""
        if self.bounces is None:
            return None, (f"mailto:{self.mailto}?subject=unsubscribe-{token}" if self.mailto else None)
        if signer is None:
            return self.bounces.address, (f"mailto:{self.mailto_address}?subject=unsubscribe" if self.mailto else None)
        tokens, delimiter = signer.deliveries, self.bounces.delimiter
        return_path = tagged(self.bounces.address, tokens.make(delivery_id, "bounce"), delimiter)
        if not self.mailto_address:
            return return_path, None
        mailto = tagged(self.mailto_address, tokens.make(delivery_id, "unsubscribe"), delimiter)
        return return_path, f"mailto:{mailto}?subject=unsubscribe"

    def _html_part(self, cte: bytes, body: bytes) -> list[bytes]:
        """The HTML part, or with images a multipart/related of it and the images encoded in advance."""
        html = [b'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: ', cte, b"\r\n\r\n", body]
        if not self.image_parts:
            return html
        related = _boundary()
        out = [b'Content-Type: multipart/related; type="text/html";\r\n boundary="', related, b'"\r\n\r\n--']
        out += [related, b"\r\n", *html]
        for part in self.image_parts:
            out += [b"\r\n--", related, b"\r\n", part]
        return [*out, b"\r\n--", related, b"--\r\n"]


class Composer:
    """Composers for every variant of a build, for one campaign."""

    def __init__(
        self,
        variants: dict[str, Variant],
        config: Config,
        *,
        signer: TokenSigner | None,
        campaign_id: int,
        subject_prefix: str = "",
    ):
        self.by_variant = {
            name: VariantComposer(v, config, subject_prefix=subject_prefix) for name, v in variants.items()
        }
        self.signer = signer
        self.campaign_id = campaign_id

    def compose(self, variant: str, recipient: Recipient, now: dt.datetime) -> Outgoing:
        return self.by_variant[variant].compose(recipient, signer=self.signer, campaign_id=self.campaign_id, now=now)


def preview_values(config: Config) -> dict[str, str]:
    """The values a preview shows: the preview recipient and an unsubscribe link that goes nowhere."""
    return {"unsubscribe_url": unsubscribe_url(config.base_url, PREVIEW_TOKEN), "name": "", "email": config.preview_to}


def preview_text(text: str, config: Config, *, html: bool, fallbacks: tuple[str, ...] = ()) -> str:
    """A rendered variant's HTML or text with the preview values filled in (personal fields: their fallbacks)."""
    return Slots(text, html=html, fallbacks=fallbacks).fill(preview_values(config))


def sample_message(variant: Variant, config: Config, *, now: dt.datetime | None = None) -> bytes:
    """The variant as one .eml addressed to the preview recipient, made exactly as a send makes it."""
    recipient = Recipient(config.preview_to, "", NOBODY_TOKEN_KEY)
    when = now or dt.datetime.now(dt.UTC)
    return VariantComposer(variant, config).compose(recipient, signer=None, campaign_id=0, now=when).data


def composable(build: Build) -> list[Problem]:
    """Every variant composed for a sample recipient: a value that cannot go into a header is
    a problem in the file and key it came from, found before any campaign exists."""
    return _samples(build)[1]


def sample_messages(build: Build) -> dict[str, bytes]:
    """Each variant's sample message; BadInput naming file, line and key when one cannot be composed."""
    samples, problems = _samples(build)
    if problems:
        raise BadInput(problems)
    return samples


def _samples(build: Build) -> tuple[dict[str, bytes], list[Problem]]:
    config = build.config
    problems = Problems()
    samples: dict[str, bytes] = {}
    issue_toml = build.issue.path / "issue.toml"
    for variant in build.variants.values():
        try:
            samples[variant.name] = sample_message(variant, config)
        except ComposeError as exc:
            # the bilingual letter's own value (subject.bilingual), or those it joins (subject.ar and subject.en)
            given = {"subject": variant.name in build.issue.subject, "organisation": config.organisation_bilingual}
            subject, sender = (
                " and ".join(f"{table}.{code}" for code in ([variant.name] if given[table] else variant.languages))
                for table in ("subject", "organisation")
            )
            path, key = {
                "Subject": (issue_toml, subject),
                "From": (config.path, sender),
                "Sender": (config.path, "email.from"),
                "Reply-To": (config.path, "email.reply_to"),
                "List-Id": (config.path, "organisation.en"),
                "To": (config.path, "email.preview_to"),
            }.get(exc.header, (config.path, exc.header))
            problems.add(path, f"{key}: {exc}", line=line_of_key(path, key))
    return samples, problems.items


def ensure_composable(build: Build) -> None:
    """BadInput naming file, line and key when a variant cannot be composed."""
    sample_messages(build)
