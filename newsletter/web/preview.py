"""`newsletter preview`: the editor's page over a live build (newsletter.editor.live).

The page polls `/state` every 300 ms and swaps in the new build (frames, plain text, inbox
lines, sizes, checks) without a reload. A build that fails is shown on the page in place of
the email, and the server keeps running until the files are fixed. Everything is served
from here (the page is templates/preview*.html.j2, its style and script static/): the page
loads nothing from the network, and every value is escaped (Jinja2 autoescape).

- GET /                       the editor's page
- GET /state?since=N          {"server", "generation"}; the new sections when N is not current
- GET /preview.js             the page's script (no inline script: the page has a strict CSP)
- GET /variant/<name>.html    a variant personalised with preview values (the frames' src)
- GET /variant/<name>.txt     its plain-text part
- GET /variant/<name>.eml     the sample message, as an attachment
- GET /variant/<file>.jpg|png the images, which the variants name by file, as the build folder does
- GET /checks[?spamassassin=1] the checks of the current build; SpamAssassin only on demand
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from newsletter.editor.checks import run_checks
from newsletter.editor.inbox import sent_lines, shortened_advice
from newsletter.editor.live import WATCH_INTERVAL, Preview, Snapshot, frame_hashes, issue_watch_paths, variants_of
from newsletter.editor.results import ERROR, OK
from newsletter.errors import NewsletterError
from newsletter.letter.assemble import sender_name
from newsletter.letter.render import SIZE_WARNING_BYTES, Build, build_issue

HERE = Path(__file__).resolve().parent
DEFAULT_PORT = 8008
WIDTHS = (("desktop", 600), ("phone", 375))

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; "
    "frame-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# The email itself: its own inline styles and images, nothing remote (those images show their alt text).
VARIANT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "eml": "message/rfc822",
    "jpg": "image/jpeg",
    "png": "image/png",
}


class PreviewError(NewsletterError):
    exit_code = 1


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(HERE / "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["kb"] = lambda size: f"{size / 1024:.1f} KB"
STYLE = Markup((HERE / "static" / "preview.css").read_text(encoding="utf-8"))
SCRIPT = (HERE / "static" / "preview.js").read_bytes()


def present(snap: Snapshot, last_good: Snapshot | None, preview: Preview) -> None:
    """What the page shows of a snapshot: its sections, and the state the page polls for."""
    snap.sections = render_sections(snap, last_good, preview)
    snap.state_json = json.dumps(
        {
            "server": preview.server_id,
            "generation": snap.generation,
            "ok": snap.ok,
            "variants": variants_of(last_good),
            "frames": frame_hashes(last_good),
            "sections": snap.sections,
        },
        ensure_ascii=False,
    ).encode("utf-8")


def render_sections(snap: Snapshot, last_good: Snapshot | None, preview: Preview) -> dict[str, str]:
    """Element id → inner HTML of every part of the page that changes with a build."""
    module: Any = _env.get_template("preview_fragments.html.j2").make_module(
        {"clock": time.strftime("%H:%M:%S", time.localtime(snap.built_at)), "size_warning": SIZE_WARNING_BYTES}
    )
    shown = snap if snap.ok else (last_good or snap)
    sections = {
        "status": str(module.status(snap, preview)),
        "problems": str(module.problems(snap)),
        "inbox": str(module.inbox(inbox_rows(shown.build, variants_of(shown)))),
        "checks": str(module.checks(snap)),
    }
    for name in variants_of(shown):
        sections[f"vhead-{name}"] = str(module.vhead(shown, name))
        text = shown.files.get(f"{name}.txt", b"").decode("utf-8", "replace")
        sections[f"text-{name}"] = str(escape(text))
    return sections


def inbox_rows(build: Build | None, names: list[str]) -> list[dict[str, Any]]:
    """What an inbox shows of each variant, as it is sent: From name, subject, preheader, date,
    and a warning for what had to be shortened (the page shows them near its top)."""
    if build is None:
        return []
    rows = []
    for name, line in sent_lines(build, names).items():
        variant = build.variants[name]
        rows.append(
            {
                "name": name,
                "lang": variant.lang,
                "dir": variant.dir,
                "sender": sender_name(build.config, variant.languages),
                "subject": line.subject,
                "preheader": line.preheader,
                "date": build.issue.date.strftime("%d %b"),
                "warnings": [shortened_advice(key, long) for key, long in line.shortened.items()],
            }
        )
    return rows


# --- the app: handlers over `app.state.preview` ---------------------------------------------------


def preview_of(request: Request) -> Preview:
    return request.app.state.preview


def shown_snapshot(preview: Preview) -> Snapshot:
    """The build the page shows: the current one, or the last good one while the current fails."""
    return preview.current if preview.current.ok else (preview.last_good or preview.current)


async def page(request: Request) -> Response:
    preview = preview_of(request)
    snap, shown = preview.current, shown_snapshot(preview)
    html = _env.get_template("preview.html.j2").render(
        title=preview.title,
        style=STYLE,
        snap=snap,
        preview=preview,
        widths=WIDTHS,
        variants=variants_of(shown),
        hashes=frame_hashes(shown),
        sections={k: Markup(v) for k, v in snap.sections.items()},
    )
    return HTMLResponse(html, headers={**NO_STORE, "Content-Security-Policy": PAGE_CSP})


async def state(request: Request) -> Response:
    preview = preview_of(request)
    snap = preview.current
    if request.query_params.get("since") == str(snap.generation):
        return JSONResponse({"server": preview.server_id, "generation": snap.generation}, headers=NO_STORE)
    return Response(snap.state_json, media_type="application/json", headers=NO_STORE)


async def script(request: Request) -> Response:
    return Response(SCRIPT, media_type="text/javascript; charset=utf-8", headers=NO_STORE)


def attachment_name(slug: str, name: str) -> str:
    """`<slug>-<variant>.eml`, every character that is not plain ASCII in a file name made `_`."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in f"{slug}-{name}.eml")


