"""Images without tracking: files from the issue folder, scaled, stripped of their metadata and
embedded in the message (multipart/related, cid:); remote images refused unless their host is
listed in [privacy] image_hosts."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import random
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from image_letters import LOGO_ALT, PHOTO_ALT, image_issue, logo, photo, project_config
from PIL import Image

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.errors import BadInput
from newsletter.letter.render import build_issue
from newsletter.message.composer import Composer, Recipient, sample_message

ISSUES = "tests/fixtures/project/issues"
WHY = (
    "refused: loading it would tell tracker.example when, where and by whom the letter was opened; put the file in "
    "the issue folder, or list the host in newsletter.toml [privacy] image_hosts"
)
REFUSED = [
    f"{ISSUES}/remote-images/01-images.ar.md:6: remote image 'https://tracker.example/p.gif?uid=42' {WHY}",
    f"{ISSUES}/remote-images/01-images.en.md:3: remote image 'http://tracker.example/chart.png' {WHY}",
    f"{ISSUES}/remote-images/01-images.en.md:5: image without alt text: '//tracker.example/logo.png'; "
    "say what it shows: ![…](//tracker.example/logo.png)",
    f"{ISSUES}/remote-images/01-images.en.md:5: remote image '//tracker.example/logo.png' {WHY}",
]


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def errors(result) -> list[str]:
    return [line.removeprefix("Error: ") for line in result.output.splitlines() if line.startswith("Error: ")]


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


# --- remote images ------------------------------------------------------------------------------


def test_remote_images_stop_the_build_naming_file_and_line(in_root, tmp_path: Path):
    result = run("build", f"{ISSUES}/remote-images", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert errors(result) == REFUSED
    assert not (tmp_path / "out").exists()


def test_check_says_which_images_were_refused_and_why(in_root):
    result = run("check", f"{ISSUES}/remote-images", "--no-spamassassin")
    assert result.exit_code == 2
    assert errors(result) == REFUSED


def test_an_allowed_host_passes_as_an_https_url_and_check_warns(tmp_path: Path):
    config = project_config(tmp_path, '[privacy]\nimage_hosts = ["Tracker.example"]\n')
    assert load_config(config).privacy.image_hosts == ("tracker.example",)
    # still refused from an allowed host: plain http, and // (which a client may fetch over http)
    with pytest.raises(BadInput) as refused:
        build_issue(Path(ISSUES).resolve() / "remote-images", config)
    assert [p.message for p in refused.value.problems if "write it as https" in p.message] == [
        "image 'http://tracker.example/chart.png': write it as https://tracker.example…",
        "image '//tracker.example/logo.png': write it as https://tracker.example…",
    ]

    issue = tmp_path / "issues" / "allowed"
    issue.mkdir(parents=True)
    (issue / "issue.toml").write_text(
        (Path(ISSUES).resolve() / "check-links" / "issue.toml").read_text("utf-8"), "utf-8"
    )
    for lang, alt in (("ar", "مخطط"), ("en", "A chart")):
        (issue / f"01-chart.{lang}.md").write_text(f"# {alt}\n\n![{alt}](https://tracker.example/chart.png)\n", "utf-8")
    build = build_issue(issue, config)
    for variant in build.variants.values():
        assert '<img src="https://tracker.example/chart.png"' in variant.html and variant.images == ()
        assert parse(sample_message(variant, build.config)).get_content_type() == "multipart/alternative"
    result = run("check", str(issue), "--config", str(config), "--no-spamassassin")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("WARNING images")]
    assert len(warnings) == 2 and all("tracker.example ([privacy] image_hosts)" in w for w in warnings)


def test_image_hosts_are_validated(tmp_path: Path):
    config = project_config(tmp_path, '[privacy]\nimage_hosts = ["https://images.example.org", "a.org/x", 3]\n')
    with pytest.raises(BadInput) as bad:
        load_config(config)
    assert sorted(p.message for p in bad.value.problems) == sorted(
        f"privacy.image_hosts: expected host names such as images.example.org, got {value}"
        for value in ("'https://images.example.org'", "'a.org/x'", "3")
    )
    assert all(p.line == 19 for p in bad.value.problems)


# --- files from the issue folder ---------------------------------------------------------------


@pytest.fixture(scope="module")
def image_build(tmp_path_factory):
    return build_issue(image_issue(tmp_path_factory.mktemp("images")))


def test_the_photo_is_scaled_compressed_and_stripped_of_exif(image_build, capsys):
    source = image_build.issue.path / "visit.jpg"
    with Image.open(source) as original:
        assert original.size == (3000, 2000) and original.getexif().get_ifd(0x8825), "the test photo has GPS"
    image = image_build.variants["en"].images[0]
    assert (image.filename, image.media_type, image.width, image.height) == ("visit.jpg", "image/jpeg", 1200, 800)
    assert len(image.data) < 150 * 1024 < image.source_bytes
    with Image.open(io.BytesIO(image.data)) as out:
        assert out.size == (1200, 800) and out.info.get("progressive")
        assert not out.getexif() and not {"exif", "icc_profile", "xmp", "comment"} & set(out.info)
    for trace in (b"Exif", b"ExampleCam", b"Model 7", b"2022:11:30"):
        assert trace not in image.data
    with capsys.disabled():
        print(
            f"\nimages: the 3000×2000 test photo, {image.source_bytes / 1024:.1f} KB → "
            f"1200×800, {len(image.data) / 1024:.1f} KB"
        )


def test_a_logo_with_transparency_stays_png(image_build):
    logo_image = image_build.variants["en"].images[1]
    assert (logo_image.filename, logo_image.media_type) == ("logo.png", "image/png")
    with Image.open(io.BytesIO(logo_image.data)) as out:
        assert out.mode == "RGBA" and out.size == (480, 160) and out.getpixel((0, 0))[3] == 0


@pytest.mark.parametrize("name", ["ar", "en", "bilingual"])
def test_the_message_is_alternative_text_and_related_html_with_images(image_build, name):
    variant = image_build.variants[name]
    raw = sample_message(variant, image_build.config)
    body_lines = raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n")
    assert raw.isascii() and max(len(line) for line in body_lines) <= 76
    msg = parse(raw)
    assert not msg.defects and all(not part.defects for part in msg.walk())
    assert msg.get_content_type() == "multipart/alternative"
    text, related = msg.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related" and related.get_param("type") == "text/html"
    html, *images = related.iter_parts()
    assert html.get_content_type() == "text/html" and msg.get_body(("html",)) is html
    expected = ["image/jpeg"] + (["image/png"] if name != "ar" else [])
    assert [part.get_content_type() for part in images] == expected

    ids = [part["Content-ID"].strip("<>") for part in images]
    assert len(set(ids)) == len(ids)
    body = html.get_content()
    assert sorted(set(re.findall(r'src="cid:([^"]+)"', body))) == sorted(ids)
    assert not re.search(r'src="(?!cid:)', body), "an image the message does not carry"
    for part, image in zip(images, variant.images, strict=True):
        assert part.get_content_disposition() == "inline" and part.get_filename() == image.filename
        assert part["Content-Transfer-Encoding"] == "base64" and part.get_content() == image.data
    for code in variant.languages:
        assert f'alt="{PHOTO_ALT[code]}"' in body
        assert f"[{PHOTO_ALT[code]}]" in " ".join(text.get_content().replace("\u200e", "").split())
    if name != "ar":
        assert f'alt="{LOGO_ALT["en"]}"' in body and 'width="536"' in body and 'width="480"' in body


def test_image_parts_are_encoded_once_per_variant(image_build, monkeypatch: pytest.MonkeyPatch):
    import newsletter.message.composer as composer_module

    calls = []
    encode = composer_module._image_part
    monkeypatch.setattr(composer_module, "_image_part", lambda image: calls.append(image.filename) or encode(image))
    composer = Composer(image_build.variants, image_build.config, signer=None, campaign_id=1)
    assert sorted(calls) == ["logo.png", "logo.png", "visit.jpg", "visit.jpg", "visit.jpg"]
    messages = [
        composer.compose("en", Recipient(f"p{n}@example.org", "", "00" * 16, n), dt.datetime.now(dt.UTC))
        for n in range(50)
    ]
    assert len(calls) == 5
    image_parts = {
        part.get_content() for m in messages for part in parse(m.data).walk() if part.get_content_maintype() == "image"
    }
    assert image_parts == {image.data for image in image_build.variants["en"].images}


def test_build_writes_the_images_beside_the_html(image_build, tmp_path: Path):
    out = tmp_path / "out"
    result = run("build", str(image_build.issue.path), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir() if not p.name.endswith((".html", ".txt", ".eml"))) == [
        "logo.png",
        "visit.jpg",
    ]
    assert "Wrote 11 files" in result.output and "Warning" not in result.output
    html = (out / "en.html").read_text(encoding="utf-8")
    assert 'src="visit.jpg"' in html and 'src="images/logo.png"' not in html and 'src="logo.png"' in html
    assert "cid:" not in html and "cid:" in (out / "en.eml").read_text(encoding="ascii")
    assert (out / "visit.jpg").read_bytes() == image_build.variants["en"].images[0].data
    # the size line counts the HTML only, as Gmail's clipping does
    assert re.search(r"^en\s+html\s+\d+\.\d KB\s+text\s+\d+\.\d KB\s+eml\s+\d+\.\d KB", result.output, re.M)


@pytest.mark.trials  # several seconds of whole sends: the whole suite's
def test_a_heavy_message_warns_with_each_image_weight(tmp_path: Path):
    issue = image_issue(tmp_path)
    rng = random.Random(3)
    for n in range(3):  # noise: as heavy as a photo gets
        Image.frombytes("RGB", (1400, 900), rng.randbytes(1400 * 900 * 3)).save(issue / f"noise{n}.png")
    (issue / "01-visit.en.md").write_text(
        "# Noise\n\n" + "\n\n".join(f"![Noise {n}](noise{n}.png)" for n in range(3)) + "\n", encoding="utf-8"
    )
    result = run("build", str(issue), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.output.splitlines() if line.startswith("Warning: en.eml: "))
    assert re.fullmatch(
        r"Warning: en\.eml: the message weighs about \d{4}\.\d KB with its images \(noise0\.jpg \d{3}\.\d KB, "
        r"noise1\.jpg \d{3}\.\d KB, noise2\.jpg \d{3}\.\d KB\); keep it under 1024 KB",
        warning,
    ), warning
    assert "Warning: ar.eml" not in result.output
    check = run("check", str(issue), "--no-spamassassin")
    assert check.exit_code == 0 and "WARNING weight [en]: the message weighs about" in check.output
    assert "OK      weight [ar]: the message weighs about" in check.output


def test_files_that_are_not_images_of_the_issue_are_refused(tmp_path: Path):
    issue = image_issue(tmp_path / "project")
    outside = tmp_path / "outside.jpg"
    photo(outside, (40, 30))
    (issue / "link.jpg").symlink_to(outside)
    (issue / "notes.jpg").write_text("not an image", encoding="utf-8")
    Image.new("RGB", (20, 20)).save(issue / "old.bmp")
    logo(issue / "images" / "inside.png")
    (issue / "images" / "inside-link.png").symlink_to(issue / "images" / "inside.png")
    lines = [
        "![Outside](../../../outside.jpg)",
        "![Absolute](/etc/hostname)",
        "![Linked](link.jpg)",
        "![Text](notes.jpg)",
        "![Bitmap](old.bmp)",
        "![Missing](missing.png)",
        "![](visit.jpg)",
        "![Linked inside](images/inside-link.png)",
    ]
    (issue / "01-visit.en.md").write_text("# Files\n\n" + "\n\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BadInput) as bad:
        build_issue(issue)
    found = [(p.line, p.message) for p in bad.value.problems]
    assert all(p.where.endswith("01-visit.en.md") for p in bad.value.problems)
    assert found == [
        (3, "image '../../../outside.jpg' is outside the issue folder: put the file in 2022-12-images/"),
        (5, "image '/etc/hostname' is outside the issue folder: put the file in 2022-12-images/"),
        (7, "image 'link.jpg' leads outside the issue folder (a symbolic link?): put the file itself in it"),
        (9, "image 'notes.jpg': not a JPEG, PNG, GIF or WebP image"),
        (11, "image 'old.bmp': not a JPEG, PNG, GIF or WebP image"),
        (13, "image file not found: 'missing.png' (file names are relative to the issue folder)"),
        (15, "image without alt text: 'visit.jpg'; say what it shows: ![…](visit.jpg)"),
    ]


def test_a_photo_taken_sideways_is_turned_upright(tmp_path: Path):
    issue = image_issue(tmp_path)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned a quarter clockwise
    Image.new("RGB", (300, 200), (200, 30, 30)).save(issue / "visit.jpg", exif=exif.tobytes())
    image = build_issue(issue).variants["ar"].images[0]
    assert (image.width, image.height) == (200, 300)
    with Image.open(io.BytesIO(image.data)) as out:
        assert out.size == (200, 300) and not out.getexif()


def test_file_names_are_safe_and_unique(tmp_path: Path):
    issue = image_issue(tmp_path)
    photo(issue / "images" / "visit.jpg", (800, 600), seed=5)  # another photo, the same name
    (issue / "صور").mkdir()
    logo(issue / "صور" / "شعار.png")
    (issue / "01-visit.en.md").write_text(
        "# Names\n\n![One](visit.jpg)\n\n![Two](images/visit.jpg)\n\n![Three](<صور/شعار.png>)\n\n![Gone](<صور/مفقود.png>)\n",
        encoding="utf-8",
    )
    with pytest.raises(BadInput) as bad:
        build_issue(issue)
    assert [(p.line, p.message) for p in bad.value.problems] == [
        (9, "image file not found: 'صور/مفقود.png' (file names are relative to the issue folder)")
    ]
    (issue / "01-visit.en.md").write_text(
        "# Names\n\n![One](visit.jpg)\n\n![Two](images/visit.jpg)\n\n![Three](<صور/شعار.png>)\n", encoding="utf-8"
    )
    images = build_issue(issue).variants["en"].images
    assert [image.filename for image in images] == ["visit.jpg", "visit-2.jpg", "image.png"]
    assert len({image.content_id for image in images}) == 3
