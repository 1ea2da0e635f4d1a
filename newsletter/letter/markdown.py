"""Markdown bodies to HTML fragments and to plain text, in one direction or the other.

Raw HTML in Markdown is disabled: editors write text, and every value reaches the email
escaped. Direction is set on every block because webmails drop <html> and <body>. Bare URLs
and addresses become links (markdown-it's linkify, with linkify-it-py): `https://…`, `www.…`,
`name@host`; the links linkify makes are tidied (Arabic punctuation kept out, a bare `www.` or
domain link made https).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html import escape

from markdown_it import MarkdownIt
from markdown_it.token import Token

from newsletter.languages import (
    LRM,
    NOWRAP_MAX,
    PHONE,
    Language,
    format_number,
    is_foreign,
    isolate_link,
    ltr_digits,
    mark_text,
    wrap_html,
)

_MD = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False}).enable("linkify")
if _MD.linkify is not None:
    _MD.linkify.add("//", None).add("ftp:", None)  # no scheme-relative or FTP links: check refuses them

TEXT_WIDTH = 76
ImageSource = tuple[str, int | None, int | None]  # the src the HTML gets, its width and height attributes
LIST_INDENT = "  "  # list items sit under their section's heading, never at its column


def parse(markdown: str) -> list[Token]:
    tokens = _MD.parse(markdown)
    for token in tokens:
        if token.type == "inline" and token.children:
            token.children = tidy_autolinks(token.children, _MD.normalizeLink)
    return tokens


# Arabic punctuation that linkify-it takes into a URL ("https://x.org/،" is "https://x.org/" and a comma)
_TRAILING = "،؛؟۔"


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


@dataclass(frozen=True)
class Style:
    """Inline CSS per element; physical alignment only (no start/end)."""

    paragraph: str
    heading: str
    list: str
    item: str
    link: str
    image: str
    quote: str


def style_for(language: Language) -> Style:
    align = language.align
    side = "right" if language.rtl else "left"
    line_height = "1.8" if language.rtl else "1.6"
    return Style(
        paragraph=f"margin:0 0 16px;text-align:{align};line-height:{line_height}",
        heading=f"margin:24px 0 8px;font-size:18px;line-height:1.4;text-align:{align}",
        list=f"margin:0 0 16px;padding-{side}:24px;padding-{'left' if language.rtl else 'right'}:0;text-align:{align}",
        item=f"margin:0 0 8px;line-height:{line_height};text-align:{align}",
        link="color:#1a5d8f;text-decoration:underline",
        image="display:block;max-width:100%;height:auto;border:0",
        quote=f"margin:0 0 16px;padding-{side}:12px;border-{side}:3px solid #c9d3dc;color:#4a5560",
    )


def _attr(token: Token, name: str) -> str:
    """A token's attribute as text ("" when absent)."""
    value = token.attrGet(name)
    return "" if value is None else str(value)


def to_html(
    tokens: list[Token],
    language: Language,
    images: Mapping[str, ImageSource] | None = None,
    digits: str = "western",
    *,
    breaks: bool = False,
) -> str:
    """One block of HTML for `tokens`, with dir and lang on every block element.

    `images` maps each image's Markdown src to the src the HTML gets and its size
    (`newsletter.letter.images`); an image not in it is shown as its alt text. Ordered lists
    count in `digits`, the style of the section numbers (١. ٢. under ١. ٢.). With `breaks`, a
    line break inside a paragraph stays one (a signature's name, role and organisation).
    """
    style = style_for(language)
    d = language.dir
    attrs = f' dir="{d}"'
    out: list[str] = []
    for token in tokens:
        kind = token.type
        if kind == "paragraph_open":
            if token.hidden:  # paragraphs of tight list items
                continue
            out.append(f'<p{attrs} style="{style.paragraph}">')
        elif kind == "paragraph_close":
            if token.hidden:
                continue
            out.append("</p>")
        elif kind == "heading_open":
            level = min(int(token.tag[1]) + 1, 4)  # h1 in a section body sits under the section's h2
            out.append(f'<h{level}{attrs} style="{style.heading}">')
        elif kind == "heading_close":
            level = min(int(token.tag[1]) + 1, 4)
            out.append(f"</h{level}>")
        elif kind in ("bullet_list_open", "ordered_list_open"):
            tag = "ul" if kind == "bullet_list_open" else "ol"
            start = token.attrGet("start")
            start_attr = f' start="{int(start)}"' if start else ""
            counted = ";list-style-type:arabic-indic" if tag == "ol" and digits == "arabic-indic" else ""
            out.append(f'<{tag}{attrs}{start_attr} style="{style.list}{counted}">')
        elif kind in ("bullet_list_close", "ordered_list_close"):
            out.append("</ul>" if kind == "bullet_list_close" else "</ol>")
        elif kind == "list_item_open":
            out.append(f'<li{attrs} style="{style.item}">')
        elif kind == "list_item_close":
            out.append("</li>")
        elif kind == "blockquote_open":
            out.append(f'<blockquote{attrs} style="{style.quote}">')
        elif kind == "blockquote_close":
            out.append("</blockquote>")
        elif kind == "hr":
            out.append('<hr style="border:0;border-top:1px solid #d8dee4;margin:16px 0">')
        elif kind in ("code_block", "fence"):
            out.append(f'<pre dir="ltr" style="white-space:pre-wrap;text-align:left">{escape(token.content)}</pre>')
        elif kind == "inline":
            out.append(_inline_html(token.children or [], language, style, images or {}, breaks))
    return "".join(out)


