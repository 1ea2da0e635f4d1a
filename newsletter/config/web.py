"""newsletter.toml's `[archive]`: where the letters answer on the web, declared once
(newsletter.config.declare). `[dates]` and `organisation.bilingual` are declared with the
rest of the top level, in newsletter.config."""

from __future__ import annotations

from newsletter.config.declare import setting, table
from newsletter.config.toml import URL


@table("archive", "the letters on the web, answered by `newsletter serve`")
class ArchiveSettings:
    """Where the public archive answers (the "view in browser" links point there) and the
    organisation's sign-up page, which the archive pages offer instead of an unsubscribe link."""

    url: str | None = setting(URL(https_only=True), default=None, default_text='base_url + "/archive"',
                              example='"https://news.example.org/archive"',
                              help="where the archive answers; the default is what `serve` answers")  # fmt: skip
    signup_url: str | None = setting(
        URL(https_only=False), default=None, default_text='base_url + "/subscribe" with [signup]',
        example='"https://news.example.org/subscribe"', help="the sign-up page the archive's pages offer",
    )  # fmt: skip
