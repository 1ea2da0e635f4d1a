"""Rendering a letter: Jinja2 → MJML → HTML (mjml-python) → inlined CSS (premailer), plus text;
and `build_issue`, the whole letter in memory: the issue folder loaded, assembled, rendered.
Nothing is written here; `newsletter.editor.output` writes the files and the sender sends.

Pure: takes loaded data and returns strings. Personal values (the unsubscribe URL, …) are
left as placeholders, filled in per recipient by `newsletter.message.composer`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import logging
import re
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path

import jinja2
from markupsafe import Markup, escape
from mjml import mjml2html

from newsletter import placeholders
from newsletter.config import Config, load_config, locate_config
from newsletter.errors import Problems
from newsletter.languages import BILINGUAL, isolate_link, keep_last_words, mark_text, wrap_html
from newsletter.letter import template_errors
from newsletter.letter.assemble import Letter, assemble, block_view, footer_view, inbox_line, message_links, web_links
from newsletter.letter.images import EmbeddedImage, LetterImages, base64_size, load_images
from newsletter.letter.issue_folder import Issue, load_issue
from newsletter.letter.template_errors import HTML_TEMPLATE
from newsletter.placeholders import Field, marker

TEXT_TEMPLATE = "email.txt.j2"
_DOCTYPE = "<!doctype html>"
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
    fields: tuple[Field, ...] = ()  # the issue's personal fields, whose markers the composer fills

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
    names = [n for n in variant_names(config) if only is None or n in only]
    needed = {c for n in names for c in (config.codes if n == BILINGUAL else [n])}
    views = {code: block_view(letters[code], images) for code in config.codes if code in needed}
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
        html = placeholders.to_slots(variant.html, lambda n: escape(fields[n].fallback))
        return dataclasses.replace(
            variant, html=html, text=placeholders.to_slots(variant.text, lambda n: fields[n].fallback)
        )
    if fields and placeholders.in_attribute(variant.html):
        inside = placeholders.markers_in(" ".join(re.findall(r"<[^>]*>", variant.html))) or set(range(len(fields)))
        for number in sorted(inside):
            field = fields[number]
            problems.add(
                Path(field.path),
                f"{{{{ {field.name} }}}} in a link's address or an attribute: a field may stand only in text",
                line=field.line,
            )
        return None
    return dataclasses.replace(variant, fields=fields)


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
    links = message_links(config, first.slug, name, languages)
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
        "web": web_links(name, languages, config.languages) if web else None,
        "online": None if web else links["online"],
        "name": name,
        "lang": first.language.code,
        "dir": first.language.dir,
        "title": first.title,
        "preheader": inbox.preheader,
        "blocks": blocks,
        "footers": [footer_view(letter, config) for letter in letters],
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
                bytecode_cache=_bytecode_cache(),
            )
            env.filters["bidi"] = lambda text, direction: Markup(wrap_html(str(text), direction))
            env.filters["heading"] = lambda text, direction: Markup(wrap_html(keep_last_words(str(text)), direction))
            env.filters["mark"] = lambda text, direction: mark_text(str(text), direction)
            env.filters["isolate"] = lambda text, direction: isolate_link(str(text), direction)
            env.filters["email_link"] = _email_link
            env.globals["placeholder"] = marker
            _environments[folder] = env
        return env


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept between runs, each checked against its template's source: Jinja2's
    own cache, in its private folder of the temporary directory. Compiling the two templates
    afresh took a tenth of `newsletter build`."""

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):  # a cache that cannot be written: compiled again next time
            super().dump_bytecode(bucket)


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    try:
        return _TemplateCache()
    except (OSError, RuntimeError):  # no private folder to be had (Jinja2 refuses a shared one)
        return None


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
        path, line = template_errors.template_frame(exc.__traceback__, config.templates)
        problems.add(path or config.templates / name, f"template error: {type(exc).__name__}: {exc}", line=line)
    return None


# --- MJML -------------------------------------------------------------------------------------


def _mjml_to_html(source: str, config: Config, problems: Problems) -> str | None:
    try:
        html = mjml2html(source, disable_comments=True)
    except ValueError as exc:
        template_errors.mjml_error(source, str(exc), config, problems)
        return None
    # mjml-python validates nothing: an unknown or unclosed tag passes through as text.
    leftover = _LEFTOVER_TAG.search(html)
    if leftover:
        template_errors.leftover_tag(source, leftover.group(), config, problems)
        return None
    return html


# --- CSS inlining -----------------------------------------------------------------------------

logging.getLogger("CSSUTILS").setLevel(logging.CRITICAL)
_premailer_lock = threading.Lock()


