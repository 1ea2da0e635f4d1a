"""What `newsletter build` writes: each variant's HTML and text with preview values, a sample
.eml and the images the HTML shows beside it, all gathered in memory first and then swapped
into place at once. A letter with personal fields also gets `<variant>.long-name.html`: the
same letter for a reader with a long real name (the other files show the fallbacks)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from newsletter.letter.images import with_file_names
from newsletter.letter.render import Build
from newsletter.message.composer import preview_text, preview_values, sample_messages
from newsletter.placeholders import LONG_NAMES, Slots, person_values


def build_files(build: Build) -> dict[str, bytes]:
    """File name → content for every variant: .html and .txt personalised for preview, and .eml;
    then the images, which the .html files name by file (the .eml carries them itself)."""
    samples = sample_messages(build)  # BadInput before anything is written
    files: dict[str, bytes] = {}
    images: dict[str, bytes] = {}
    for name, variant in build.variants.items():
        fallbacks = tuple(field.fallback for field in variant.fields)
        html = preview_text(variant.html, build.config, html=True, fallbacks=fallbacks)
        files[f"{name}.html"] = with_file_names(html, variant.images).encode("utf-8")
        files[f"{name}.txt"] = preview_text(variant.text, build.config, html=False, fallbacks=fallbacks).encode("utf-8")
        files[f"{name}.eml"] = samples[name]
        if variant.fields:
            long = with_long_names(variant.html, variant, build)
            files[f"{name}.long-name.html"] = with_file_names(long, variant.images).encode("utf-8")
        images.update((image.filename, image.data) for image in variant.images)
    return files | images


def with_long_names(html: str, variant, build: Build) -> str:
    """The variant's HTML as a reader whose name (and every field) is a long real name reads it."""
    long = LONG_NAMES.get(variant.lang, LONG_NAMES["en"])
    values = person_values(variant.fields, {field.column or field.name: long for field in variant.fields})
    fallbacks = tuple(field.fallback for field in variant.fields)
    return Slots(html, html=True, fallbacks=fallbacks).fill({**preview_values(build.config), **values})


def write_all(out_dir: Path, files: dict[str, bytes]) -> None:
    """Write every file into a fresh folder beside `out_dir`, then swap it into place.

    A reader never sees a half-written build, and a failure leaves the old one untouched.
    """
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, content in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)  # the archive's <slug>/ folders
            (staging / name).write_bytes(content)
        os.chmod(staging, 0o755)
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            old.rmdir()
            out_dir.rename(old)
            staging.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_build(build: Build, out_dir: Path | None = None) -> tuple[Path, dict[str, bytes]]:
    """Write the build to `out_dir` (default: dist/<slug> beside newsletter.toml)."""
    files = build_files(build)
    target = out_dir or build.config.root / "dist" / build.issue.slug
    write_all(target, files)
    return target, files
