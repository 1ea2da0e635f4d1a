"""/archive/ in `newsletter serve`: the same files `newsletter archive build` writes (newsletter.
archive.site), answered from the store through the services' `ArchiveFiles` (the indexes and feeds
made again only when an issue is published or its pages are replaced)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from newsletter.keys import ARCHIVE_ROUTE
from newsletter.web.services import services_of

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=300",
}


async def archive_file(request: Request) -> Response:
    found = await run_in_threadpool(services_of(request).archive.find, request.path_params["path"])
    if found is None:
        return PlainTextResponse("Not found\n", status_code=404, headers=HEADERS)
    media_type, data = found
    return Response(data, media_type=media_type, headers=HEADERS)


ROUTES = [Mount(ARCHIVE_ROUTE, routes=[Route("/{path:path}", archive_file, methods=["GET", "HEAD"])])]
