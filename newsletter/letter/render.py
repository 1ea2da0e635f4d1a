"""Rendering a letter: Jinja2 → MJML → HTML (mjml-python) → inlined CSS (premailer), plus text.

Pure: takes loaded data and returns strings. Personal values (the unsubscribe URL, …) are
left as placeholders, filled in per recipient by `newsletter.message.composer`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import jinja2
from markupsafe import Markup, escape
from mjml import mjml2html
from premailer import Premailer

from newsletter.config import Config
from newsletter.domain import BILINGUAL
from newsletter.errors import Problem, Problems
from newsletter.letter import edition, markdown, personal
from newsletter.letter.assemble import Block, Letter, inbox_line
from newsletter.letter.bidi import isolate_link, mark_text, wrap_html
from newsletter.letter.images import EmbeddedImage, LetterImages
from newsletter.letter.personal import Field
from newsletter.placeholders import marker

HTML_TEMPLATE = "email.mjml.j2"
TEXT_TEMPLATE = "email.txt.j2"
_DOCTYPE = "<!doctype html>"
_POSITION = re.compile(r"\s*at position (\d+):(\d+)")
_LEFTOVER_TAG = re.compile(r"</?mj-[a-z-]*")


@dataclass(frozen=True)
class Variant:
    name: str  # "ar", "en" or "bilingual"
    lang: str
    dir: str
    languages: tuple[str, ...]
    subject: str
    preheader: str
    html: str
    text: str
    images: tuple[EmbeddedImage, ...] = ()  # the parts of multipart/related, named in `html` by cid:
    fields: tuple[Field, ...] = ()  # the personal fields, whose markers the composer fills

    @property
    def image_bytes(self) -> int:
        return sum(len(image.data) for image in self.images)


def variant_names(config: Config) -> list[str]:
    names = list(config.codes)
    if len(names) > 1:
        names.append(BILINGUAL)
    return names


def render_variants(
    letters: dict[str, Letter],
    config: Config,
    problems: Problems,
    only: list[str] | None = None,
    images: LetterImages | None = None,
    *,
    web: bool = False,
) -> dict[str, Variant]:
    """Every variant (or those in `only`); on failure the problems are recorded. `web`: the
    archive's pages instead of messages (no unsubscribe link, no placeholder, links between pages)."""
    env = _environment(config.templates)
    images = images or LetterImages()
    sources = images.html_sources()
    names = [n for n in variant_names(config) if only is None or n in only]
    needed = {c for n in names for c in (config.codes if n == BILINGUAL else [n])}
    views = {code: _block_view(letters[code], sources) for code in config.codes if code in needed}
    variants: dict[str, Variant] = {}
    for name in names:
        chosen = [letters[c] for c in (list(config.codes) if name == BILINGUAL else [name])]
        blocks = [views[letter.language.code] for letter in chosen]
        variant = _render_one(name, chosen, blocks, env, config, problems, web=web)
        if variant is not None:
            variant = _personal(variant, chosen[0].fields, problems, web=web)
        if variant is not None:
            parts = [b.part for letter in chosen for b in (letter.opening, *letter.sections, letter.closing) if b]
            variants[name] = dataclasses.replace(variant, images=images.embedded(parts))
    return variants


def _personal(variant: Variant, fields: tuple[Field, ...], problems: Problems, *, web: bool) -> Variant | None:
    """The personal fields: on a web page their fallbacks (nothing personal is published); in a
    message, markers for the composer, which may stand only in text, not in a link or attribute."""
    if web:
        html = personal.to_slots(variant.html, lambda n: escape(fields[n].fallback))
        return dataclasses.replace(
            variant, html=html, text=personal.to_slots(variant.text, lambda n: fields[n].fallback)
        )
    if fields and personal.in_attribute(variant.html):
        inside = personal.markers_in(" ".join(re.findall(r"<[^>]*>", variant.html))) or set(range(len(fields)))
        for number in sorted(inside):
            field = fields[number]
            problems.add(
                Path(field.path),
                f"{{{{ {field.name} }}}} in a link's address or an attribute: a field may stand only in text",
                line=field.line,
            )
        return None
    return dataclasses.replace(variant, fields=fields)


# --- views handed to the templates ------------------------------------------------------------