def _inline_html(
    children: list[Token],
    language: Language,
    style: Style,
    images: Mapping[str, ImageSource],
    breaks: bool = False,
) -> str:
    d = language.dir
    out: list[str] = []
    i = 0
    while i < len(children):
        token = children[i]
        kind = token.type
        if kind == "text":
            out.append(wrap_html(token.content, d))
        elif kind == "softbreak":
            out.append("<br>\n" if breaks else "\n")
        elif kind == "hardbreak":
            out.append("<br>")
        elif kind == "code_inline":
            out.append(f'<code dir="ltr">{escape(token.content)}</code>')
        elif kind in ("em_open", "strong_open"):
            out.append("<em>" if kind == "em_open" else "<strong>")
        elif kind in ("em_close", "strong_close"):
            out.append("</em>" if kind == "em_close" else "</strong>")
        elif kind == "link_open":
            close = _matching_close(children, i)
            inner = children[i + 1 : close]
            label = "".join(t.content for t in inner if t.type in ("text", "code_inline"))
            href = escape(_attr(token, "href"), quote=True)
            title = _attr(token, "title") or None
            title_attr = f' title="{_attribute(title)}"' if title else ""
            inner_html = _inline_html(inner, language, style, images, breaks)
            link = f'<a href="{href}"{title_attr} style="{style.link}">{inner_html}</a>'
            if is_foreign(label, d):
                # Outlook for Windows mishandles dir on <a>: the span goes around the link,
                # and the label inside is plain (already isolated by the span).
                other = "ltr" if d == "rtl" else "rtl"
                inner_plain = escape(label, quote=False)
                link = f'<span dir="{other}"><a href="{href}"{title_attr} style="{style.link}">{inner_plain}</a></span>'
            out.append(link)
            i = close
        elif kind == "image":
            alt = _attribute(token.content)
            found = images.get(_attr(token, "src"))
            if found is None:
                out.append(f"[{alt}]")
            else:
                out.append(_image(found, alt, style))
        i += 1
    return "".join(out)


# An image never wider than its column, its file blocked or its cid: part unresolved too: width
# 100% up to its own width (a broken image's box is sized like text, a percentage taking none
# of a table cell's minimum), the width and height attributes for Outlook, which uses those.
_SIZED_IMAGE = "display:block;width:100%;max-width:{width}px;height:auto;border:0"
_ALT_TEXT = "font-size:14px;line-height:1.4;color:#52606d;overflow-wrap:anywhere"  # shown in the image's place


def _image(found: ImageSource, alt: str, style: Style) -> str:
    src, width, height = escape(found[0], quote=True), found[1], found[2]
    if not width:
        return f'<img src="{src}" alt="{alt}" style="{style.image};{_ALT_TEXT}">'
    size = f' width="{width}"' + (f' height="{height}"' if height else "")
    return f'<img src="{src}" alt="{alt}"{size} style="{_SIZED_IMAGE.format(width=width)};{_ALT_TEXT}">'


def _attribute(value: str) -> str:
    """An attribute value, escaped and in ASCII: mjml-python writes a combining mark in an
    attribute as a Rust escape (عم\\u{651}ان), while a character reference comes out as the mark."""
    return escape(value, quote=True).encode("ascii", "xmlcharrefreplace").decode("ascii")


def _matching_close(children: list[Token], start: int) -> int:
    depth = 0
    for j in range(start, len(children)):
        if children[j].type == "link_open":
            depth += 1
        elif children[j].type == "link_close":
            depth -= 1
            if depth == 0:
                return j
    return len(children) - 1


