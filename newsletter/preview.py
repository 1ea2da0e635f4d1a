"""`newsletter preview`: an editor's live preview of an issue, rebuilt whenever a file changes.

A dev server in the MkDocs manner: it is given a *builder* (a callable returning a `Build`)
and the paths to watch. A watcher thread polls the modification times and the set of files
every 200 ms and rebuilds on any change; the page polls `/state` every 300 ms and swaps in
the new build (frames, plain text, inbox lines, sizes, checks) without a reload.

A build that fails (BadInput) or crashes is shown on the page in place of the email, and
the server keeps running until the files are fixed. Everything is served from here: the
page loads nothing from the network, and every value is escaped (Jinja2 autoescape).

- GET /                       the editor's page
- GET /state?since=N          {"server", "generation"}; the new sections when N is not current
- GET /preview.js             the page's script (no inline script: the page has a strict CSP)
- GET /variant/<name>.html    a variant personalised with preview values (the frames' src)
- GET /variant/<name>.txt     its plain-text part
- GET /variant/<name>.eml     the sample message, as an attachment
- GET /checks[?spamassassin=1] the checks of the current build; SpamAssassin only on demand
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from newsletter.build import SIZE_WARNING_BYTES, Build, build_files, build_issue
from newsletter.checks import ERROR, OK, CheckResult, run_checks
from newsletter.config import CONFIG_NAME, find_config
from newsletter.errors import BadInput, NewsletterError

DEFAULT_PORT = 8008
WATCH_INTERVAL = 0.2  # seconds between two looks at the files
WIDTHS = (("desktop", 600), ("phone", 375))

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; "
    "frame-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# The email itself: its own inline styles, nothing fetched (remote images show their alt text).
VARIANT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
MEDIA_TYPES = {"html": "text/html; charset=utf-8", "txt": "text/plain; charset=utf-8", "eml": "message/rfc822"}


class PreviewError(NewsletterError):
    exit_code = 1


# --- one build attempt --------------------------------------------------------------------------


@dataclass
class Snapshot:
    """The outcome of one rebuild: a build with its files and checks, or what went wrong."""

    generation: int
    built_at: float
    seconds: float
    build: Build | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    checks_error: str | None = None
    problems: list[str] = field(default_factory=list)  # str(Problem): file:line:column: message
    error: str | None = None  # an unexpected exception: "Type: message"
    trace: str | None = None
    digest: str = ""
    sections: dict[str, str] = field(default_factory=dict)  # element id → HTML, for the page
    state_json: bytes = b""

    @property
    def ok(self) -> bool:
        return self.build is not None and not self.problems and self.error is None


def _attempt(builder: Callable[[], Build]) -> Snapshot:
    started = time.perf_counter()
    snap = Snapshot(generation=0, built_at=time.time(), seconds=0.0)
    try:
        build = builder()
        files = build_files(build)
    except BadInput as exc:
        snap.problems = [str(p) for p in exc.problems] or [str(exc)]
    except Exception as exc:  # noqa: BLE001 - shown on the page; the server keeps running
        snap.error = f"{type(exc).__name__}: {exc}"
        snap.trace = "".join(traceback.format_exception(exc))
    else:
        snap.build, snap.files = build, files
        try:
            snap.checks = run_checks(build, spamassassin=False)
        except Exception as exc:  # noqa: BLE001
            snap.checks_error = f"{type(exc).__name__}: {exc}"
    snap.seconds = time.perf_counter() - started
    digest = hashlib.sha256()
    for name in sorted(snap.files):
        if not name.endswith(".eml"):  # the sample message carries a fresh Date and Message-ID
            digest.update(name.encode() + b"\0" + snap.files[name] + b"\0")
    for line in [*snap.problems, snap.error or "", snap.checks_error or "", *map(str, snap.checks)]:
        digest.update(line.encode() + b"\0")
    snap.digest = digest.hexdigest()
    return snap


# --- the watcher ----------------------------------------------------------------------------------

_IGNORED_SUFFIXES = ("~", ".swp", ".swx", ".swo", ".tmp")


def _ignored(name: str) -> bool:
    """Editor droppings: hidden files, backups, swap files, Emacs lock and autosave files."""
    return name.startswith((".", "#")) or name.endswith(_IGNORED_SUFFIXES) or name == "4913"


def scan(paths: list[Path]) -> dict[str, tuple[int, int, int] | None]:
    """path → (mtime_ns, size, inode) of every file under `paths`; None for a path that is missing."""
    seen: dict[str, tuple[int, int, int] | None] = {}

    def record(path: str) -> None:
        try:
            st = os.stat(path)
        except OSError:
            return
        seen[path] = (st.st_mtime_ns, st.st_size, st.st_ino)

    for root in paths:
        root_s = os.fspath(root)
        if os.path.isdir(root_s):
            for folder, dirs, names in os.walk(root_s):
                dirs[:] = sorted(d for d in dirs if not _ignored(d) and d != "__pycache__")
                for name in names:
                    if not _ignored(name):
                        record(os.path.join(folder, name))
        elif os.path.exists(root_s):
            record(root_s)
        else:
            seen[root_s] = None  # its creation is a change too
    return seen


class Preview:
    """Holds the current build and rebuilds it when the watched files change."""

    def __init__(self, builder: Callable[[], Build], watch_paths: Callable[[], list[Path]], *,
                 interval: float = WATCH_INTERVAL, on_rebuild: Callable[[Snapshot], None] | None = None,
                 title: str = "newsletter"):
        self.builder = builder
        self.watch_paths = watch_paths
        self.interval = interval
        self.on_rebuild = on_rebuild
        self.title = title
        self.server_id = secrets.token_hex(8)
        self.builds = 0
        self._lock = threading.Lock()  # one rebuild at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._paths: list[Path] = []
        self._seen = self._scan()
        self.current: Snapshot = Snapshot(generation=0, built_at=time.time(), seconds=0.0)
        self.last_good: Snapshot | None = None
        self.rebuild()
        paths = self._paths
        after = self._scan()
        if self._paths != paths:  # the first build told where the templates are: watch them from now
            self._seen = after

    def _scan(self) -> dict:
        try:
            self._paths = [Path(p) for p in self.watch_paths()]
            return scan(self._paths)
        except Exception as exc:  # noqa: BLE001 - a broken watch list must not stop the watcher
            return {"!error": str(exc)}

    def rebuild(self) -> Snapshot:
        """Build now; the page sees a new generation only when the result differs."""
        with self._lock:
            snap = _attempt(self.builder)
            self.builds += 1
            previous = self.current
            changed = snap.digest != previous.digest or previous.generation == 0
            snap.generation = previous.generation + 1 if changed else previous.generation
            last_good = snap if snap.ok else self.last_good
            snap.sections = render_sections(snap, last_good, self)
            snap.state_json = json.dumps({
                "server": self.server_id, "generation": snap.generation, "ok": snap.ok,
                "variants": _variants(last_good),
                "frames": frame_hashes(last_good),
                "sections": snap.sections,
            }, ensure_ascii=False).encode("utf-8")
            self.last_good = last_good
            self.current = snap
        if self.on_rebuild:
            self.on_rebuild(snap)
        return snap

    def check_once(self) -> bool:
        """Rebuild if any watched file changed since the last look; True when it did."""
        now = self._scan()
        if now == self._seen:
            return False
        self._seen = now  # taken before building: a save during the build is caught next time
        self.rebuild()
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check_once()
            except Exception:  # noqa: BLE001 - keep watching whatever happens
                traceback.print_exc()

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="preview-watcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def _variants(snap: Snapshot | None) -> list[str]:
    return list(snap.build.variants) if snap is not None and snap.build is not None else []


def frame_hashes(snap: Snapshot | None) -> dict[str, str]:
    """Variant → a short hash of its HTML: the page reloads only the frames whose email changed."""
    return {name: hashlib.sha256(snap.files[f"{name}.html"]).hexdigest()[:16] for name in _variants(snap)}


# --- the page ------------------------------------------------------------------------------------

_env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _kb(size: int) -> str:
    return f"{size / 1024:.1f} KB"


_env.filters["kb"] = _kb

FRAGMENTS = _env.from_string("""
{% macro status(snap, preview) %}
{% if snap.ok %}<span class="badge ok">built</span>{% else %}<span class="badge error">build failed</span>{% endif %}
 build {{ snap.generation }} · {{ "%.0f"|format(snap.seconds * 1000) }} ms · {{ clock }}
 · {{ preview.builds }} rebuild{{ "s" if preview.builds != 1 }}
{% endmacro %}