def _block_view(letter: Letter, images: dict[str, tuple[str, int | None]]) -> dict:
    language = letter.language

    def block(b: Block | None) -> dict | None:
        if b is None:
            return None
        return {
            "label": b.label,
            "title": b.title,
            "html": Markup(markdown.to_html(b.part.tokens, language, images, letter.digits)),
            "text": markdown.to_text(b.part.tokens, language, digits=letter.digits),
        }

    return {
        "lang": language.code,
        "dir": language.dir,
        "align": language.align,
        "font": language.font_stack,
        "organisation": letter.organisation,
        "title": letter.title,
        "date_label": letter.date_label,
        "opening": block(letter.opening),
        "sections": [block(s) for s in letter.sections],
        "closing": block(letter.closing),
    }


def _footer_view(letter: Letter, config: Config) -> dict:
    language = letter.language
    signup = config.archive.signup_url
    return {
        "signup": {"url": signup, "text": language.word("signup"), "link": language.word("signup_link")}
        if signup
        else None,
        "lang": language.code,
        "dir": language.dir,
        "align": language.align,
        "font": language.font_stack,
        "why": language.word("why", organisation=letter.organisation),
        "contact_label": language.word("contact"),
        "contact": config.contact,
        "unsubscribe": language.word("unsubscribe"),
        "unsubscribe_text": language.word("unsubscribe_text"),
    }


def _render_one(
    name: str,
    letters: list[Letter],
    blocks: list[dict],
    env: jinja2.Environment,
    config: Config,
    problems: Problems,
    *,
    web: bool = False,
) -> Variant | None:
    first = letters[0]
    languages = [letter.language for letter in letters]
    links = edition.message_links(config, first.slug, name, languages)
    jump = None
    if len(letters) > 1:
        other = letters[1].language
        jump = {
            "lang": other.code,
            "dir": other.dir,
            "align": other.align,
            "font": other.font_stack,
            "text": other.word("read_in"),
            # where in-message anchors do nothing (the Gmail and Outlook apps): the page itself
            # (on the web page itself the anchor works: no second link)
            "page": {"url": None} if web else links["other_pages"][other.code],
        }
    inbox = inbox_line(letters)
    view = {
        "web": edition.web_links(name, languages, config.languages) if web else None,
        "online": None if web else links["online"],
        "name": name,
        "lang": first.language.code,
        "dir": first.language.dir,
        "title": first.title,
        "preheader": inbox.preheader,
        "blocks": blocks,
        "footers": [_footer_view(letter, config) for letter in letters],
        "jump": jump,
    }
    count = len(problems.items)
    mjml_source = _render_template(env, HTML_TEMPLATE, view, config, problems)
    text = _render_template(env, TEXT_TEMPLATE, view, config, problems)
    if mjml_source is None or text is None:
        return None
    html = _mjml_to_html(mjml_source, config, problems)
    if html is None or len(problems.items) > count:
        return None
    return Variant(
        name=name,
        lang=first.language.code,
        dir=first.language.dir,
        languages=tuple(letter.language.code for letter in letters),
        subject=inbox.subject,
        preheader=inbox.preheader,
        html=inline_css(html),
        text=text.strip() + "\n",
    )


# --- Jinja2 -----------------------------------------------------------------------------------

_environments: dict[Path, jinja2.Environment] = {}
_environments_lock = threading.Lock()


def _environment(folder: Path) -> jinja2.Environment:
    """One environment per templates folder; auto_reload picks up edited templates."""
    with _environments_lock:
        env = _environments.get(folder)
        if env is None:
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(str(folder)),
                # HTML and MJML are escaped; the plain-text part must not be (no &#39; in text)
                autoescape=jinja2.select_autoescape(enabled_extensions=("mjml.j2", "html.j2"), default=False),
                undefined=jinja2.StrictUndefined,
                auto_reload=True,
                keep_trailing_newline=True,
            )
            env.filters["bidi"] = lambda text, direction: Markup(wrap_html(str(text), direction))
            env.filters["mark"] = lambda text, direction: mark_text(str(text), direction)
            env.filters["isolate"] = lambda text, direction: isolate_link(str(text), direction)
            env.filters["email_link"] = _email_link
            env.globals["placeholder"] = marker
            _environments[folder] = env
        return env


def _email_link(address: str, direction: str) -> Markup:
    link = Markup('<a href="mailto:{0}" style="color:#1a5d8f">{0}</a>').format(address)
    if direction == "rtl":
        return Markup('<span dir="ltr">{}</span>').format(link)
    return link


