"""What every public handler shares: a body read up to its limit, a form's fields, and the
answers (a page, 404, 413), each with the security headers of newsletter.web.pages.

Bodies are counted as they arrive and refused past their limit, never read further.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from newsletter.web.pages import SECURITY_HEADERS, Block, Pages

MAX_FIELDS = 20


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it passes `limit` bytes: counted chunk by chunk, never buffered past it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def form_fields(body: bytes) -> dict[str, str]:
    """An urlencoded body's fields (the first of each name); anything else reads as no fields."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return {}
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def html_page(
    pages: Pages, blocks: list[Block], *, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return html_answer(pages.html(blocks), status=status, headers=headers)


def html_answer(html: str, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def not_found() -> Response:
    return PlainTextResponse("Not found\n", status_code=404, headers=SECURITY_HEADERS)


def too_large() -> Response:
    return PlainTextResponse("Too large\n", status_code=413, headers=SECURITY_HEADERS)
