"""Perceptual hashing of image files.

Every failure surfaces as a :class:`HashError` (neardup.failures) whose message is one line and
does not repeat the path, so callers can store it next to the path and show it in a table.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from blake3 import blake3
from PIL import Image, ImageOps, UnidentifiedImageError

from neardup import jpeg
from neardup.failures import HashError, check_pixels, one_line_errors, open_regular
from neardup.fingerprint import fingerprint
from neardup.hashspec import HashSpec

__all__ = [
    "PLAIN",
    "Content",
    "HashError",
    "ImageInfo",
    "hash_content",
    "hash_file",
    "normalise",
    "normalise_gray",
    "phash64",
    "read_content",
    "to_signed64",
    "to_unsigned64",
]

# imagehash.phash of the upright image as it is: what hash_file computes unless told otherwise.
PLAIN = HashSpec(rotations=False, trim=False)
# JPEGs decoded in draft mode are scaled down in the DCT domain to the smallest of 1/2, 1/4, 1/8
# that keeps both sides at least this long: twice pHash's 32x32 thumbnail keeps the hash within a
# bit or two of a full decode's at about a quarter of the cost.
DRAFT_SIDE = 64
# Files up to this size stay in memory between their digest and their decode (one read); bigger
# ones are read again when decoded rather than held by a batch.
KEEP_BYTES = 32 * 1024 * 1024

_SIGN_BIT = 1 << 63
_MASK64 = (1 << 64) - 1
# Colour modes with an alpha band; their hidden RGB is often black or garbage.
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})


@dataclass(frozen=True)
class ImageInfo:
    """What hashing learns about an image."""

    hash: int  # signed 64-bit hash, bit order of imagehash's hex string
    width: int  # of the full image, after EXIF orientation is applied
    height: int
    alternatives: tuple[int, ...] = ()  # near-tie orientations' hashes (see orientation.py)
    ties: int = 0  # orientation.pack_ties: the walls it is near, the wall each alternative crossed
    thumb: bytes | None = None  # neardup.verify's thumbnail, canonical orientation


def to_signed64(u: int) -> int:
    """Reinterpret an unsigned 64-bit value as two's-complement (PostgreSQL bigint)."""
    if not 0 <= u <= _MASK64:
        raise ValueError(f"{u} is not an unsigned 64-bit value")
    return u - (1 << 64) if u & _SIGN_BIT else u


def to_unsigned64(s: int) -> int:
    """Inverse of :func:`to_signed64`."""
    if not -_SIGN_BIT <= s < _SIGN_BIT:
        raise ValueError(f"{s} is not a signed 64-bit value")
    return s & _MASK64


def phash64(image: Image.Image) -> int:
    """64-bit pHash of ``image`` as a signed int, after :func:`normalise`."""
    return fingerprint(normalise_gray(image), PLAIN).hash


def normalise(image: Image.Image) -> Image.Image:
    """Return an upright RGB copy of the first frame, transparency on white."""
    return _rgb(ImageOps.exif_transpose(_first_frame(image)))


def normalise_gray(image: Image.Image) -> Image.Image:
    """Grayscale (mode L) of :func:`normalise`'s RGB rendering; an upright L image as it is."""
    upright = ImageOps.exif_transpose(_first_frame(image))
    if upright.mode == "L" and "transparency" not in upright.info:
        return upright  # L -> RGB -> L is exact: skip the round trip
    return _rgb(upright).convert("L")


def _rgb(upright: Image.Image) -> Image.Image:
    if upright.mode == "F" or upright.mode.startswith("I"):
        return _stretch_to_8bit(upright).convert("RGB")
    if upright.mode in _ALPHA_MODES or "transparency" in upright.info:
        return _on_white(upright)
    return upright if upright.mode == "RGB" else upright.convert("RGB")


def hash_file(path: str | bytes, spec: HashSpec = PLAIN, *, draft: bool = False) -> ImageInfo:
    """Decode the file and hash it under ``spec``; any failure raises :class:`HashError`.

    With ``draft`` a JPEG is decoded at the reduced scale the hash needs (DRAFT_SIDE).
    """
    with one_line_errors(), open_regular(path) as stream:
        if draft and os.fstat(stream.fileno()).st_size <= KEEP_BYTES:
            return _hash_stream(io.BytesIO(stream.read()), spec, draft)  # the fast JPEG path wants bytes
        return _hash_stream(stream, spec, draft)


@dataclass(frozen=True)
class Content:
    """A file's content digest, and its bytes when small enough to keep until it is decoded."""

    digest: bytes
    data: bytes | None


