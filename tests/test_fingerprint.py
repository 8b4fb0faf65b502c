"""Hash specs, algorithms, canonical orientation on real photos, border trimming, draft decoding."""
from __future__ import annotations

import io
from pathlib import Path

import imagehash
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from conftest import EVAL
from neardup.fingerprint import dct_of, fingerprint, thumbnail, transform, trim_border
from neardup.hashing import PLAIN, hash_file, normalise_gray, to_unsigned64
from neardup.hashspec import HashSpec
from neardup.orientation import SYMMETRIES, canonical_branches

PHOTOS = [EVAL / "imagededup" / "base_images" / name
          for name in ("ukbench00120.jpg", "ukbench01380.jpg", "ukbench09060.jpg", "ukbench09380.jpg")]
FOREST = EVAL / "jenssegers_imagehash" / "forest" / "forest-high.jpg"
THRESHOLD = 10
ALGORITHMS = ["phash", "dhash", "ahash", "whash"]

pytestmark = pytest.mark.skipif(not EVAL.is_dir(), reason=f"{EVAL} (public test images) is missing")


def distance(x: int, y: int) -> int:
    return (to_unsigned64(x) ^ to_unsigned64(y)).bit_count()


def rotation_proof(x: tuple[int, ...], y: tuple[int, ...]) -> int:
    """The stored-form distance: least over every stored hash of one and of the other."""
    return min(distance(a, b) for a in x for b in y)


def stored(path: Path | str, spec: HashSpec) -> tuple[int, ...]:
    info = hash_file(str(path), spec, draft=True)
    return (info.hash, *info.alternatives)


def gray(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return normalise_gray(image)


def save_jpeg(image: Image.Image, quality: int = 92) -> io.BytesIO:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality)
    out.seek(0)
    return out


# Pinned (imagehash 4.3.2, Pillow 13, scipy 1.17; canonical rule 4: decided on the centre) for the default job spec: canonical pHash (sign bits),
# border trim, draft decode. They guard against silent changes to any step (decode scale, trim,
# canonical rule, bit order); a deliberate change must bump CANON_VERSION or TRIM_VERSION.
@pytest.mark.parametrize(("relative", "pinned", "ties"), [
    ("imagededup/base_images/ukbench00120.jpg", (-7928257120388995839,), 0b110),  # near both mirrors
    ("imagededup/base_images/ukbench09380.jpg", (-1025102894986766044,), 0),
    ("jenssegers_imagehash/forest/forest-high.jpg", (-1116040189387970398,), 0),
])
def test_known_photos_keep_their_pinned_canonical_hashes(relative: str, pinned: tuple[int, ...],
                                                         ties: int) -> None:
    assert stored(EVAL / relative, HashSpec()) == pinned
    assert hash_file(str(EVAL / relative), HashSpec(), draft=True).ties == ties


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_the_identity_orientation_is_imagehash_bit_for_bit(algo: str) -> None:
    image = gray(PHOTOS[0])
    reference = {"phash": imagehash.phash(image), "dhash": imagehash.dhash(image),
                 "ahash": imagehash.average_hash(image),
                 "whash": imagehash.whash(image, image_scale=32)}[algo]
    ours = fingerprint(image, HashSpec(algo, rotations=False, trim=False))
    assert to_unsigned64(ours.hash) == int(str(reference), 16)
    assert ours.alternatives == ()


@pytest.mark.parametrize("algo", ALGORITHMS)
@pytest.mark.parametrize("photo", PHOTOS + [FOREST], ids=lambda p: p.stem)
def test_every_rotation_and_mirror_of_a_photo_lands_close(algo: str, photo: Path) -> None:
    spec = HashSpec(algo)
    upright = gray(photo)
    original = fingerprint(upright, spec)
    for s in SYMMETRIES:
        turned = fingerprint(transform(upright, s), spec)
        assert rotation_proof((original.hash, *original.alternatives),
                              (turned.hash, *turned.alternatives)) <= 2, s


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_without_rotations_a_mirrored_photo_is_far(algo: str) -> None:
    spec = HashSpec(algo, rotations=False)
    upright = gray(PHOTOS[1])
    mirrored = ImageOps.mirror(upright)
    assert distance(fingerprint(upright, spec).hash, fingerprint(mirrored, spec).hash) > THRESHOLD


def test_unrelated_photos_do_not_come_closer_with_rotations() -> None:
    plain, canon = HashSpec(rotations=False), HashSpec()
    for i, x in enumerate(PHOTOS):
        for y in PHOTOS[i + 1:]:
            assert rotation_proof(stored(x, canon), stored(y, canon)) > THRESHOLD
            assert distance(stored(x, plain)[0], stored(y, plain)[0]) > THRESHOLD


