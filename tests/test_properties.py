"""Properties that hold for any input: Markdown never yields markup of its own making, and an
unsubscribe token is read back only in the one spelling `make` writes. (Header values:
tests/test_headers.py; CSV rows: tests/test_spreadsheets.py.)"""

from __future__ import annotations

import os
from html.parser import HTMLParser

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.languages import LANGUAGES
from newsletter.letter import markdown
from newsletter.keys import TokenSigner

settings.register_profile("properties-fast", max_examples=300, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("properties-full", max_examples=2000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
PROFILE = settings.get_profile("properties-full" if os.environ.get("HYPOTHESIS_PROFILE") == "full" else "properties-fast")

# What to_html writes itself; anything else would have come from the editor's text.
OUR_TAGS = {"p", "h2", "h3", "h4", "ul", "ol", "li", "a", "em", "strong", "code", "pre", "blockquote", "hr", "br", "span", "img"}
MARKDOWNISH = st.text(st.sampled_from("<>&\"'`*_[]()!#-+=/\\:;.\n abcXYZ0123 تحديث\u202e\x00"), max_size=200)


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


@PROFILE
@given(text=st.one_of(MARKDOWNISH, st.text(max_size=200)), code=st.sampled_from(["ar", "en"]))
def test_markdown_yields_only_our_own_markup(text, code):
    language = LANGUAGES[code]
    tokens = markdown.parse(text)
    html = markdown.to_html(tokens, language)
    parser = Tags()
    parser.feed(html)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag in OUR_TAGS, (tag, text)
        assert not any(name.startswith("on") for name in attrs), (attrs, text)
        if tag == "a":
            href = attrs.get("href", "")
            assert not href.lower().lstrip().startswith(("javascript:", "vbscript:", "data:")), (href, text)
    markdown.to_text(tokens, language)  # never raises


KEYS = st.binary(min_size=16, max_size=16).map(bytes.hex)


@PROFILE
@given(key=KEYS, campaign=st.integers(0, 2**32 - 1))
def test_a_token_reads_back_exactly(key, campaign):
    signer = TokenSigner(b"s" * 16 + b"ecret-key-for-the-properties")
    token = signer.make(key, campaign)
    assert signer.read(token) == (key, campaign)
    assert signer.read(token + "=") is None and signer.read(" " + token) is None
    assert token.upper() == token or signer.read(token.upper()) is None
    assert TokenSigner(b"another-key-0123456789-abcdefghij").read(token) is None


@PROFILE
@given(key=KEYS, campaign=st.integers(0, 2**32 - 1), position=st.integers(0, 49), replacement=st.characters())
def test_no_other_spelling_of_a_token_is_read(key, campaign, position, replacement):
    signer = TokenSigner(b"s" * 16 + b"ecret-key-for-the-properties")
    token = signer.make(key, campaign)
    changed = token[:position] + replacement + token[position + 1 :]
    if changed != token:
        assert signer.read(changed) is None


@PROFILE
@given(text=st.text(max_size=120))
def test_any_string_is_not_a_token(text):
    assert TokenSigner(b"s" * 16 + b"ecret-key-for-the-properties").read(text) is None
