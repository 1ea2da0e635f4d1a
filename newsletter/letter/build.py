"""The whole letter in memory: load the issue folder, assemble, render every variant.

Nothing is written here; `newsletter.editor.output` writes the files and the sender sends.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from newsletter.config import Config, load_config, locate_config
from newsletter.errors import Problems
from newsletter.letter.assemble import Letter, assemble
from newsletter.letter.images import LetterImages, base64_size, load_images
from newsletter.letter.issue_folder import Issue, load_issue
from newsletter.letter.render import Variant, render_variants

GMAIL_CLIP_BYTES = 102 * 1024
SIZE_WARNING_BYTES = 90 * 1024
MESSAGE_WARNING_BYTES = 1024 * 1024  # slow to fetch on a poor or metered connection


def message_bytes(variant: Variant) -> int:
    """About what the message weighs: every part base64-encoded (the heavier encoding), headers aside."""
    parts = [len(variant.html.encode("utf-8")), len(variant.text.encode("utf-8"))]
    return sum(base64_size(size) for size in parts) + sum(base64_size(len(i.data)) for i in variant.images)


def weight_line(variant: Variant) -> str:
    """The message's weight with each image's, for warnings and checks."""
    listed = ", ".join(f"{image.filename} {len(image.data) / 1024:.1f} KB" for image in variant.images)
    return f"the message weighs about {message_bytes(variant) / 1024:.1f} KB with its images ({listed})"


@dataclass(frozen=True)
class Build:
    config: Config
    issue: Issue
    letters: dict[str, Letter]
    variants: dict[str, Variant]
    images: LetterImages = LetterImages()

    def warnings(self) -> list[str]:
        out = []
        for variant in self.variants.values():
            size = len(variant.html.encode("utf-8"))
            if size > SIZE_WARNING_BYTES:
                out.append(
                    f"{variant.name}.html: {size / 1024:.1f} KB of HTML; Gmail clips messages over about "
                    f"{GMAIL_CLIP_BYTES // 1024} KB"
                )
            if message_bytes(variant) > MESSAGE_WARNING_BYTES:
                out.append(
                    f"{variant.name}.eml: {weight_line(variant)}; keep it under {MESSAGE_WARNING_BYTES // 1024} KB"
                )
        return out

    def content_hash(self) -> str:
        """A fingerprint of what every reader gets: a campaign refuses to go on with another letter.

        The images are in it through the HTML: each Content-ID holds a hash of the image."""
        digest = hashlib.sha256()
        for name, variant in sorted(self.variants.items()):
            fallbacks = [field.fallback for field in variant.fields]  # what readers without a value read
            for part in (name, variant.subject, variant.text, variant.html, *fallbacks):
                digest.update(part.encode("utf-8"))
                digest.update(b"\0")
        return digest.hexdigest()


def build_issue(issue_dir: Path, config_path: Path | None = None) -> Build:
    """Everything the issue renders to, in memory. Raises BadInput with every problem found."""
    config = load_config(locate_config(issue_dir, config_path))
    problems = Problems()
    issue = load_issue(issue_dir, config, problems)
    if issue is None:
        problems.raise_if_any()
        raise AssertionError("load_issue returned nothing without a problem")
    images = load_images(issue, config, problems)
    letters = assemble(issue, config)
    variants = render_variants(letters, config, problems, images=images)
    problems.raise_if_any()
    return Build(config=config, issue=issue, letters=letters, variants=variants, images=images)
