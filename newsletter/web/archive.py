"""/archive/ in `newsletter serve`: the same files `newsletter archive build` writes (newsletter.
archive.site), answered from the store. The indexes and feeds are made again only when an issue
is published or its pages are replaced; an issue's pages are read as they were published."""

from __future__ import annotations

import threading

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from newsletter.archive.site import Files, generated
from newsletter.config import Config
from newsletter.store import Store

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=300",
}


def archive_app(config: Config, store: Store) -> Starlette:
    lock = threading.Lock()
    cache: dict[str, object] = {"version": None, "files": {}}

    def indexes() -> Files:
        version = store.archive_version()
        with lock:
            if cache["version"] != version:
                cache["files"] = generated(config, store.publications())
                cache["version"] = version
            return cache["files"]  # type: ignore[return-value]

    def find(path: str) -> tuple[str, bytes] | None:
        if path in ("", "/"):
            path = "index.html"
        if "/" not in path:
            return indexes().get(path)
        slug, _, name = path.partition("/")
        if not name or "/" in name:
            return None
        return store.publication_file(slug, name)

    async def page(request: Request) -> Response:
        found = await run_in_threadpool(find, request.path_params["path"])
        if found is None:
            return PlainTextResponse("Not found\n", status_code=404, headers=HEADERS)
        media_type, data = found
        return Response(data, media_type=media_type, headers=HEADERS)

    return Starlette(routes=[Route("/{path:path}", page, methods=["GET", "HEAD"])])