def _render_template(env: jinja2.Environment, name: str, view: dict, config: Config, problems: Problems) -> str | None:
    try:
        template = env.get_template(name)
        return template.render(variant=view)
    except jinja2.TemplateNotFound as exc:
        problems.add(config.templates / str(exc.name), "template not found")
    except jinja2.TemplateSyntaxError as exc:
        problems.add(
            Path(exc.filename or config.templates / name), f"template syntax error: {exc.message}", line=exc.lineno
        )
    except Exception as exc:  # noqa: BLE001 - any error raised while a template runs is the template's
        path, line = _template_frame(exc.__traceback__, config.templates)
        problems.add(path or config.templates / name, f"template error: {type(exc).__name__}: {exc}", line=line)
    return None


def _template_frame(tb: TracebackType | None, folder: Path) -> tuple[Path | None, int | None]:
    """The innermost traceback frame inside a template (Jinja2 rewrites them to template lines)."""
    found: tuple[Path | None, int | None] = (None, None)
    root = str(folder.resolve())
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(root):
            found = (Path(filename), tb.tb_lineno)
        tb = tb.tb_next
    return found


# --- MJML -------------------------------------------------------------------------------------


def _mjml_to_html(source: str, config: Config, problems: Problems) -> str | None:
    try:
        html = mjml2html(source, disable_comments=True)
    except ValueError as exc:
        message = str(exc)
        match = _POSITION.search(message)
        reason = _POSITION.sub("", message)
        if match:
            start = int(match.group(1))
            problems.items.append(
                _locate(source, start, int(match.group(2)), f"MJML error: {reason}", config, problems)
            )
        else:
            problems.add(config.templates / HTML_TEMPLATE, f"MJML error: {reason}")
        return None
    # mjml-python validates nothing: an unknown or unclosed tag passes through as text.
    leftover = _LEFTOVER_TAG.search(html)
    if leftover:
        tag = leftover.group()
        encoded = source.encode("utf-8")
        needle = tag.encode()
        at = encoded.find(needle)
        if at < 0:
            problems.add(
                config.templates / HTML_TEMPLATE, f"MJML left {tag!r} in the HTML: unknown or misplaced MJML tag"
            )
        else:
            problems.items.append(
                _locate(
                    source,
                    at + 1,
                    at + len(needle),
                    f"unknown or misplaced MJML tag {tag + '>'!r} left in the HTML",
                    config,
                    problems,
                )
            )
        return None
    return html


def _locate(source: str, start: int, end: int, message: str, config: Config, problems: Problems) -> Problem:
    """Turn a UTF-8 byte span in the generated MJML into a template file, line and column.

    Jinja2 keeps no output-to-source map, so the tag text is looked up in the templates;
    when it is not found there, the position in the generated MJML is given instead.
    """
    encoded = source.encode("utf-8")
    snippet = encoded[max(start - 1, 0) : end].decode("utf-8", "replace").strip()
    line_start = encoded.rfind(b"\n", 0, start) + 1
    generated_line = encoded.count(b"\n", 0, start) + 1
    generated_col = len(encoded[line_start:start].decode("utf-8", "replace")) + 1
    token = snippet if snippet.startswith("<") else f"<{snippet}" if snippet else ""
    if token:
        for template in sorted(config.templates.glob("*.j2")):
            lines = template.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines, 1):
                col = line.find(token)
                if col >= 0 and _tag_boundary(line, col + len(token)):
                    return Problem(problems.where(template), number, message, col + 1)
    return Problem(
        problems.where(config.templates / HTML_TEMPLATE),
        None,
        f"{message} (generated MJML line {generated_line}, column {generated_col}: {snippet!r})",
    )


def _tag_boundary(line: str, index: int) -> bool:
    return index >= len(line) or not (line[index].isalnum() or line[index] == "-")


# --- CSS inlining -----------------------------------------------------------------------------

logging.getLogger("CSSUTILS").setLevel(logging.CRITICAL)


def inline_css(html: str) -> str:
    """Inline the head styles; keep @media rules with !important, never fetch, keep the doctype."""
    inlined = Premailer(
        html,
        allow_network=False,
        strip_important=False,
        keep_style_tags=False,
        remove_classes=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
    ).transform(pretty_print=False)
    if not inlined.lstrip().lower().startswith("<!doctype"):
        inlined = f"{_DOCTYPE}\n{inlined}"
    return inlined