async def variant(request: Request) -> Response:
    name, ext = request.path_params["name"], request.path_params["ext"]
    snap = shown_snapshot(preview_of(request))
    content = snap.files.get(f"{name}.{ext}") if ext in MEDIA_TYPES else None
    if content is None:
        return PlainTextResponse(f"no variant {name}.{ext} in the current build\n", status_code=404, headers=NO_STORE)
    headers = dict(NO_STORE)
    if ext == "html":
        headers["Content-Security-Policy"] = VARIANT_CSP
    if ext == "eml":
        slug = snap.build.issue.slug if snap.build else "issue"
        headers["Content-Disposition"] = f'attachment; filename="{attachment_name(slug, name)}"'
    return Response(content, media_type=MEDIA_TYPES[ext], headers=headers)


async def checks(request: Request) -> Response:
    preview = preview_of(request)
    snap = preview.current
    spamassassin = request.query_params.get("spamassassin") in ("1", "true", "yes")
    results, unavailable, started = list(snap.checks), None, time.perf_counter()
    if snap.build is not None and spamassassin:
        try:
            results = await run_in_threadpool(run_checks, snap.build, spamassassin=True)
        except NewsletterError as exc:  # SpamAssassin missing or unreadable: show the quick checks
            unavailable = str(exc)
    html = _env.get_template("preview_checks.html.j2").render(
        title=preview.title,
        style=STYLE,
        snap=snap,
        results=results,
        spamassassin=spamassassin,
        unavailable=unavailable,
        seconds=time.perf_counter() - started,
    )
    return HTMLResponse(html, headers={**NO_STORE, "Content-Security-Policy": PAGE_CSP})


@contextlib.asynccontextmanager
async def lifespan(app: Starlette):
    """The watcher thread, from the app's startup to its shutdown (`app.state.watch` allowing)."""
    preview: Preview = app.state.preview
    if app.state.watch:
        preview.start()
    try:
        yield
    finally:
        preview.stop()


