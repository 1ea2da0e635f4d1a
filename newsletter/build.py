"""`newsletter build`: load, assemble, render every variant, then write them all or nothing."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from newsletter.config import Config, find_config, load_config
from newsletter.errors import BadInput, Problems
from newsletter.issue import Issue, load_issue
from newsletter.letter import Letter, assemble
from newsletter.compose import Recipient, VariantComposer
from newsletter.personalise import Personaliser
from newsletter.render import Variant, render_variants

GMAIL_CLIP_BYTES = 102 * 1024
SIZE_WARNING_BYTES = 90 * 1024
PREVIEW_TOKEN = "preview"


@dataclass(frozen=True)
class Build:
    config: Config
    issue: Issue
    letters: dict[str, Letter]
    variants: dict[str, Variant]

    def warnings(self) -> list[str]:
        out = []
        for variant in self.variants.values():
            size = len(variant.html.encode("utf-8"))
            if size > SIZE_WARNING_BYTES:
                out.append(
                    f"{variant.name}.html: {size / 1024:.1f} KB of HTML; Gmail clips messages over about "
                    f"{GMAIL_CLIP_BYTES // 1024} KB"
                )
        return out


def locate_config(issue_dir: Path, config_path: Path | None = None) -> Path:
    path = config_path or find_config(issue_dir) or find_config(Path.cwd())
    if path is None:
        raise BadInput.single("newsletter.toml", "not found in the issue folder, its parents or the current folder")
    return path


def build_issue(issue_dir: Path, config_path: Path | None = None) -> Build:
    """Everything the issue renders to, in memory. Raises BadInput with every problem found."""
    config = load_config(locate_config(issue_dir, config_path))
    problems = Problems()
    issue = load_issue(issue_dir, config, problems)
    if issue is None:
        problems.raise_if_any()
    letters = assemble(issue, config)
    variants = render_variants(letters, config, problems)
    problems.raise_if_any()
    return Build(config=config, issue=issue, letters=letters, variants=variants)


def preview_values(config: Config) -> dict[str, str]:
    return {"unsubscribe_url": f"{config.base_url}/u/{PREVIEW_TOKEN}", "name": "", "email": config.preview_to}


def sample_message(build: Build, variant: Variant, *, date: dt.datetime | None = None) -> bytes:
    """The variant as one .eml addressed to the preview recipient, made exactly as a send makes it."""
    composer = VariantComposer(variant, build.config)
    recipient = Recipient(build.config.preview_to, "", "00" * 16)
    return composer.compose(recipient, signer=None, campaign_id=0, now=date or dt.datetime.now(dt.timezone.utc)).data


def build_files(build: Build) -> dict[str, bytes]:
    """File name → content for every variant: .html and .txt personalised for preview, and .eml."""
    values = preview_values(build.config)
    files: dict[str, bytes] = {}
    for name, variant in build.variants.items():
        files[f"{name}.html"] = Personaliser(variant.html, html=True).fill(values).encode("utf-8")
        files[f"{name}.txt"] = Personaliser(variant.text, html=False).fill(values).encode("utf-8")
        files[f"{name}.eml"] = sample_message(build, variant)
    return files


def write_all(out_dir: Path, files: dict[str, bytes]) -> None:
    """Write every file into a fresh folder beside `out_dir`, then swap it into place.

    A reader never sees a half-written build, and a failure leaves the old one untouched.
    """
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, content in files.items():
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