def _deferred(name: str) -> None:
    """`name` stands in sys.modules as a module that imports the real one at its first attribute use."""
    if name in sys.modules or (spec := importlib.util.find_spec(name)) is None:
        return
    stand_in = types.ModuleType(name)
    stand_in.__spec__ = spec

    def load(attribute: str) -> object:  # PEP 562: asked for whatever the stand-in lacks
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
        return getattr(importlib.import_module(name), attribute)

    stand_in.__getattr__ = load  # type: ignore[method-assign]
    sys.modules[name] = stand_in
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, stand_in)


def _premailer() -> type:
    """premailer's Premailer, imported on first use.

    premailer imports requests, and cssutils urllib.request, only to fetch stylesheets, which
    inlining never does here (allow_network=False): with urllib3, http.client, ssl and two
    charset detectors they were a fifth of `newsletter build`, so they load only if used. And
    premailer has cssutils validate every inline style, whatever `disable_validation` says; the
    verdicts only go to a log silenced here, and the first one compiles every CSS profile's
    expressions: without profiles cssutils validates nothing."""
    with _premailer_lock:
        if "premailer" not in sys.modules:
            _deferred("requests")
            _deferred("urllib.request")
            import cssutils

            cssutils.profile.removeProfile(all=True)
        from premailer import Premailer

    return Premailer


def inline_css(html: str) -> str:
    """Inline the head styles; keep @media rules with !important, never fetch, keep the doctype.
    No CSS width or height becomes an attribute: MJML writes those Outlook needs, and an image's
    width:100% would replace its width="536" (Outlook would show it at its own size)."""
    inlined = _premailer()(
        html,
        allow_network=False,
        strip_important=False,
        keep_style_tags=False,
        remove_classes=False,
        disable_validation=True,
        disable_basic_attributes=["width", "height"],
        cssutils_logging_level=logging.CRITICAL,
    ).transform(pretty_print=False)
    if not inlined.lstrip().lower().startswith("<!doctype"):
        inlined = f"{_DOCTYPE}\n{inlined}"
    return inlined


# --- the whole letter in memory --------------------------------------------------------------

GMAIL_CLIP_BYTES = 102 * 1024
SIZE_WARNING_BYTES = 90 * 1024
MESSAGE_WARNING_BYTES = 1024 * 1024  # slow to fetch on a poor or metered connection


def message_bytes(variant: Variant) -> int:
    """About what the message weighs: every part base64-encoded (the heavier encoding), headers aside."""
    parts = [len(variant.html.encode("utf-8")), len(variant.text.encode("utf-8"))]
    return sum(base64_size(size) for size in parts) + sum(base64_size(len(i.data)) for i in variant.images)


def weight_line(variant: Variant) -> str:
    """The message's weight with each image's, for warnings and checks."""
    listed = ", ".join(f"{image.filename} {len(image.data) / 1024:.1f} KB" for image in variant.images)
    return f"the message weighs about {message_bytes(variant) / 1024:.1f} KB with its images ({listed})"


@dataclass(frozen=True)
class Build:
    config: Config
    issue: Issue
    letters: dict[str, Letter]
    variants: dict[str, Variant]
    images: LetterImages = LetterImages()

    def warnings(self) -> list[str]:
        out = []
        for variant in self.variants.values():
            size = len(variant.html.encode("utf-8"))
            if size > SIZE_WARNING_BYTES:
                out.append(
                    f"{variant.name}.html: {size / 1024:.1f} KB of HTML; Gmail clips messages over about "
                    f"{GMAIL_CLIP_BYTES // 1024} KB"
                )
            if message_bytes(variant) > MESSAGE_WARNING_BYTES:
                out.append(
                    f"{variant.name}.eml: {weight_line(variant)}; keep it under {MESSAGE_WARNING_BYTES // 1024} KB"
                )
        return out

    def content_hash(self) -> str:
        """A fingerprint of what every reader gets: a campaign refuses to go on with another letter.

        The images are in it through the HTML: each Content-ID holds a hash of the image."""
        digest = hashlib.sha256()
        for name, variant in sorted(self.variants.items()):
            fallbacks = [field.fallback for field in variant.fields]  # what readers without a value read
            for part in (name, variant.subject, variant.text, variant.html, *fallbacks):
                digest.update(part.encode("utf-8"))
                digest.update(b"\0")
        return digest.hexdigest()


def build_issue(issue_dir: Path, config_path: Path | None = None) -> Build:
    """Everything the issue renders to, in memory. Raises BadInput with every problem found."""
    config = load_config(locate_config(issue_dir, config_path))
    problems = Problems()
    issue = load_issue(issue_dir, config, problems)
    if issue is None:
        problems.raise_if_any()
        raise AssertionError("load_issue returned nothing without a problem")
    images = load_images(issue, config, problems)
    letters = assemble(issue, config)
    variants = render_variants(letters, config, problems, images=images)
    problems.raise_if_any()
    return Build(config=config, issue=issue, letters=letters, variants=variants, images=images)
