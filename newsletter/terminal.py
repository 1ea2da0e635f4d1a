"""Text shown on a terminal as it is: a stored name or address cannot move the cursor, retitle
the window, write to the clipboard or reorder the line it is printed on."""

from __future__ import annotations

import re

# C0, DEL and C1 (escape sequences start with ESC or CSI), the line and paragraph separators
# (a new line to some terminals), and the bidi embeddings, overrides and isolates (they reorder
# what follows them on the line). The marks (U+200E, U+200F, U+061C) and joiners stay: Arabic
# and mixed text use them and they reorder nothing.
CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """`text` with every control character written as an escape (`\\x1b`, `\\u202e`); all else,
    Arabic included, unchanged. For one field: a tab or a new line in it is escaped too."""
    return CONTROLS.sub(_escaped, text)