{% macro problems(snap) %}
{% if snap.problems %}
<h2>The issue does not build: {{ snap.problems|length }} problem{{ "s" if snap.problems|length != 1 }}</h2>
<p>Fix the files and save: the preview comes back by itself.</p>
<ul class="problems">{% for p in snap.problems %}<li><code>{{ p }}</code></li>{% endfor %}</ul>
{% elif snap.error %}
<h2>The build crashed</h2>
<p class="crash"><code>{{ snap.error }}</code></p>
<details><summary>Traceback</summary><pre dir="ltr">{{ snap.trace }}</pre></details>
<p>The preview server keeps running and retries on the next save.</p>
{% endif %}
{% endmacro %}

{% macro inbox(snap) %}
{% if snap.build %}
{% set build = snap.build %}
<div class="inbox-desktop">
<h3>Inbox, desktop</h3>
{% for code, letter in build.letters.items() %}
<div class="inbox-row" lang="{{ code }}" dir="{{ letter.language.dir }}" data-lang="{{ code }}">
  <span class="sender">{{ letter.organisation }}</span>
  <span class="line"><b class="subject">{{ letter.subject }}</b><span class="preheader"> – {{ letter.preheader }}</span></span>
  <span class="date" dir="ltr">{{ letter.date.strftime("%d %b") }}</span>