ROUTES = [
    Route("/", page, methods=["GET", "HEAD"]),
    Route("/state", state, methods=["GET"]),
    Route("/preview.js", script, methods=["GET"]),
    Route("/variant/{name}.{ext}", variant, methods=["GET", "HEAD"]),
    Route("/checks", checks, methods=["GET"]),
]


def create_preview_app(
    builder: Callable[[], Build],
    watch_paths: Callable[[], list[Path]],
    *,
    interval: float = WATCH_INTERVAL,
    on_rebuild: Callable[[Snapshot], None] | None = None,
    title: str = "newsletter",
    watch: bool = True,
) -> Starlette:
    """The preview server: builds once now, then (while it runs) again whenever a watched file changes.

    `app.state.preview` is the `Preview`; the watcher thread runs between the app's startup and
    shutdown (not under a plain TestClient, which does not run the lifespan unless entered).
    """
    app = Starlette(routes=ROUTES, lifespan=lifespan)
    app.state.preview = Preview(
        builder, watch_paths, interval=interval, on_rebuild=on_rebuild, present=present, title=title
    )
    app.state.watch = watch
    return app


# --- `newsletter preview` ------------------------------------------------------------------------


class IssueBuilder:
    """Builds ISSUE_DIR, and remembers where its templates are, which the watcher watches too."""

    def __init__(self, issue_dir: Path, config_path: Path | None):
        self.issue_dir = issue_dir
        self.config_path = config_path
        self.templates: Path | None = None

    def __call__(self) -> Build:
        build = build_issue(self.issue_dir, self.config_path)
        self.templates = build.config.templates
        return build


class RebuildReport:
    """One line on stderr per rebuild: its time, and the checks that failed or the build's problems."""

    def __init__(self) -> None:
        self.generation = 0

    def __call__(self, snap: Snapshot) -> None:
        if snap.generation == self.generation:
            print(f"preview: rebuilt in {snap.seconds * 1000:.0f} ms, nothing changed", file=sys.stderr, flush=True)
            return
        self.generation = snap.generation
        print(self.line(snap), file=sys.stderr, flush=True)

    @staticmethod
    def line(snap: Snapshot) -> str:
        if snap.ok:
            line = f"preview: build {snap.generation} in {snap.seconds * 1000:.0f} ms"
            failed = sum(1 for r in snap.checks if r.level == ERROR)
            warned = sum(1 for r in snap.checks if r.level not in (OK, ERROR))
            if failed or warned:
                line += f" ({failed} checks failed, {warned} warnings)"
            return line
        if snap.problems:
            count = len(snap.problems)
            line = f"preview: the build failed with {count} problem{'s' if count != 1 else ''}"
            return line + "".join(f"\n  {p}" for p in snap.problems)
        return f"preview: the build crashed: {snap.error}"


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a PreviewError that says what to do when the address is taken."""
    # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto
    # says TCP, and accepted sockets inherit it; with proto 0 every poll waits ~40 ms for an ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PreviewError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; try another --port (0 picks a free one)"
        ) from None
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    return sock


def open_soon(url: str) -> None:
    """The page in the user's browser, once the server has had a moment to start."""
    import webbrowser

    opener = threading.Timer(0.3, webbrowser.open, args=(url,))
    opener.daemon = True
    opener.start()


def serve(
    issue_dir: Path,
    *,
    config_path: Path | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    open_browser: bool = False,
) -> None:
    """Build, watch and serve ISSUE_DIR until interrupted; prints `Preview: URL` once listening."""
    import uvicorn

    issue_dir = Path(issue_dir)
    builder = IssueBuilder(issue_dir, config_path)
    sock = bind(host, port)
    app = create_preview_app(
        builder,
        issue_watch_paths(issue_dir, config_path, lambda: builder.templates),
        on_rebuild=RebuildReport(),
        title=issue_dir.resolve().name,
    )
    url = f"http://{host}:{sock.getsockname()[1]}/"
    print(f"Preview: {url}", flush=True)
    print(f"preview: watching {issue_dir} (Ctrl-C stops)", file=sys.stderr, flush=True)
    if open_browser:
        open_soon(url)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", server_header=False)
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