@pytest.mark.parametrize(("colour", "width"), [(0, 0.03), (255, 0.05), (128, 0.1)])
def test_a_framed_copy_hashes_like_the_original(colour: int, width: float) -> None:
    upright = gray(PHOTOS[0])
    framed = ImageOps.expand(upright, border=int(upright.width * width), fill=colour)
    spec = HashSpec()
    assert distance(fingerprint(framed, spec).hash, fingerprint(upright, spec).hash) <= 2
    # The trim is what makes it work.
    no_trim = HashSpec(trim=False)
    assert distance(fingerprint(framed, no_trim).hash, fingerprint(upright, no_trim).hash) > THRESHOLD


def test_trimming_leaves_a_borderless_photo_alone_and_commutes_with_symmetries() -> None:
    upright = gray(PHOTOS[3])
    assert trim_border(upright).size == upright.size
    framed = ImageOps.expand(upright, border=(12, 5, 0, 30), fill=0)
    for s in SYMMETRIES:
        assert trim_border(transform(framed, s)).tobytes() == transform(trim_border(framed), s).tobytes()


@pytest.mark.parametrize("factor", [0.6, 0.75])
def test_a_smooth_wall_is_not_cut_in_a_low_contrast_copy(factor: float) -> None:
    # ukbench01380 is a CD case by a bright wall: with a looser tolerance the copy's flattened wall
    # read as border, and the copy hashed 28 bits from its original.
    upright = Image.open(PHOTOS[1]).convert("RGB")
    buffer = io.BytesIO()
    ImageEnhance.Contrast(upright).enhance(factor).save(buffer, "JPEG", quality=90)
    copy = normalise_gray(Image.open(buffer))
    assert trim_border(copy).size == copy.size
    found = fingerprint(copy, HashSpec())
    assert rotation_proof(stored(PHOTOS[1], HashSpec()), (found.hash, *found.alternatives)) <= THRESHOLD


def test_a_blank_image_keeps_a_usable_thumbnail() -> None:
    blank = Image.new("L", (300, 200), 255)
    assert trim_border(blank).size[0] >= 8
    assert fingerprint(blank, HashSpec()).hash == fingerprint(blank.copy(), HashSpec()).hash


@pytest.mark.parametrize("photo", PHOTOS, ids=lambda p: p.stem)
def test_draft_decoding_stays_within_a_few_bits_of_a_full_decode(photo: Path) -> None:
    full = hash_file(str(photo), PLAIN).hash
    draft = hash_file(str(photo), PLAIN, draft=True)
    assert distance(full, draft.hash) <= 4
    with Image.open(photo) as image:
        assert (draft.width, draft.height) == image.size  # the full size, not the decoded one


def test_draft_reports_the_full_upright_size_of_an_exif_rotated_jpeg(tmp_path: Path) -> None:
    with Image.open(PHOTOS[0]) as image:
        stored_turned = image.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored_turned.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    info = hash_file(str(tmp_path / "turned.jpg"), HashSpec(rotations=False), draft=True)
    assert (info.width, info.height) == (640, 480)
    assert distance(info.hash, hash_file(str(PHOTOS[0]), HashSpec(rotations=False), draft=True).hash) <= 2


def test_the_kind_names_algorithm_size_libraries_and_orientation_mode() -> None:
    kinds = {HashSpec(a, 8, r).kind for a in ALGORITHMS for r in (True, False)}
    assert len(kinds) == 8
    kind = HashSpec().kind
    assert kind.startswith("phash:8:imagehash-") and "pillow-" in kind and ":canon" in kind
    assert HashSpec(rotations=False).kind != kind and HashSpec(trim=False).kind != kind


@pytest.mark.parametrize(("algo", "size"), [("md5", 8), ("phash", 16), ("dhash", 4)])
def test_unsupported_specs_are_refused(algo: str, size: int) -> None:
    with pytest.raises(ValueError):
        HashSpec(algo, size)


def test_a_caption_on_a_dark_photo_does_not_turn_its_canonical_orientation() -> None:
    # White text along the bottom of a darkened photo outweighs its own low frequencies: read from
    # the whole thumbnail, the copy's canonical orientation differed from the photo's (30+ bits
    # apart). The centre decides now, and the caption lies outside it.
    with Image.open(EVAL / "imagededup" / "base_images" / "ukbench09060.jpg") as im:
        dark = ImageEnhance.Brightness(im.convert("RGB")).enhance(0.3)
    captioned = dark.copy()
    size = captioned.height // 18
    ImageDraw.Draw(captioned).text((captioned.width // 20, captioned.height - 2 * size), "Holiday 2019 - (c) me",
                                   fill=(255, 255, 255), font_size=size, stroke_width=1, stroke_fill=(0, 0, 0))
    a, b = normalise_gray(dark), normalise_gray(captioned)
    whole = [canonical_branches(dct_of(thumbnail(trim_border(g))))[0][0] for g in (a, b)]
    assert whole[0] != whole[1]  # the old rule's decision flips
    assert distance(fingerprint(a, HashSpec()).hash, fingerprint(b, HashSpec()).hash) <= 10
