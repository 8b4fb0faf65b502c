from __future__ import annotations

import contextlib
import csv
import itertools
import os
import signal
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import EVAL
from neardup.hashing import (
    HashError,
    hash_file,
    normalise,
    phash64,
    to_signed64,
    to_unsigned64,
)

UKB120 = EVAL / "imagededup" / "base_images" / "ukbench00120.jpg"
THRESHOLD = 10

pytestmark = pytest.mark.skipif(not EVAL.is_dir(), reason=f"{EVAL} (public test images) is missing")


def distance(x: int, y: int) -> int:
    return (to_unsigned64(x) ^ to_unsigned64(y)).bit_count()


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    with Image.open(UKB120) as image:
        image.load()
        return image.copy()


def ground_truth(name: str) -> dict[Path, str]:
    with open(EVAL / name / "ground_truth.csv", newline="") as table:
        return {EVAL / name / row["file"]: row["group"] for row in csv.DictReader(table)}


def shape_on_transparent(kind: str) -> Image.Image:
    # Transparent pixels are black too, as many exporters leave them.
    image = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if kind == "disc":
        draw.ellipse((48, 48, 208, 208), fill=(0, 0, 0, 255))
    else:
        draw.rectangle((20, 110, 236, 146), fill=(0, 0, 0, 255))
        draw.rectangle((110, 20, 146, 236), fill=(0, 0, 0, 255))
    return image


def png_header_only(width: int, height: int) -> bytes:
    # A PNG that claims huge dimensions but holds no pixel data: it proves the
    # size check fires at open, since decoding it would fail differently.
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def assert_one_line_error(path: Path | str, reason: str) -> None:
    with pytest.raises(HashError) as caught:
        hash_file(str(path))
    message = str(caught.value)
    assert message == reason
    assert "\n" not in message and str(path) not in message


# Pinned once with imagehash 4.3.2 / Pillow 13 / scipy 1.17; they guard against
# silent changes to the algorithm, the bit order or the signed conversion.
@pytest.mark.parametrize(
    ("relative", "pinned"),
    [
        ("imagededup/base_images/ukbench00120.jpg", -6922554473435345551),
        ("imagededup/base_images/ukbench09380.jpg", -1025098496937633500),
        ("jenssegers_imagehash/forest/forest-high.jpg", -4512176491860629345),
    ],
)
def test_known_photos_keep_their_pinned_hashes(relative: str, pinned: int) -> None:
    assert hash_file(str(EVAL / relative)).hash == pinned


def test_the_bits_are_in_imagehash_hex_order(photo: Image.Image) -> None:
    as_hex = str(imagehash.phash(photo, hash_size=8))
    assert to_unsigned64(phash64(photo)) == int(as_hex, 16)


def test_hash_file_reports_the_size_of_the_upright_image() -> None:
    info = hash_file(str(UKB120))
    assert (info.width, info.height) == (640, 480)
    assert -(2**63) <= info.hash < 2**63


@pytest.mark.parametrize("unsigned", [0, 1, 2**63 - 1, 2**63, 2**64 - 1])
def test_signed_and_unsigned_conversions_round_trip(unsigned: int) -> None:
    signed = to_signed64(unsigned)
    assert -(2**63) <= signed < 2**63
    assert to_unsigned64(signed) == unsigned


def test_signed_conversion_agrees_with_numpy_reinterpretation() -> None:
    values = np.array([0, 2**63, 2**64 - 1, 0x9FEE256238984D71], dtype=np.uint64)
    assert [to_signed64(int(v)) for v in values] == values.view(np.int64).tolist()


@pytest.mark.parametrize(
    ("convert", "bad"), [(to_signed64, -1), (to_signed64, 2**64), (to_unsigned64, 2**63)]
)
def test_out_of_range_conversions_are_refused(convert: object, bad: int) -> None:
    with pytest.raises(ValueError):
        convert(bad)  # type: ignore[operator]


@pytest.mark.parametrize(
    "copy", ["imagededup/ukbench00120_gray.jpg", "imagededup/alpha_channel_image.png"]
)
def test_grayscale_and_rgba_copies_hash_close_to_the_original(copy: str) -> None:
    original = hash_file(str(UKB120)).hash
    assert distance(hash_file(str(EVAL / copy)).hash, original) <= THRESHOLD


def test_exif_orientation_is_undone_before_hashing(photo: Image.Image, tmp_path: Path) -> None:
    # Orientation 6 means "turn 90 degrees clockwise to display", so storing
    # the photo turned counter-clockwise makes the displayed image the original.
    stored = photo.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    info = hash_file(str(tmp_path / "rotated.jpg"))
    assert (info.width, info.height) == photo.size
    assert distance(info.hash, phash64(photo)) <= 2
    # Without the EXIF step the same pixels are far apart.
    assert distance(phash64(stored), phash64(photo)) > THRESHOLD


MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16", "F"]


@pytest.mark.parametrize("mode", MODES)
def test_every_pillow_mode_hashes_close_to_rgb(photo: Image.Image, mode: str) -> None:
    converted = photo.convert(mode)
    assert normalise(converted).mode == "RGB"
    # Dithering to 1-bit moves more bits than a lossless mode change.
    tolerance = THRESHOLD if mode == "1" else 4
    assert distance(phash64(converted), phash64(photo)) <= tolerance


def test_a_16_bit_png_is_not_clipped_to_white(photo: Image.Image, tmp_path: Path) -> None:
    samples = np.asarray(photo.convert("L")).astype(np.uint16) * 257
    Image.fromarray(samples).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as deep:
        # Pillow's own convert clips at 255, which is why normalise stretches.
        clipped = to_signed64(int(str(imagehash.phash(deep.convert("RGB"))), 16))
    assert distance(clipped, phash64(photo)) > THRESHOLD
    assert distance(hash_file(str(tmp_path / "deep.png")).hash, phash64(photo)) <= 4


def test_a_float_image_in_zero_to_one_hashes_like_the_photo(photo: Image.Image) -> None:
    unit = Image.fromarray(np.asarray(photo.convert("L"), dtype=np.float32) / 255)
    assert unit.mode == "F"
    assert distance(phash64(unit), phash64(photo)) <= 4


def test_different_shapes_on_transparent_backgrounds_hash_far_apart() -> None:
    disc, cross = shape_on_transparent("disc"), shape_on_transparent("cross")
    # Dropping alpha leaves two all-black images with equal hashes.
    assert phash64(disc.convert("RGB")) == phash64(cross.convert("RGB"))
    assert distance(phash64(disc), phash64(cross)) > 2 * THRESHOLD


@pytest.mark.parametrize("mode", ["LA", "PA"])
def test_other_alpha_modes_composite_like_rgba(mode: str) -> None:
    disc = shape_on_transparent("disc")
    assert distance(phash64(disc.convert(mode)), phash64(disc)) <= 2


def test_a_palette_image_with_a_transparent_index_composites_on_white() -> None:
    palette = Image.new("P", (256, 256), 0)
    palette.putpalette([0, 0, 0] * 256)  # index 0 is black, but transparent
    ImageDraw.Draw(palette).ellipse((48, 48, 208, 208), fill=1)
    palette.info["transparency"] = 0
    disc = shape_on_transparent("disc")
    assert distance(phash64(palette), phash64(disc)) <= 2
    assert distance(phash64(palette.convert("RGB")), phash64(disc)) > THRESHOLD


