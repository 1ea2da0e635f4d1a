"""Publishing an issue: its web edition made from the same build as the email, with the
personal parts left out (no unsubscribe link, no placeholder, a sign-up link where there is
one), and kept in the store as it was then. An issue is published when its first real
campaign is created, or by `newsletter archive publish`."""

from __future__ import annotations

from dataclasses import dataclass

from newsletter.errors import BadInput, Problems
from newsletter.languages import BILINGUAL
from newsletter.letter.assemble import inbox_line, page_url
from newsletter.letter.images import with_file_names
from newsletter.letter.render import HTML_TEMPLATE, Build, render_variants
from newsletter.placeholders import Slots
from newsletter.store import Store

HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Published:
    slug: str
    written: bool  # False: it was published already and left as it was
    urls: dict[str, str]  # variant → where its page answers


def web_edition(build: Build) -> dict[str, tuple[str, bytes]]:
    """File name → (media type, data): each variant's page (`ar.html`, `en.html`,
    `bilingual.html`) and the images the pages show, named as the build folder names them."""
    problems = Problems()
    variants = render_variants(build.letters, build.config, problems, images=build.images, web=True)
    problems.raise_if_any()
    files: dict[str, tuple[str, bytes]] = {}
    for name, variant in variants.items():
        left = Slots(variant.html, html=True).names
        if left:  # a template of the project's own that does not know `variant.web`
            where = Problems.where(build.config.templates / HTML_TEMPLATE)
            raise BadInput.single(where, f"the web page of {name} would hold the placeholder(s) {', '.join(left)}")
        files[f"{name}.html"] = (HTML, with_file_names(variant.html, variant.images).encode("utf-8"))
        files.update((image.filename, (image.media_type, image.data)) for image in variant.images)
    return files


def details(build: Build) -> dict[str, dict[str, str]]:
    """What the index and the feeds say of the issue, per language (and for the bilingual page)."""
    out = {code: {"title": letter.title, "preheader": letter.preheader} for code, letter in build.letters.items()}
    if BILINGUAL in build.variants:
        letters = [build.letters[code] for code in build.config.codes]
        out[BILINGUAL] = {
            "title": " | ".join(letter.title for letter in letters),
            "preheader": inbox_line(letters).preheader,
        }
    return out


def publish(store: Store, build: Build, *, replace: bool = True) -> Published:
    """Publish the issue (again, with `replace`: its pages made anew, its date of publication kept)."""
    files = web_edition(build)
    written = store.archive.publish(build.issue.slug, build.issue.date, details(build), files, replace=replace)
    urls = {name: page_url(build.config, build.issue.slug, name) or "" for name in build.variants}
    return Published(build.issue.slug, written, urls)


def publish_first(store: Store, build: Build, *, rehearsal: bool) -> None:
    """At the creation of a real campaign: publish the issue unless it is published already
    (a rehearsal publishes nothing)."""
    if not rehearsal:
        publish(store, build, replace=False)
