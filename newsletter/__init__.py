"""Bilingual email newsletters from Markdown issue files."""

__version__ = "0.1.0"
