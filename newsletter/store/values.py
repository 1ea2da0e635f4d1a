"""How a person's attributes (the other columns of their spreadsheet) are kept: one JSON object of text."""

from __future__ import annotations

import json


def load_attributes(stored: str | None) -> dict[str, str]:
    if not stored:
        return {}
    try:
        value = json.loads(stored)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def dump_attributes(attributes: dict[str, str]) -> str | None:
    return json.dumps(attributes, ensure_ascii=False, sort_keys=True) if attributes else None