def read_content(path: str | bytes) -> Content:
    """Read a file once for its BLAKE3 digest (byte-identical files share it); failures raise
    HashError. BLAKE3, not SHA-256: as collision-proof, and 0.08 ms a 360 KB photo against 0.21
    (3 % of the hash phase). A digest stored by SHA-256 (before) never equals a BLAKE3 one, so the
    two never mix: such a file is only not known by its bytes."""
    with one_line_errors(), open_regular(path) as stream:
        if os.fstat(stream.fileno()).st_size <= KEEP_BYTES:
            data = stream.read()
            return Content(blake3(data).digest(), data)
        return Content(hashlib.file_digest(stream, blake3).digest(), None)  # type: ignore[arg-type]


def hash_content(path: str | bytes, content: Content, spec: HashSpec, *, draft: bool = False) -> ImageInfo:
    """:func:`hash_file` from the bytes :func:`read_content` kept (the file is not read again)."""
    if content.data is None:
        return hash_file(path, spec, draft=draft)
    with one_line_errors():
        return _hash_stream(io.BytesIO(content.data), spec, draft)


def _first_frame(image: Image.Image) -> Image.Image:
    # Animated files are hashed by frame 0 whatever frame the caller left
    # them on; tell() is free, whereas n_frames may scan a whole GIF.
    if image.tell() != 0:
        image.seek(0)
    return image


def _stretch_to_8bit(image: Image.Image) -> Image.Image:
    # convert() clips 16-bit and float samples at 255, which turns a normal
    # 16-bit PNG white. A linear stretch keeps the picture, and pHash ignores
    # brightness and contrast.
    values = np.nan_to_num(np.asarray(image, dtype=np.float64))
    low, high = float(values.min()), float(values.max())
    scale = 255.0 / (high - low) if high > low else 0.0
    return Image.fromarray(np.rint((values - low) * scale).astype(np.uint8))


def _on_white(image: Image.Image) -> Image.Image:
    # Dropping alpha would expose whatever RGB hides under transparent
    # pixels (usually black), so two different logos would hash the same.
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


@functools.cache
def heif_support() -> bool:
    """Register pillow-heif's HEIC/HEIF opener if the optional extra is installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _open_image(stream: BinaryIO) -> Image.Image:
    heif_support()
    try:
        return Image.open(stream)
    except UnidentifiedImageError:
        stream.seek(0)
        head = stream.read(12)
        # ISO media files (HEIC, AVIF) say what they are in their 'ftyp' box.
        if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS and not heif_support():
            raise HashError("HEIC/HEIF image, but pillow-heif is not installed "
                            "(pip install 'neardup[heif]')") from None
        if head[4:8] == b"ftyp" and head[8:12] in _AVIF_BRANDS:
            raise HashError("AVIF image, but this Pillow cannot decode AVIF") from None
        raise


def _hash_stream(stream: BinaryIO, spec: HashSpec, draft: bool) -> ImageInfo:
    fast = _fast_jpeg(stream, spec) if draft else None
    return fast if fast is not None else _hash_with_pillow(stream, spec, draft)


def _fast_jpeg(stream: BinaryIO, spec: HashSpec) -> ImageInfo | None:
    # A JPEG held in memory decodes without Pillow (see jpeg.py); None: let Pillow do it.
    if not isinstance(stream, io.BytesIO):
        return None
    data = stream.getvalue()
    full = jpeg.header(data)
    if full is None:
        return None
    check_pixels(full)
    decoded = jpeg.small_gray(data, DRAFT_SIDE)
    if decoded is None:
        return None
    gray, turned = decoded
    found = fingerprint(gray, spec)
    width, height = full[::-1] if turned else full
    return ImageInfo(found.hash, width, height, found.alternatives, found.ties, found.thumb)


def _hash_with_pillow(stream: BinaryIO, spec: HashSpec, draft: bool) -> ImageInfo:
    # Pillow only warns between 1x and 2x MAX_IMAGE_PIXELS; as an error the
    # warning stops open() before any pixel memory is allocated.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with _open_image(stream) as image:
            check_pixels(image.size)
            full = image.size
            if draft and image.format == "JPEG":
                image.draft("L", (DRAFT_SIDE, DRAFT_SIDE))
            decoded = image.size
            image.load()
            gray = normalise_gray(image)
            turned = gray.size != decoded and gray.size == decoded[::-1]
    found = fingerprint(gray, spec)
    # The EXIF step may have turned the image a quarter turn: the full size turns with it.
    width, height = full[::-1] if turned else full
    return ImageInfo(found.hash, width, height, found.alternatives, found.ties, found.thumb)


