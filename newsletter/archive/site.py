"""The archive as a static site (layout: newsletter.letter.assemble): an index per language,
newest first, an Atom feed per language, and each published issue's pages. `newsletter archive
build` writes it to a folder; `newsletter serve` answers the same files under /archive/.

The pages load nothing from elsewhere and run no script; every value is escaped (Jinja2's
autoescape, ElementTree for the feeds). Nothing personal is in them: the issue pages are the
web edition (newsletter.archive.publish), and the index and feeds say only titles and dates.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import jinja2
from markupsafe import Markup

from newsletter.config import Config, packaged_templates
from newsletter.editor.output import write_all
from newsletter.languages import BILINGUAL, Language, format_month, wrap_html
from newsletter.letter.assemble import feed_name, index_name, page_href
from newsletter.store.archive import Publication

INDEX_TEMPLATE = "archive.html.j2"
HTML = "text/html; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"
ATOM_NS = "http://www.w3.org/2005/Atom"

Files = dict[str, tuple[str, bytes]]


def _environment(config: Config) -> jinja2.Environment:
    """The project's templates first, then the package's (a project's own folder may not have this one)."""
    folders = [str(config.templates), str(packaged_templates())]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(folders), autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["bidi"] = lambda text, direction: Markup(wrap_html(str(text), direction))
    return env


def _listed(publications: list[Publication], code: str) -> list[Publication]:
    return [p for p in publications if code in p.details]


def index_page(config: Config, publications: list[Publication], language: Language) -> bytes:
    code = language.code
    organisation = config.organisation.get(code, "")
    entries = [
        {
            "title": p.details[code].get("title", p.slug),
            "summary": p.details[code].get("preheader", ""),
            "date": format_month(language, p.issue_date.year, p.issue_date.month, "western", config.dates.style(code)),
            "iso_date": p.issue_date.isoformat(),
            "url": page_href(p.slug, code),
            "bilingual": page_href(p.slug, BILINGUAL) if BILINGUAL in p.details else None,
        }
        for p in _listed(publications, code)
    ]
    others = [
        {"url": index_name(other.code), "text": other.name, "lang": other.code, "dir": other.dir}
        for other in config.languages
        if other.code != code
    ]
    html = (
        _environment(config)
        .get_template(INDEX_TEMPLATE)
        .render(
            lang=code,
            dir=language.dir,
            align=language.align,
            font=language.font_stack,
            organisation=organisation,
            title=language.word("archive"),
            intro=language.word("archive_intro", organisation=organisation),
            empty=language.word("archive_empty"),
            feed={"url": feed_name(code), "text": language.word("archive_feed")},
            bilingual_text=language.word("edition_bilingual"),
            others=others,
            entries=entries,
        )
    )
    return html.encode("utf-8")


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_dates(publication: Publication) -> tuple[dt.datetime, dt.datetime]:
    """(published, updated) of a feed entry: the issue's date (midnight UTC) for both, as the
    index shows it; `updated` is the time its pages were last replaced only when they were
    replaced after the first publication (Atom's `updated`: a change the publisher thinks worth
    telling). Never an `updated` before `published`."""
    issued = dt.datetime.combine(publication.issue_date, dt.time(), tzinfo=dt.UTC)
    replaced = publication.updated_at > publication.published_at
    return issued, max(issued, publication.updated_at) if replaced else issued


def feed(config: Config, publications: list[Publication], language: Language) -> bytes:
    """An Atom feed (RFC 4287) of the issues published in `language`, newest first."""
    code = language.code
    base = config.archive.url or ""
    listed = _listed(publications, code)
    organisation = config.organisation.get(code, "")
    ET.register_namespace("", ATOM_NS)
    root = ET.Element(f"{{{ATOM_NS}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": code})

    def add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        element.text = text
        return element

    add(root, "id", f"{base}/{feed_name(code)}")
    add(root, "title", f"{organisation} – {language.word('archive')}")
    newest = max((entry_dates(p)[1] for p in listed), default=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    add(root, "updated", _stamp(newest))
    add(root, "link", rel="self", type="application/atom+xml", href=f"{base}/{feed_name(code)}")
    add(root, "link", rel="alternate", type="text/html", href=f"{base}/{index_name(code)}")
    author = add(root, "author")
    add(author, "name", organisation)
    for p in listed:
        url = f"{base}/{page_href(p.slug, code)}"
        entry = add(root, "entry")
        add(entry, "id", url)
        add(entry, "title", p.details[code].get("title", p.slug))
        add(entry, "link", rel="alternate", type="text/html", href=url, hreflang=code)
        published, updated = entry_dates(p)
        add(entry, "published", _stamp(published))
        add(entry, "updated", _stamp(updated))
        add(entry, "summary", p.details[code].get("preheader", ""))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def generated(config: Config, publications: list[Publication]) -> Files:
    """The files made from the list of publications: the indexes and the feeds."""
    files: Files = {}
    for language in config.languages:
        files[index_name(language.code)] = (HTML, index_page(config, publications, language))
        files[feed_name(language.code)] = (ATOM, feed(config, publications, language))
    files["index.html"] = files[index_name(config.primary.code)]  # same folder: the same links work
    return files


def site(config: Config, publications: list[Publication], files_of: Callable[[str], Files]) -> Files:
    """Every file of the site: the generated ones and each published issue's, under its slug."""
    out = generated(config, publications)
    for p in publications:
        out.update((f"{p.slug}/{name}", found) for name, found in files_of(p.slug).items())
    return out


def write_site(config: Config, store, out_dir: Path) -> tuple[Path, Files]:
    """`newsletter archive build`: the whole site written to `out_dir`, swapped into place at once."""
    files = site(config, store.archive.publications(), store.archive.files)
    write_all(out_dir, {name: data for name, (_media, data) in files.items()})
    return out_dir, files