def test_an_animation_is_hashed_by_its_first_frame(tmp_path: Path) -> None:
    frames = [normalise(shape_on_transparent(kind)) for kind in ("disc", "cross")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with Image.open(tmp_path / "anim.gif") as animation:
        animation.seek(1)
        second = phash64(animation.copy())
        first = phash64(animation)  # normalise must rewind
    assert first == hash_file(str(tmp_path / "anim.gif")).hash
    assert distance(first, second) > THRESHOLD


def test_a_non_utf8_bytes_path_can_be_hashed(tmp_path: Path) -> None:
    name = os.fsencode(tmp_path) + b"/caf\xe9 photo.jpg"
    with open(name, "wb") as out:
        out.write(UKB120.read_bytes())
    assert hash_file(name) == hash_file(os.fsdecode(name)) == hash_file(str(UKB120))


def test_a_truncated_jpeg_is_a_one_line_error(tmp_path: Path) -> None:
    data = UKB120.read_bytes()
    (tmp_path / "first half.jpg").write_bytes(data[: len(data) // 2])
    assert_one_line_error(tmp_path / "first half.jpg", "truncated image")


def test_a_truncated_png_is_a_one_line_error(photo: Image.Image, tmp_path: Path) -> None:
    photo.save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "half.png").write_bytes(data[: len(data) // 2])
    assert_one_line_error(tmp_path / "half.png", "truncated image")


def test_a_zero_byte_file_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").touch()
    assert_one_line_error(tmp_path / "empty.jpg", "empty file (0 bytes)")


def test_a_text_file_named_jpg_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("shopping list\nmilk\n")
    assert_one_line_error(tmp_path / "notes.jpg", "not an image (cannot identify image file)")


def test_the_corrupt_file_in_the_eval_set_is_not_an_image() -> None:
    corrupt = EVAL / "imagededup" / "mixed_images" / "ukbench09268_corrupt.jpg"
    assert_one_line_error(corrupt, "not an image (cannot identify image file)")


def test_a_huge_decompression_bomb_is_refused_at_open(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(png_header_only(100_000, 100_000))
    limit = 2 * Image.MAX_IMAGE_PIXELS
    reason = f"decompression bomb: {100_000 * 100_000} pixels exceeds limit {limit}"
    assert_one_line_error(tmp_path / "bomb.png", reason)


# 100x100 = 10000 pixels: over a 6000 limit but under Pillow's 2x error line.
WARNING_ZONE_REASON = "decompression bomb: 10000 pixels exceeds limit 6000"


def test_an_image_in_pillows_warning_zone_is_also_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.new("1", (100, 100)).save(tmp_path / "big.png")
    # Between 1x and 2x the limit Pillow only warns.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6_000)
    assert_one_line_error(tmp_path / "big.png", WARNING_ZONE_REASON)


def test_the_pixel_limit_holds_even_if_the_warning_filter_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulates another thread restoring the default filters mid-call.
    Image.new("1", (100, 100)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6_000)
    no_filters = SimpleNamespace(
        catch_warnings=contextlib.nullcontext, simplefilter=lambda *args, **kwargs: None
    )
    monkeypatch.setattr("neardup.hashing.warnings", no_filters)
    with pytest.warns(Image.DecompressionBombWarning):
        assert_one_line_error(tmp_path / "big.png", WARNING_ZONE_REASON)


def test_a_directory_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "album.jpg").mkdir()
    assert_one_line_error(tmp_path / "album.jpg", "is a directory")


@pytest.fixture
def alarm() -> Iterator[None]:
    # A FIFO without a writer would block a plain open() forever.
    def fail(signum: int, frame: object) -> None:
        raise TimeoutError("hash_file blocked")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path, alarm: None) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    assert_one_line_error(tmp_path / "pipe.jpg", "not a regular file (fifo)")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_a_one_line_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked.jpg"
    locked.write_bytes(UKB120.read_bytes())
    locked.chmod(0)
    assert_one_line_error(locked, "permission denied")


def test_a_permission_error_is_reported_as_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stands in for chmod 000, which does not stop root (these tests run as root).
    def refuse(path: str, flags: int, mode: int = 0o777) -> int:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr("neardup.hashing.os.open", refuse)
    assert_one_line_error(UKB120, "permission denied")


def test_a_file_deleted_before_hashing_is_a_one_line_error(tmp_path: Path) -> None:
    gone = tmp_path / "gone.jpg"
    gone.write_bytes(UKB120.read_bytes())
    gone.unlink()
    assert_one_line_error(gone, "file vanished before hashing")


def test_every_forest_version_is_within_threshold_of_every_other() -> None:
    forest = sorted((EVAL / "jenssegers_imagehash" / "forest").glob("*.jpg"))
    hashes = {path.name: hash_file(str(path)).hash for path in forest}
    assert len(hashes) == 5
    far = {(x, y): distance(hashes[x], hashes[y]) for x, y in itertools.combinations(hashes, 2)}
    assert {pair: d for pair, d in far.items() if d > THRESHOLD} == {}


@pytest.mark.parametrize("name", ["imagededup", "jenssegers_imagehash"])
def test_no_ground_truth_non_duplicates_are_within_threshold(name: str) -> None:
    # Precision is what pHash gives today; recall is not asserted because
    # flips and rotations are known misses.
    groups = ground_truth(name)
    hashes = {path: hash_file(str(path)).hash for path in groups}
    false_positives = [
        (x.name, y.name)
        for x, y in itertools.combinations(hashes, 2)
        if groups[x] != groups[y] and distance(hashes[x], hashes[y]) <= THRESHOLD
    ]
    assert false_positives == []


@pytest.mark.parametrize("suffix", [".heic", ".avif"])
def test_a_heic_or_avif_copy_of_a_photo_hashes_within_a_bit_or_two_of_its_jpeg(
    photo: Image.Image, tmp_path: Path, suffix: str
) -> None:
    from neardup.hashing import heif_support
    from neardup.hashspec import HashSpec

    if suffix == ".heic" and not heif_support():
        pytest.skip("pillow-heif (the heif extra) is not installed")
    jpeg, other = tmp_path / "photo.jpg", tmp_path / f"photo{suffix}"
    photo.convert("RGB").save(jpeg, quality=90)
    try:
        photo.convert("RGB").save(other, quality=70)
    except (KeyError, OSError) as e:  # this Pillow or libheif has no encoder for the format
        pytest.skip(f"cannot write {suffix}: {e}")
    spec = HashSpec()
    theirs, ours = hash_file(other, spec, draft=True), hash_file(jpeg, spec, draft=True)
    assert (theirs.width, theirs.height) == (ours.width, ours.height) == photo.size
    assert distance(theirs.hash, ours.hash) <= 2
