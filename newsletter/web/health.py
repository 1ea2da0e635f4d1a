"""GET /healthz: 200 while the database answers, 503 otherwise; nothing else is said (for the
proxy's and the service manager's health checks)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from newsletter.keys import HEALTH_ROUTE
from newsletter.web.pages import SECURITY_HEADERS
from newsletter.web.services import services_of


async def healthz(request: Request) -> Response:
    up = await run_in_threadpool(services_of(request).store.db.reachable)
    return PlainTextResponse(
        "ok\n" if up else "unavailable\n", status_code=200 if up else 503, headers=SECURITY_HEADERS
    )


ROUTES = [Route(HEALTH_ROUTE, healthz, methods=["GET", "HEAD"])]