</div>
{% endfor %}
</div>
<div class="inbox-phone">
<h3>Inbox, phone</h3>
{% for code, letter in build.letters.items() %}
<div class="inbox-card" lang="{{ code }}" dir="{{ letter.language.dir }}">
  <div class="one"><span class="sender">{{ letter.organisation }}</span><span class="date" dir="ltr">{{ letter.date.strftime("%d %b") }}</span></div>
  <div class="one subject">{{ letter.subject }}</div>
  <div class="one preheader">{{ letter.preheader }}</div>
</div>
{% endfor %}
</div>
{% endif %}
{% endmacro %}

{% macro vhead(snap, name) %}
{% if snap.build and name in snap.build.variants %}
{% set html = snap.files[name ~ ".html"]|length %}
{{ name }} <small class="{{ 'warn' if html > size_warning }}">HTML {{ html|kb }}</small>
<small>· text {{ snap.files[name ~ ".txt"]|length|kb }} · eml {{ snap.files[name ~ ".eml"]|length|kb }}</small>
<span class="links"><a href="/variant/{{ name }}.html" target="_blank" rel="noopener">open</a>
 <a href="/variant/{{ name }}.txt" target="_blank" rel="noopener">text</a>
 <a href="/variant/{{ name }}.eml" download>download {{ name }}.eml</a></span>
{% else %}{{ name }}{% endif %}
{% endmacro %}

{% macro checks(snap) %}
<h2>Checks</h2>
{% if snap.checks_error %}<p class="crash">The checks crashed: <code>{{ snap.checks_error }}</code></p>{% endif %}
{% if snap.build %}
{{ check_table(snap.checks) }}
<p><a href="/checks?spamassassin=1" target="_blank" rel="noopener" id="spam-link">Run every check with SpamAssassin</a>
 (slow, several seconds: it runs only on demand; the results open in a new tab)</p>
{% else %}<p>No checks: the issue does not build.</p>{% endif %}
{% endmacro %}

