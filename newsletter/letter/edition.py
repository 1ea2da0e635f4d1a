"""The letter on the web: where each page of the public archive lives, and what a message and a
web page say about it. The one home of the archive's layout:

    index.html              the index in the primary language (the same page as index.<code>.html)
    index.<code>.html       the index in each language, newest first
    feed.<code>.xml         an Atom feed per language
    <slug>/<variant>.html   one page per issue and variant (ar, en, bilingual), images beside it

Every page links to the others relatively, so the folder can be hosted anywhere; a message's
"view in browser" link is absolute: `[archive] url` (default `base_url`/archive, which
`newsletter serve` answers) followed by the page's path. No link holds anything personal.
"""

from __future__ import annotations

from urllib.parse import quote

from newsletter.config import Config
from newsletter.domain import BILINGUAL
from newsletter.languages import Language


def page_path(slug: str, variant: str) -> str:
    """The page's file in the site's folder."""
    return f"{slug}/{variant}.html"


def page_href(slug: str, variant: str) -> str:
    """The page's path in a URL (a folder name with spaces or Arabic letters percent-encoded)."""
    return quote(page_path(slug, variant))


def index_name(code: str) -> str:
    return f"index.{code}.html"


def feed_name(code: str) -> str:
    return f"feed.{code}.xml"


def page_url(config: Config, slug: str, variant: str) -> str | None:
    """Where a variant's page answers (None when there is no archive URL: no base_url)."""
    return f"{config.archive.url}/{page_href(slug, variant)}" if config.archive.url and slug else None


def message_links(config: Config, slug: str, name: str, languages: list[Language]) -> dict:
    """What a message says about its web page: "view in browser" in the reader's language and,
    in a bilingual letter, the other language's page beside the jump link (in-message anchors
    do nothing in the Gmail and Outlook apps)."""
    first = languages[0]
    url = page_url(config, slug, name)
    online = {"url": url, "text": first.word("view_online"), "dir": first.dir, "lang": first.code} if url else None
    others = {
        language.code: {"url": page_url(config, slug, language.code), "text": language.word("read_in_browser")}
        for language in languages[1:]
    }
    return {"online": online, "other_pages": others}


def web_links(name: str, languages: list[Language], all_languages: tuple[Language, ...]) -> dict:
    """What a web page links to, relatively from `<slug>/<variant>.html`: the archive's index in
    the page's language, and the other pages of the issue (from the bilingual page, each
    language's by its name; from one language's, the others' "Read in …")."""
    first = languages[0]
    pages = [
        {
            "url": f"{language.code}.html",
            "text": language.name if name == BILINGUAL else language.word("read_in"),
            "dir": language.dir,
            "lang": language.code,
        }
        for language in all_languages
        if name == BILINGUAL or language.code != first.code
    ]
    return {"index": {"url": f"../{index_name(first.code)}", "text": first.word("archive_back")}, "pages": pages}
