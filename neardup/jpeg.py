"""Grayscale JPEG decoding at the scale a hash needs, through libjpeg-turbo's DCT scaling.

simplejpeg decodes straight to grey at 1/2 to 1/8 scale, and with the EXIF orientation read
here from the APP1 segment, a JPEG needs no Pillow object at all: per photo that saves about a
tenth of the hashing time over Pillow's draft mode. Anything this path cannot do (CMYK, damaged
data, the package missing) returns None and Pillow decodes the file instead, which also gives the
usual one-line reasons for bad files. Both decode with libjpeg-turbo's scaled IDCT: same pixels.
"""
from __future__ import annotations

import struct
from PIL import Image

from neardup.hashspec import decoder_version

# What ImageOps.exif_transpose does for each EXIF orientation.
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ORIENTATION_TAG = 0x0112
_SOI = b"\xff\xd8\xff"
_DECODABLE = frozenset({"Gray", "YCbCr", "RGB"})


def header(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a JPEG simplejpeg can decode to grey, or None."""
    if not data.startswith(_SOI) or decoder_version() is None:
        return None
    import simplejpeg

    try:
        height, width, colourspace, _ = simplejpeg.decode_jpeg_header(data)
    except (ValueError, RuntimeError):
        return None
    return (width, height) if colourspace in _DECODABLE else None


def small_gray(data: bytes, side: int) -> tuple[Image.Image, bool] | None:
    """(the upright grey image at the smallest DCT scale keeping both sides >= side, whether the
    EXIF orientation turned it a quarter turn), or None when only Pillow can decode it."""
    import simplejpeg

    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace="GRAY", min_height=side, min_width=side)
    except (ValueError, RuntimeError):
        return None
    gray = Image.fromarray(pixels[:, :, 0])
    orientation = exif_orientation(data)
    method = _EXIF_TRANSPOSE.get(orientation)
    return (gray.transpose(method) if method is not None else gray), orientation in (5, 6, 7, 8)


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag of a JPEG (1, upright, when absent or unreadable)."""
    try:
        return _orientation(data)
    except (struct.error, IndexError, ValueError):
        return 1


def _orientation(data: bytes) -> int:
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xDA, 0xD9):  # start of scan, end of image: no EXIF before the pixels
            return 1
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        segment = data[pos + 4:pos + 2 + length]
        if marker == 0xE1 and segment.startswith(b"Exif\x00\x00"):
            return _tiff_orientation(segment[6:])
        pos += 2 + length
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    endian = {b"II": "<", b"MM": ">"}[tiff[:2]]
    (ifd,) = struct.unpack(endian + "I", tiff[4:8])
    (count,) = struct.unpack(endian + "H", tiff[ifd:ifd + 2])
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, kind = struct.unpack(endian + "HH", tiff[entry:entry + 4])
        if tag == _ORIENTATION_TAG and kind == 3:  # SHORT, stored in the entry itself
            return struct.unpack(endian + "H", tiff[entry + 8:entry + 10])[0]
    return 1
