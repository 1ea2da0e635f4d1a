"""Links that markdown-it's linkify makes of bare URLs and addresses (linkify-it-py), tidied;
and URL-like text left unlinked, which `check` lists."""

from __future__ import annotations

from collections.abc import Callable

from markdown_it.token import Token

from newsletter.letter.bidi import URL_LIKE

# Arabic punctuation that linkify-it takes into a URL ("https://x.org/،" is "https://x.org/" and a comma)
_TRAILING = "،؛؟۔"


def _attr(token: Token, name: str) -> str:
    value = token.attrGet(name)
    return "" if value is None else str(value)


def tidy_autolinks(children: list[Token], normalize: Callable[[str], str]) -> list[Token]:
    """Links made by linkify: Arabic punctuation after a URL left outside it, and a bare
    `www.`/domain link made https (linkify-it would make it http)."""
    out: list[Token] = []
    i = 0
    while i < len(children):
        token = children[i]
        made = token.type == "link_open" and token.markup == "linkify" and i + 2 < len(children)
        if not made or children[i + 1].type != "text":
            out.append(token)
            i += 1
            continue
        text, close = children[i + 1], children[i + 2]
        shown = text.content.rstrip(_TRAILING)
        rest = text.content[len(shown) :]
        href = _attr(token, "href")
        if rest:
            href = normalize(shown if "://" in shown or href.startswith("mailto:") else f"http://{shown}")
            href = f"mailto:{shown}" if _attr(token, "href").startswith("mailto:") else href
            text.content = shown
        if href.startswith("http://") and not shown.lower().startswith("http://"):
            href = "https://" + href[len("http://") :]
        token.attrSet("href", href)
        out += [token, text, close]
        if rest:
            out.append(Token("text", "", 0, content=rest))
        i += 3
    return out


def unlinked(tokens: list[Token]) -> list[tuple[str, int | None]]:
    """URL-like text that is not a link (linkify did not take it, or it is in `code`), for checks."""
    found: list[tuple[str, int | None]] = []
    for token in tokens:
        if token.type != "inline":
            continue
        line = token.map[0] if token.map else None
        depth = 0
        for child in token.children or []:
            depth += {"link_open": 1, "link_close": -1}.get(child.type, 0)
            if depth == 0 and child.type in ("text", "code_inline"):
                found.extend((match.group(), line) for match in URL_LIKE.finditer(child.content))
    return found
