"""An issue's images: files in the issue folder, embedded in the message; remote images only
from the hosts newsletter.toml lists in `[privacy] image_hosts`.

A remote image tells its host when, from which address and (through a per-reader URL) by whom
a letter was opened, and the readers are people for whom that matters. So an image is a file
beside the Markdown, scaled to at most 1200 px (twice the 600 px column), compressed, stripped
of everything but its pixels (EXIF with a photo's GPS position, XMP, ICC, comments) and sent
as a MIME part that the HTML names with `cid:`. Pure but for reading the files.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, cast
from urllib.parse import unquote, urlsplit

from newsletter.config import Config
from newsletter.errors import Problems
from newsletter.letter import markdown
from newsletter.letter.issue_folder import Issue, Part

if TYPE_CHECKING:  # Pillow is imported where an image is processed: most letters have none
    from PIL import Image

MAX_WIDTH = 1200
DISPLAY_WIDTH = 536  # the 600 px column less the text's padding: Outlook shows an image at its width attribute
MAX_PIXELS = 50_000_000  # beyond a camera's: a mistake or a decompression bomb
MAX_FILE_BYTES = 50 * 1024 * 1024
FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
JPEG_QUALITIES = (80, 70, 60)  # a lower one only while the photo is heavier than JPEG_BUDGET
JPEG_BUDGET = 200 * 1024
PNG_SMALL = 100 * 1024  # a PNG this light stays PNG, whatever JPEG would weigh: sharp charts and text


@dataclass(frozen=True)
class EmbeddedImage:
    filename: str  # safe ASCII: the build's file beside the .html, and the MIME part's name
    content_id: str  # without the angle brackets
    media_type: str  # image/jpeg or image/png
    data: bytes
    width: int
    height: int
    source_bytes: int  # the file's, before scaling and compression


@dataclass(frozen=True)
class LetterImages:
    """Every image src of an issue's Markdown → its embedded image, or None for an allowed https URL."""

    by_src: dict[str, EmbeddedImage | None] = field(default_factory=dict)

    def html_sources(self) -> dict[str, tuple[str, int | None]]:
        """src → (what the HTML's src says, its width attribute) for `markdown.to_html`."""
        return {
            src: (src, None) if image is None else (f"cid:{image.content_id}", min(image.width, DISPLAY_WIDTH))
            for src, image in self.by_src.items()
        }

    def embedded(self, parts: Iterable[Part]) -> tuple[EmbeddedImage, ...]:
        """The images `parts` show, each once, in order."""
        found: dict[str, EmbeddedImage] = {}
        for part in parts:
            for src, _alt, _line in markdown.images(part.tokens):
                if image := self.by_src.get(src):
                    found.setdefault(image.content_id, image)
        return tuple(found.values())


def with_file_names(html: str, images: Iterable[EmbeddedImage]) -> str:
    """The HTML of the build folder and the preview: each `cid:` reference becomes the file beside it."""
    for image in images:
        html = html.replace(f'src="cid:{image.content_id}"', f'src="{image.filename}"')
    return html


def base64_size(size: int) -> int:
    """Bytes once base64-encoded in 76-character lines with CRLF."""
    return (size + 2) // 3 * 4 + (size + 56) // 57 * 2


def load_images(issue: Issue, config: Config, problems: Problems) -> LetterImages:
    """Every image of the issue resolved, read and processed; each refusal a problem at its file and line."""
    outcomes: dict[str, EmbeddedImage | None | str] = {}
    by_path: dict[Path, EmbeddedImage] = {}
    names: set[str] = set()
    domain = parseaddr(config.sender)[1].rpartition("@")[2] or "newsletter"
    for part in _parts(issue, config):
        for src, alt, line in image_lines(part):
            if not alt.strip():
                problems.add(part.path, f"image without alt text: {_short(src)}; say what it shows: ![…]({src})", line)
            if src not in outcomes:
                url = urlsplit(src)
                is_file = not url.scheme and not url.netloc
                outcomes[src] = _local(src, issue.path, by_path, names, domain) if is_file else _remote(src, config)
            if isinstance(outcomes[src], str):
                problems.add(part.path, str(outcomes[src]), line)
    return LetterImages({src: o for src, o in outcomes.items() if not isinstance(o, str)})


def _parts(issue: Issue, config: Config) -> Iterator[Part]:
    for code in config.codes:
        for part in (issue.opening.get(code), *(s.parts[code] for s in issue.sections), issue.closing.get(code)):
            if part is not None:
                yield part


def image_lines(part: Part) -> list[tuple[str, str, int]]:
    """(src, alt, line of the file) of every image: the line where its src is written, not where its paragraph starts."""
    lines = part.body.split("\n")
    found = []
    for src, alt, line in markdown.images(part.tokens):
        start = line or 0
        at = next((n for n in range(start, len(lines)) if src in lines[n] or unquote(src) in lines[n]), start)
        found.append((src, alt, part.body_line + at))
    return found


def _short(src: str) -> str:
    """The src as the editor typed it (Markdown percent-encodes it), cut when long."""
    src = unquote(src)
    return repr(src if len(src) <= 80 else src[:77] + "...")


