"""An editor's live build: the issue rebuilt whenever one of its files changes.

In the MkDocs manner: a *builder* (a callable returning a `Build`) and the paths to watch.
A watcher thread polls the modification times and the set of files every 200 ms and
rebuilds on any change. A build that fails (BadInput) or crashes becomes a snapshot that
says so, and the watcher keeps going until the files are fixed. `newsletter.web.preview`
serves the snapshots.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.config import CONFIG_NAME, config_for
from newsletter.editor.checks import run_checks
from newsletter.editor.output import build_files
from newsletter.editor.results import CheckResult
from newsletter.errors import BadInput
from newsletter.letter.render import Build

WATCH_INTERVAL = 0.2  # seconds between two looks at the files


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

    def __init__(
        self,
        builder: Callable[[], Build],
        watch_paths: Callable[[], list[Path]],
        *,
        interval: float = WATCH_INTERVAL,
        on_rebuild: Callable[[Snapshot], None] | None = None,
        present: Callable[[Snapshot, Snapshot | None, Preview], None] | None = None,
        title: str = "newsletter",
    ):
        self.builder = builder
        self.watch_paths = watch_paths
        self.interval = interval
        self.on_rebuild = on_rebuild
        self.present = present  # fills in what a page shows of a snapshot, before anyone sees it
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
            if self.present is not None:
                self.present(snap, last_good, self)
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


def variants_of(snap: Snapshot | None) -> list[str]:
    return list(snap.build.variants) if snap is not None and snap.build is not None else []


def frame_hashes(snap: Snapshot | None) -> dict[str, str]:
    """Variant → a short hash of its HTML and images: the page reloads only the frames whose email changed."""
    if snap is None or snap.build is None:
        return {}
    hashes = {}
    for name, variant in snap.build.variants.items():
        digest = hashlib.sha256(snap.files[f"{name}.html"])
        for image in variant.images:  # an edited image keeps its file name
            digest.update(image.data)
        hashes[name] = digest.hexdigest()[:16]
    return hashes


def issue_watch_paths(
    issue_dir: Path, config_path: Path | None, templates: Callable[[], Path | None]
) -> Callable[[], list[Path]]:
    """The issue folder, newsletter.toml (wherever the build would find it) and the templates folder."""

    def paths() -> list[Path]:
        out = [issue_dir]
        config = config_for(issue_dir, config_path)
        if config is not None:
            out.append(config)
        else:  # none yet: watch every place one could appear
            for folder in [Path(os.path.abspath(issue_dir)), *Path(os.path.abspath(issue_dir)).parents]:
                out.append(folder / CONFIG_NAME)
        known = templates()
        out.append(known if known is not None else (config.parent if config else Path.cwd()) / "templates")
        return out

    return paths
