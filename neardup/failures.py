"""Reading an image file safely, and a one-line reason for every way hashing it can fail.

Every failure surfaces as a :class:`HashError` whose message is one line and does not repeat the
path, so callers can store it next to the path and show it in a table.
"""
from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

__all__ = ["HashError", "check_pixels", "one_line_errors", "open_regular"]

# Pillow's bomb messages: "Image size (N pixels) exceeds limit of M pixels, ..."
_BOMB_NUMBERS = re.compile(r"\((\d+) pixels\) exceeds limit of (\d+)")
# Lets os.open return at once on a FIFO instead of waiting for a writer.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_MAX_REASON = 200


class HashError(Exception):
    """A file could not be hashed; ``str(error)`` is a one-line reason."""


@contextmanager
def one_line_errors() -> Iterator[None]:
    try:
        yield
    except HashError:
        raise
    except Exception as error:  # Pillow plugins raise many types on bad data
        raise HashError(_reason(error)) from error


def open_regular(path: str | bytes) -> BinaryIO:
    fd = os.open(path, os.O_RDONLY | _NONBLOCK)
    try:
        _check_regular(os.fstat(fd))
        if _NONBLOCK:
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _check_regular(info: os.stat_result) -> None:
    # fstat on the open descriptor, not stat on the path, so the file checked
    # is the file read even if the path is swapped meanwhile.
    if stat.S_ISDIR(info.st_mode):
        raise HashError("is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise HashError(f"not a regular file ({_kind(info.st_mode)})")
    if info.st_size == 0:
        raise HashError("empty file (0 bytes)")


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISFIFO: "fifo",
        stat.S_ISSOCK: "socket",
        stat.S_ISCHR: "character device",
        stat.S_ISBLK: "block device",
    }
    return next((name for test, name in kinds.items() if test(mode)), "special file")


def check_pixels(size: tuple[int, int]) -> None:
    # Backstop for the warning filter above: catch_warnings edits process-wide
    # state, so a concurrent thread can restore the default filter under us.
    limit = Image.MAX_IMAGE_PIXELS
    pixels = size[0] * size[1]
    if limit is not None and pixels > limit:
        raise HashError(f"decompression bomb: {pixels} pixels exceeds limit {limit}")


def _reason(error: Exception) -> str:
    if isinstance(error, UnidentifiedImageError):
        return "not an image (cannot identify image file)"
    if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return _bomb_reason(str(error))
    if isinstance(error, FileNotFoundError):
        return "file vanished before hashing"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, MemoryError):
        return "out of memory while decoding"
    return _decode_reason(error)


def _decode_reason(error: Exception) -> str:
    text = _one_line(str(error)) or type(error).__name__
    if isinstance(error, EOFError) or "truncated" in text or "broken data stream" in text:
        return "truncated image"
    if isinstance(error, OSError) and error.strerror:
        # strerror, not str(): the latter repeats the path.
        return _one_line(error.strerror).lower()
    return f"cannot decode image ({text})"


def _bomb_reason(message: str) -> str:
    found = _BOMB_NUMBERS.search(message)
    if found is None:
        return "decompression bomb"
    return f"decompression bomb: {found[1]} pixels exceeds limit {found[2]}"


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:_MAX_REASON] if lines else ""