def to_text(
    tokens: list[Token], language: Language, width: int = TEXT_WIDTH, digits: str = "western", *, breaks: bool = False
) -> str:
    """Readable plain text for `tokens`: wrapped paragraphs, lists indented under their section
    (ordered ones counting in `digits`), links as `label (url)`; with `breaks`, a line break
    inside a paragraph stays one."""
    d = language.dir
    blocks: list[str] = []
    prefix_stack: list[str] = []
    counters: list[int | None] = []
    pending_prefix: str | None = None
    for token in tokens:
        kind = token.type
        if kind == "bullet_list_open":
            counters.append(None)
        elif kind == "ordered_list_open":
            counters.append(int(token.attrGet("start") or 1))
        elif kind in ("bullet_list_close", "ordered_list_close"):
            counters.pop()
        elif kind == "list_item_open":
            if counters[-1] is None:
                marker = "• "
            else:
                marker = f"{format_number(counters[-1], digits)}. "
                counters[-1] += 1
            outer = LIST_INDENT if len(counters) == 1 else ""
            pending_prefix = outer + marker
            prefix_stack.append(outer + " " * len(marker))
        elif kind == "list_item_close":
            prefix_stack.pop()
        elif kind == "blockquote_open":
            prefix_stack.append("> ")
        elif kind == "blockquote_close":
            prefix_stack.pop()
        elif kind == "hr":
            blocks.append("-" * 20)
        elif kind in ("code_block", "fence"):
            blocks.append(token.content.rstrip("\n"))
        elif kind == "inline":
            text = keep_together(_inline_text(token.children or [], d, breaks))
            indent = "".join(prefix_stack)
            first = indent
            if pending_prefix is not None:
                first = "".join(prefix_stack[:-1]) + pending_prefix
                pending_prefix = None
            lines: list[str] = []
            for n, hard_line in enumerate(text.split("\n")):
                lines.extend(
                    textwrap.wrap(
                        hard_line,
                        width=width,
                        initial_indent=first if n == 0 else indent,
                        subsequent_indent=indent,
                        break_long_words=False,
                        break_on_hyphens=False,
                    )
                    or [indent.rstrip()]
                )
            blocks.append("\n".join(lines).replace(_UNBROKEN, " "))
    return "\n\n".join(blocks)


_UNBROKEN = "\x00"  # a space no line may break at, while the text is wrapped
_MARKED_RUN = re.compile(f"{LRM}([^{LRM}\\n]{{1,{NOWRAP_MAX}}}){LRM}")


def keep_together(text: str) -> str:
    """Short marked runs (codes, phone numbers in Arabic text) and short phone numbers in any text
    kept on one line: their spaces unbreakable for textwrap (to_text puts them back); a number in
    Arabic-Indic digits held left to right (`ltr_digits`)."""
    text = PHONE.sub(lambda m: _unbroken(ltr_digits(m.group())) if len(m.group()) <= NOWRAP_MAX else m.group(), text)
    return _MARKED_RUN.sub(lambda m: f"{LRM}{_unbroken(m.group(1))}{LRM}", text)


def _unbroken(run: str) -> str:
    return run.replace(" ", _UNBROKEN)


def _inline_text(children: list[Token], direction: str, breaks: bool = False) -> str:
    out: list[str] = []
    i = 0
    while i < len(children):
        token = children[i]
        kind = token.type
        if kind in ("text", "code_inline"):
            out.append(mark_text(token.content, direction))
        elif kind == "softbreak":
            out.append("\n" if breaks else " ")
        elif kind == "hardbreak":
            out.append("\n")
        elif kind == "link_open":
            close = _matching_close(children, i)
            label = _inline_text(children[i + 1 : close], direction, breaks)
            href = _attr(token, "href")
            target = href[len("mailto:") :] if href.startswith("mailto:") else href
            inner = "".join(t.content for t in children[i + 1 : close] if t.type in ("text", "code_inline"))
            if inner.strip() == target or _same_link(inner.strip(), target):
                out.append(isolate_link(inner.strip(), direction))  # a bare URL or address
            else:
                out.append(f"{label} {isolate_link(target, direction, opening='(', closing=')')}")
            i = close
        elif kind == "image":
            alt = token.content.strip()
            if alt:
                out.append(f"[{mark_text(alt, direction)}]")
        i += 1
    return "".join(out)


def _same_link(shown: str, target: str) -> bool:
    """A link that shows its own URL (`www.x.org` → https://www.x.org): the URL once, not twice."""
    return target.split("://", 1)[-1].rstrip("/") == shown.split("://", 1)[-1].rstrip("/")


def images(tokens: list[Token]) -> list[tuple[str, str, int | None]]:
    """Every image as (src, alt, line within the body)."""
    found = []
    for token in tokens:
        if token.type != "inline":
            continue
        line = token.map[0] if token.map else None
        for child in token.children or []:
            if child.type == "image":
                found.append((_attr(child, "src"), child.content, line))
    return found
