"""The public archive: issues published with their web pages (`publish`), and the static site
made of them, which `newsletter archive build` writes and `newsletter serve` answers (`site`)."""