{% macro check_table(results) %}
{% set errors = results|selectattr("level", "equalto", "error")|list|length %}
{% set oks = results|selectattr("level", "equalto", "ok")|list|length %}
<p class="summary">{{ errors }} failed, {{ results|length - errors - oks }} warnings, {{ oks }} ok</p>
<table class="checks">
<thead><tr><th>level</th><th>check</th><th>variant</th><th>where</th><th>message</th></tr></thead>
<tbody>
{% for r in results %}
<tr class="{{ r.level }}"><td><span class="badge {{ r.level }}">{{ r.level }}</span></td><td>{{ r.check }}</td>
<td>{{ r.variant or "" }}</td><td>{{ r.where or "" }}</td><td dir="auto">{{ r.message }}</td></tr>
{% endfor %}
</tbody>
</table>
{% endmacro %}
""")

STYLE = """
:root { color-scheme: light; --line: #d9dde3; --muted: #5f6b7a; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", Arial, sans-serif; background: #eef0f3; color: #1d2530; }
header { position: sticky; top: 0; z-index: 2; display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap;
         padding: 10px 20px; background: #1d2530; color: #fff; }
header h1 { font-size: 16px; margin: 0; }
header a { color: #9fd0ff; }
#status { color: #cfd6df; }
#offline { display: none; color: #ffb4a8; font-weight: 600; }
body.offline #offline { display: inline; }
main { padding: 16px 20px 40px; }
section { margin-bottom: 24px; }
h2 { font-size: 15px; margin: 0 0 8px; }
h3 { font-size: 13px; margin: 0 0 6px; color: var(--muted); font-weight: 600; }
.card, #problems, #inbox > div, .variant, #checks { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; }
#problems { display: none; border-color: #d93f2b; background: #fff6f4; }
body.failed #problems { display: block; }
body.failed #inbox, body.failed #email { display: none; }
.problems { padding-left: 20px; } .problems li { margin: 4px 0; }
code { font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
.crash code { color: #b3261e; }
#inbox { display: flex; gap: 16px; flex-wrap: wrap; align-items: flex-start; }
.inbox-desktop { width: 760px; max-width: 100%; }
.inbox-phone { width: 375px; }
.inbox-row { display: flex; gap: 12px; align-items: baseline; padding: 8px 6px; border-top: 1px solid #eceff2; white-space: nowrap; }
.inbox-row .sender { flex: 0 0 170px; overflow: hidden; text-overflow: ellipsis; font-weight: 600; }
.inbox-row .line { flex: 1 1 auto; min-width: 0; overflow: hidden; text-overflow: ellipsis; }
.inbox-row .date, .inbox-card .date { flex: none; color: var(--muted); font-size: 12px; }
.preheader { color: #6b7683; font-weight: normal; }
.inbox-card { padding: 8px 6px; border-top: 1px solid #eceff2; }
.inbox-card .one { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.inbox-card .one:first-child { display: flex; justify-content: space-between; gap: 8px; }
.inbox-card .sender { font-weight: 600; overflow: hidden; text-overflow: ellipsis; }
.inbox-card .subject { font-weight: 700; }
.variant { margin-bottom: 16px; }
.variant h2 small { font-weight: normal; color: var(--muted); }
.variant h2 small.warn { color: #b3261e; font-weight: 600; }
.variant h2 .links { font-weight: normal; margin-inline-start: 12px; }
.variant h2 .links a { margin-inline-end: 10px; }
.frames { display: flex; gap: 20px; flex-wrap: wrap; align-items: flex-start; }
figure { margin: 0; }
figcaption { font-size: 12px; color: var(--muted); margin-bottom: 4px; }
.frame { background: #fff; border: 1px solid #c7ccd3; overflow: hidden; }
.phone .frame { border: 10px solid #1d2530; border-radius: 24px; }
iframe.email { display: block; border: 0; height: 700px; background: #fff; }
figure.text { flex: 1 1 320px; min-width: 280px; }
pre.text { margin: 0; padding: 10px; max-height: 900px; overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere;
           background: #fbfbfc; border: 1px solid var(--line); font: 12.5px/1.5 ui-monospace, "DejaVu Sans Mono", monospace; }
table.checks { border-collapse: collapse; width: 100%; }
table.checks th, table.checks td { text-align: left; padding: 4px 8px; border-top: 1px solid #eceff2; vertical-align: top; }
.badge { display: inline-block; padding: 0 6px; border-radius: 4px; font-size: 12px; font-weight: 600; background: #e3e7ec; color: #1d2530; }
.badge.ok { background: #dff3e4; color: #1e6b34; }
.badge.warning { background: #fff1d0; color: #8a5a00; }
.badge.error { background: #fbe0dc; color: #b3261e; }
.summary { margin-top: 0; font-weight: 600; }
"""

PAGE = _env.from_string("""<!doctype html>
<html lang="en" dir="ltr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Preview · {{ title }}</title>
<style>{{ style }}</style>
</head>
<body class="{{ '' if snap.ok else 'failed' }}" data-server="{{ preview.server_id }}" data-generation="{{ snap.generation }}"
      data-variants="{{ variants|join(',') }}">
<header>
  <h1>Preview · {{ title }}</h1>
  <span id="status">{{ sections.status }}</span>
  <span id="offline">the preview server is not answering</span>
  <a href="#checks">checks</a>
</header>
<main>
<section id="problems" role="alert">{{ sections.problems }}</section>
<section id="inbox">{{ sections.inbox }}</section>
<section id="email">
{% for name in variants %}
<article class="variant" id="variant-{{ name }}">
  <h2 id="vhead-{{ name }}">{{ sections["vhead-" ~ name] }}</h2>
  <div class="frames">
  {% for label, width in widths %}
    <figure class="{{ label }}">
      <figcaption>{{ label }} · {{ width }} px</figcaption>
      <div class="frame"><iframe class="email" title="{{ name }}, {{ label }} ({{ width }} px)" data-variant="{{ name }}" data-width="{{ width }}"
        width="{{ width }}" style="width:{{ width }}px" sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"
        data-hash="{{ hashes[name] }}" src="/variant/{{ name }}.html?h={{ hashes[name] }}"></iframe></div>
    </figure>
  {% endfor %}
    <figure class="text">
      <figcaption>plain-text part</figcaption>
      <pre class="text" dir="auto" id="text-{{ name }}">{{ sections["text-" ~ name] }}</pre>
    </figure>
  </div>
</article>
{% endfor %}
</section>
<section id="checks">{{ sections.checks }}</section>
</main>
<script src="/preview.js"></script>
</body>
</html>
""")

CHECKS_PAGE = _env.from_string("""<!doctype html>
<html lang="en" dir="ltr">
<head><meta charset="utf-8"><title>Checks · {{ title }}</title><style>{{ style }}</style></head>
<body>
<header><h1>Checks · {{ title }}</h1><span id="status">build {{ snap.generation }}{{ ", with SpamAssassin" if spamassassin }}
 · {{ "%.1f"|format(seconds) }} s</span><a href="/">back to the preview</a></header>
<main><section id="checks">
{% if not snap.build %}
{{ fragments.problems(snap) }}
{% else %}
{% if unavailable %}<p class="crash">SpamAssassin could not run: <code>{{ unavailable }}</code></p>{% endif %}
{{ fragments.check_table(results) }}
{% if not spamassassin %}<p><a href="/checks?spamassassin=1">Run them with SpamAssassin</a></p>{% endif %}
{% endif %}
</section></main>
</body>
</html>
""")

SCRIPT = r"""(() => {
  "use strict";
  const body = document.body;
  const server = body.dataset.server;
  let generation = Number(body.dataset.generation);
  const variants = body.dataset.variants;

  // Each frame takes the height of its email, so neither frame scrolls inside itself (a
  // scrollbar would take width from the 600 px and 375 px the email is meant to get).
  function fit(frame) {
    try {
      const doc = frame.contentDocument;
      if (!doc || !doc.documentElement) return;
      const height = Math.max(doc.documentElement.scrollHeight, doc.body ? doc.body.scrollHeight : 0);
      if (height > 0) frame.style.height = height + "px";
    } catch (e) { /* not loaded yet */ }
  }
  const frames = [...document.querySelectorAll("iframe.email")];
  frames.forEach(frame => { frame.addEventListener("load", () => fit(frame)); fit(frame); });

  function apply(state) {
    if (state.server !== server || (state.ok && state.variants.join(",") !== variants)) {
      location.reload();  // another server, or other variants: start afresh
      return;
    }
    for (const [id, html] of Object.entries(state.sections || {})) {
      const element = document.getElementById(id);
      if (element) element.innerHTML = html;
    }
    body.classList.toggle("failed", !state.ok);
    if (state.ok) {
      frames.forEach(frame => {
        const hash = state.frames[frame.dataset.variant];
        if (hash && hash !== frame.dataset.hash) {
          frame.dataset.hash = hash;
          frame.src = `/variant/${frame.dataset.variant}.html?h=${hash}`;
        }
      });
    }
    generation = state.generation;
    body.dataset.generation = String(generation);
  }

  async function poll() {
    try {
      const response = await fetch(`/state?since=${generation}`, {cache: "no-store"});
      const state = await response.json();
      body.classList.remove("offline");
      if (state.server !== server || state.generation !== generation) apply(state);
    } catch (e) {
      body.classList.add("offline");
    }
    setTimeout(poll, 300);
  }
  setTimeout(poll, 300);
})();
"""


def render_sections(snap: Snapshot, last_good: Snapshot | None, preview: Preview) -> dict[str, str]:
    """Element id → inner HTML of every part of the page that changes with a build."""
    module = FRAGMENTS.make_module({"clock": time.strftime("%H:%M:%S", time.localtime(snap.built_at)),
                                    "size_warning": SIZE_WARNING_BYTES})
    shown = snap if snap.ok else (last_good or snap)
    sections = {
        "status": str(module.status(snap, preview)),
        "problems": str(module.problems(snap)),
        "inbox": str(module.inbox(shown)),
        "checks": str(module.checks(snap)),
    }
    for name in _variants(shown):
        sections[f"vhead-{name}"] = str(module.vhead(shown, name))
        text = shown.files.get(f"{name}.txt", b"").decode("utf-8", "replace")
        sections[f"text-{name}"] = str(escape(text))
    return sections


# --- the app -------------------------------------------------------------------------------------


def create_preview_app(builder: Callable[[], Build], watch_paths: Callable[[], list[Path]], *,
                       interval: float = WATCH_INTERVAL, on_rebuild: Callable[[Snapshot], None] | None = None,
                       title: str = "newsletter", watch: bool = True) -> Starlette:
    """The preview server: builds once now, then (while it runs) again whenever a watched file changes.

    `app.state.preview` is the `Preview`; the watcher thread runs between the app's startup and
    shutdown (not under a plain TestClient, which does not run the lifespan unless entered).
    """
    preview = Preview(builder, watch_paths, interval=interval, on_rebuild=on_rebuild, title=title)

    async def page(request: Request) -> Response:
        snap, last_good = preview.current, preview.last_good
        shown = snap if snap.ok else (last_good or snap)
        html = PAGE.render(title=preview.title, style=Markup(STYLE), snap=snap, preview=preview, widths=WIDTHS,
                           variants=_variants(shown), hashes=frame_hashes(shown), sections={k: Markup(v) for k, v in snap.sections.items()})
        return HTMLResponse(html, headers={**NO_STORE, "Content-Security-Policy": PAGE_CSP})

    async def state(request: Request) -> Response:
        snap = preview.current
        if request.query_params.get("since") == str(snap.generation):
            return JSONResponse({"server": preview.server_id, "generation": snap.generation}, headers=NO_STORE)
        return Response(snap.state_json, media_type="application/json", headers=NO_STORE)

    async def script(request: Request) -> Response:
        return Response(SCRIPT, media_type="text/javascript; charset=utf-8", headers=NO_STORE)

    async def variant(request: Request) -> Response:
        name, ext = request.path_params["name"], request.path_params["ext"]
        snap = preview.current if preview.current.ok else (preview.last_good or preview.current)
        content = snap.files.get(f"{name}.{ext}") if ext in MEDIA_TYPES else None
        if content is None:
            return PlainTextResponse(f"no variant {name}.{ext} in the current build\n", status_code=404, headers=NO_STORE)
        headers = dict(NO_STORE)
        if ext == "html":
            headers["Content-Security-Policy"] = VARIANT_CSP
        if ext == "eml":
            slug = snap.build.issue.slug if snap.build else "issue"
            filename = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in f"{slug}-{name}.eml")
            headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return Response(content, media_type=MEDIA_TYPES[ext], headers=headers)

    async def checks(request: Request) -> Response:
        snap = preview.current
        spamassassin = request.query_params.get("spamassassin") in ("1", "true", "yes")
        results, unavailable, started = list(snap.checks), None, time.perf_counter()
        if snap.build is not None and spamassassin:
            try:
                results = await run_in_threadpool(run_checks, snap.build, spamassassin=True)
            except NewsletterError as exc:  # SpamAssassin missing or unreadable: show the quick checks
                unavailable = str(exc)
        html = CHECKS_PAGE.render(title=preview.title, style=Markup(STYLE), snap=snap, results=results, spamassassin=spamassassin,
                                  unavailable=unavailable, seconds=time.perf_counter() - started, fragments=FRAGMENTS.module)
        return HTMLResponse(html, headers={**NO_STORE, "Content-Security-Policy": PAGE_CSP})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        if watch:
            preview.start()
        try:
            yield
        finally:
            preview.stop()

    app = Starlette(routes=[
        Route("/", page, methods=["GET", "HEAD"]),
        Route("/state", state, methods=["GET"]),
        Route("/preview.js", script, methods=["GET"]),
        Route("/variant/{name}.{ext}", variant, methods=["GET", "HEAD"]),
        Route("/checks", checks, methods=["GET"]),
    ], lifespan=lifespan)
    app.state.preview = preview
    return app


# --- `newsletter preview` ------------------------------------------------------------------------


def issue_watch_paths(issue_dir: Path, config_path: Path | None, templates: Callable[[], Path | None]) -> Callable[[], list[Path]]:
    """The issue folder, newsletter.toml (wherever build_issue would find it) and the templates folder."""

    def paths() -> list[Path]:
        out = [issue_dir]
        config = config_path or find_config(issue_dir) or find_config(Path.cwd())
        if config is not None:
            out.append(config)
        else:  # none yet: watch every place one could appear
            for folder in [Path(os.path.abspath(issue_dir)), *Path(os.path.abspath(issue_dir)).parents]:
                out.append(folder / CONFIG_NAME)
        known = templates()
        out.append(known if known is not None else (config.parent if config else Path.cwd()) / "templates")
        return out

    return paths


def serve(issue_dir: Path, *, config_path: Path | None = None, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          open_browser: bool = False) -> None:
    """Build, watch and serve ISSUE_DIR until interrupted; prints `Preview: URL` once listening."""
    import uvicorn

    issue_dir = Path(issue_dir)
    seen: dict[str, Path] = {}

    def builder() -> Build:
        build = build_issue(issue_dir, config_path)
        seen["templates"] = build.config.templates
        return build

    reported = {"generation": 0}

    def report(snap: Snapshot) -> None:
        if snap.generation == reported["generation"]:
            print(f"preview: rebuilt in {snap.seconds * 1000:.0f} ms, nothing changed", file=sys.stderr, flush=True)
            return
        reported["generation"] = snap.generation
        if snap.ok:
            line = f"preview: build {snap.generation} in {snap.seconds * 1000:.0f} ms"
            failed = sum(1 for r in snap.checks if r.level == ERROR)
            warned = sum(1 for r in snap.checks if r.level not in (OK, ERROR))
            if failed or warned:
                line += f" ({failed} checks failed, {warned} warnings)"
        elif snap.problems:
            line = f"preview: the build failed with {len(snap.problems)} problem{'s' if len(snap.problems) != 1 else ''}"
            line += "".join(f"\n  {p}" for p in snap.problems)
        else:
            line = f"preview: the build crashed: {snap.error}"
        print(line, file=sys.stderr, flush=True)

    # IPPROTO_TCP spelled out: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto
    # says TCP, and accepted sockets inherit it; with proto 0 every poll waits ~40 ms for an ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PreviewError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; try another --port (0 picks a free one)") from None
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    actual = sock.getsockname()[1]

    app = create_preview_app(builder, issue_watch_paths(issue_dir, config_path, lambda: seen.get("templates")),
                             on_rebuild=report, title=issue_dir.resolve().name)
    url = f"http://{host}:{actual}/"
    print(f"Preview: {url}", flush=True)
    print(f"preview: watching {issue_dir} (Ctrl-C stops)", file=sys.stderr, flush=True)
    if open_browser:
        import webbrowser

        opener = threading.Timer(0.3, webbrowser.open, args=(url,))
        opener.daemon = True
        opener.start()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", server_header=False))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