def _remote(src: str, config: Config) -> None | str:
    """None for an https image from an allowed host, else why the URL is refused."""
    parts = urlsplit(src)
    host = parts.hostname or ""
    if host in config.privacy.image_hosts:
        return None if parts.scheme == "https" else f"image {_short(src)}: write it as https://{host}…"
    if parts.scheme not in ("http", "https", ""):
        return f"image {_short(src)} refused: an image is a file in the issue folder ({parts.scheme}: is not)"
    return (
        f"remote image {_short(src)} refused: loading it would tell {host or 'its host'} when, where and by whom "
        "the letter was opened; put the file in the issue folder, or list the host in newsletter.toml "
        "[privacy] image_hosts"
    )


def _local(
    src: str, folder: Path, by_path: dict[Path, EmbeddedImage], names: set[str], domain: str
) -> EmbeddedImage | str:
    relative = PurePosixPath(unquote(src))
    if relative.is_absolute() or ".." in relative.parts:
        return f"image {_short(src)} is outside the issue folder: put the file in {folder.name}/"
    try:
        path = (folder / relative).resolve(strict=True)
    except (OSError, RuntimeError):
        return f"image file not found: {_short(src)} (file names are relative to the issue folder)"
    if not path.is_relative_to(folder):
        return f"image {_short(src)} leads outside the issue folder (a symbolic link?): put the file itself in it"
    if not path.is_file():
        return f"image {_short(src)} is not a file"
    if path in by_path:
        return by_path[path]
    if path.stat().st_size > MAX_FILE_BYTES:
        return f"image {_short(src)} is over {MAX_FILE_BYTES // 1024 // 1024} MB: not a photo for a letter"
    source = path.read_bytes()
    try:
        data, media_type, width, height = _processed(source)
    except ValueError as exc:
        return f"image {_short(src)}: {exc}"
    filename = _filename(relative.stem, ".png" if media_type == "image/png" else ".jpg", names)
    content_id = f"{filename.rsplit('.', 1)[0]}.{hashlib.sha256(data).hexdigest()[:16]}@{domain}"
    image = EmbeddedImage(filename, content_id, media_type, data, width, height, len(source))
    by_path[path] = image
    return image


def _filename(stem: str, suffix: str, taken: set[str]) -> str:
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:60] or "image"
    name, n = safe + suffix, 1
    while name in taken:
        n += 1
        name = f"{safe}-{n}{suffix}"
    taken.add(name)
    return name


# --- Pillow -------------------------------------------------------------------------------------

_cache: dict[bytes, tuple[bytes, str, int, int]] = {}  # the preview rebuilds on every save
_cache_lock = threading.Lock()


def _processed(source: bytes) -> tuple[bytes, str, int, int]:
    key = hashlib.sha256(source).digest()
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    result = _process(source)
    with _cache_lock:
        if len(_cache) >= 64:
            _cache.clear()
        _cache[key] = result
    return result


def _process(source: bytes) -> tuple[bytes, str, int, int]:
    """(data, media type, width, height); ValueError saying why an image cannot be used."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # MAX_PIXELS is the limit here
            opened = Image.open(io.BytesIO(source), formats=FORMATS)
    except UnidentifiedImageError:
        raise ValueError("not a JPEG, PNG, GIF or WebP image") from None
    except (Image.DecompressionBombError, OSError) as exc:
        raise ValueError(f"cannot be read ({exc})") from None
    if opened.width * opened.height > MAX_PIXELS:
        raise ValueError(f"{opened.width}×{opened.height} pixels is too large; keep it under 50 megapixels")
    source_format, icc = opened.format, opened.info.get("icc_profile")
    try:
        image = ImageOps.exif_transpose(opened)  # the pixels as the camera was held, before the EXIF goes
    except (OSError, SyntaxError, EOFError, ValueError) as exc:
        raise ValueError(f"cannot be read ({exc})") from None
    image = _opaque_or_rgba(_srgb(image, icc))
    if image.width > MAX_WIDTH:
        height = max(1, round(image.height * MAX_WIDTH / image.width))
        image = image.resize((MAX_WIDTH, height), Image.Resampling.LANCZOS)
    image.info = {}  # nothing travels but the pixels: no EXIF, XMP, ICC profile or comment
    if image.mode == "RGBA":
        return _png(image), "image/png", image.width, image.height
    jpeg = _jpeg(image)
    if source_format != "JPEG":
        png = _png(image)
        if len(png) <= max(PNG_SMALL, len(jpeg)):
            return png, "image/png", image.width, image.height
    return jpeg, "image/jpeg", image.width, image.height


def _srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """Colours converted to sRGB, what mail clients assume once the profile is gone."""
    if not icc:
        return image
    from PIL import ImageCms

    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        mode = "RGBA" if "A" in image.getbands() else "RGB"
        converted = ImageCms.profileToProfile(image, profile, ImageCms.createProfile("sRGB"), outputMode=mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image
    return converted or image


def _opaque_or_rgba(image: Image.Image) -> Image.Image:
    """L or RGB, or RGBA when some pixel is see-through (which only PNG keeps)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
        lowest, _ = cast(tuple[int, int], image.getchannel("A").getextrema())
        if lowest < 255:
            return image
    return image if image.mode in ("L", "RGB") else image.convert("RGB")


def _jpeg(image: Image.Image) -> bytes:
    for quality in JPEG_QUALITIES:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality, progressive=True, optimize=True)
        if buffer.tell() <= JPEG_BUDGET:
            break
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()
