"""Letters with images, made in a test's own folder: a camera photo carrying EXIF with a GPS
position, a logo with transparency, and the issue files that show them."""

from __future__ import annotations

import random
from pathlib import Path

from conftest import FIXTURES, ROOT
from PIL import Image, ImageDraw, ImageFilter

PHOTO_ALT = {"ar": "فريق الغرفة في مكتب عمّان", "en": "The Room's team at the Amman office"}
LOGO_ALT = {"ar": "شعار الغرفة", "en": "The Room's logo"}
GPS_LATITUDE = (31.0, 57.0, 12.34)  # a position that must never travel


def photo(path: Path, size: tuple[int, int] = (3000, 2000), *, seed: int = 1, noise: float = 6.0) -> None:
    """A photo-like JPEG (gradients, shapes, sensor noise) at camera quality, with EXIF: maker,
    model, date and a GPS position."""
    rng = random.Random(seed)
    width, height = size
    sky = Image.linear_gradient("L").resize(size).convert("RGB")
    image = Image.merge(
        "RGB", (sky.getchannel(0), Image.new("L", size, 140), sky.getchannel(0).point(lambda v: 255 - v))
    )
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(width // 40, width // 8)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour, outline=(20, 20, 20), width=max(2, width // 600))
    image = image.filter(ImageFilter.GaussianBlur(width / 1500))
    grain = Image.effect_noise(size, noise).convert("RGB")
    image = Image.blend(image, grain, 0.08)
    exif = Image.Exif()
    exif[0x010F] = "ExampleCam"  # Make
    exif[0x0110] = "Model 7"  # Model
    exif[0x0132] = "2022:11:30 10:12:00"  # DateTime
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: GPS_LATITUDE, 3: "E", 4: (35.0, 55.0, 43.21)})
    image.save(path, "JPEG", quality=95, exif=exif.tobytes())


def logo(path: Path) -> None:
    """A small PNG with transparent corners."""
    image = Image.new("RGBA", (480, 160), (0, 0, 0, 0))
    ImageDraw.Draw(image).rounded_rectangle((8, 8, 472, 152), radius=40, fill=(26, 93, 143, 255))
    image.save(path, "PNG")


def project_config(root: Path, extra: str = "") -> Path:
    """The fixtures' newsletter.toml, its templates found from anywhere, plus `extra`."""
    text = (FIXTURES / "project" / "newsletter.toml").read_text(encoding="utf-8")
    text = text.replace('templates = "../../../templates"', f'templates = "{ROOT / "templates"}"')
    path = root / "newsletter.toml"
    path.write_text(text + "\n" + extra, encoding="utf-8")
    return path


def image_issue(root: Path, extra_config: str = "") -> Path:
    """A project under `root` with one issue: the photo in both languages, the logo in English."""
    root.mkdir(parents=True, exist_ok=True)
    project_config(root, extra_config)
    issue = root / "issues" / "2022-12-images"
    (issue / "images").mkdir(parents=True)
    (issue / "issue.toml").write_text(
        (FIXTURES / "project" / "issues" / "check-links" / "issue.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    photo(issue / "visit.jpg")
    logo(issue / "images" / "logo.png")
    (issue / "01-visit.ar.md").write_text(
        f"---\ntitle: زيارة عمّان\n---\n\nزار فريق الغرفة عمّان في نوفمبر والتقى بالشركاء.\n\n![{PHOTO_ALT['ar']}](visit.jpg)\n",
        encoding="utf-8",
    )
    (issue / "01-visit.en.md").write_text(
        "# The Amman visit\n\nThe Room's team visited Amman in November\n"
        f"and met the partners: ![{PHOTO_ALT['en']}](visit.jpg)\n\n![{LOGO_ALT['en']}](images/logo.png)\n",
        encoding="utf-8",
    )
    return issue
