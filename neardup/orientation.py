"""The 8 symmetries of the square, and one canonical orientation per image.

A symmetry of an image (rotation by a multiple of 90 degrees, mirror) acts on its 2-D DCT-II block
by transposing it and flipping the signs of odd coefficients: mirroring x negates every column of odd
horizontal frequency u, mirroring y every row of odd vertical frequency v. So one DCT serves all 8
orientations, and an image can be put in a canonical orientation decided by its first odd
coefficients: transpose so that |C(0,1)| >= |C(1,0)|, then mirror so that C(0,1) and C(1,1) are
positive. A rotated or
mirrored copy reaches the same canonical block, hence the same hash, and comparing canonical hashes
costs what comparing plain hashes costs. When a decision is near a tie, noise could tip it either
way in a copy: the hashes of the other branches are kept as alternatives (few images need them).
"""
from __future__ import annotations

from itertools import product
from typing import NamedTuple

import numpy as np


class Symmetry(NamedTuple):
    """transpose, then mirror x (negate odd u), then mirror y (negate odd v)."""

    transpose: bool
    mirror_x: bool
    mirror_y: bool


SYMMETRIES: tuple[Symmetry, ...] = tuple(Symmetry(*bits) for bits in product((False, True), repeat=3))
IDENTITY = SYMMETRIES[0]

# Near-tie band, as a fraction of the block's RMS AC coefficient. Wider catches noisier copies and
# stores more alternatives; the compare phase pays for each alternative. Measured on two sets of
# edited copies of natural photos (scripts/make_transform_set.py; 1,049 fixed edits / 820 random
# ones), copies hashing more than 10 from their original, and extra hashes stored per file:
#   margin 0.05: 43 / 44 copies, 4.7% / 7.1%    margin 0.07: 40 / 36, 7.3% / 10.2%
#   margin 0.10: 34 / 31, 9.4% / 12.7%          margin 0.20: 33 / -, 14.9% / -
# 0.07 keeps the extra compare work near 10% for most of the recall that wider bands buy. (Figures
# of the first rule; the C(1,1) rule of canonical_symmetries, at 0.07, turned the wrong way 10 of
# 17,700 noisy turned copies of the eval photos against 34, storing 1.119 hashes a photo against
# 1.102, and 114 of 60,000 synthetic copies against 191.)
DEFAULT_MARGIN = 0.07
_SQRT2 = float(np.sqrt(2.0))


def on_coefficients(block: np.ndarray, s: Symmetry) -> np.ndarray:
    """The DCT block (rows: vertical frequency v, columns: horizontal u) of the transformed image."""
    out = block.T if s.transpose else block
    n_rows, n_cols = out.shape
    if s.mirror_x:
        out = out * np.where(np.arange(n_cols) % 2 == 1, -1.0, 1.0)[None, :]
    if s.mirror_y:
        out = out * np.where(np.arange(n_rows) % 2 == 1, -1.0, 1.0)[:, None]
    return out


def on_pixels(pixels: np.ndarray, s: Symmetry) -> np.ndarray:
    """The same symmetry on a 2-D pixel array (rows: y, columns: x)."""
    out = pixels.T if s.transpose else pixels
    if s.mirror_x:
        out = out[:, ::-1]
    if s.mirror_y:
        out = out[::-1, :]
    return out


def bits_to_int64(bits: np.ndarray) -> int:
    """Row-major bits, first bit most significant (imagehash's hex order), as a signed 64-bit int."""
    value = int("".join("1" if b else "0" for b in bits.ravel()), 2)
    return value - (1 << 64) if value >= 1 << 63 else value


def phash_of_block(block: np.ndarray) -> int:
    """pHash bits of a low-frequency DCT block: above its median (as imagehash.phash)."""
    return bits_to_int64(block > np.median(block))


def orientation_hashes(block: np.ndarray) -> list[int]:
    """pHash of each of the 8 orientations, in SYMMETRIES order (for brute-force references)."""
    return [phash_of_block(on_coefficients(block, s)) for s in SYMMETRIES]


def canonical_symmetries(block: np.ndarray, margin: float = DEFAULT_MARGIN) -> list[Symmetry]:
    """The symmetry to the canonical orientation first, then those of near-tie alternatives.

    Transpose so that |C(0,1)| >= |C(1,0)|; mirror x so that C(0,1) > 0; mirror y so that C(1,1) > 0.
    Each decision reads a coefficient the remaining choices cannot change: mirrors keep magnitudes,
    mirror y keeps C(0,1) (v = 0 is even), and C(1,1) is odd in both directions, so it settles the
    last choice. Deciding mirror y by C(1,1) rather than by the smaller of C(0,1) and C(1,0) (the old
    rule, whose second coefficient is the smaller of two by construction, so more often near zero)
    halved the copies whose orientation noise tipped past the band, at the same number of stored
    hashes. The transpose compares two magnitudes whose difference carries the noise of both, hence
    its band is measured on that difference divided by sqrt 2.
    """
    h, v = float(block[0, 1]), float(block[1, 0])
    ac = block.ravel()[1:]
    scale = float(np.sqrt(np.mean(ac * ac))) or 1.0
    band = margin * scale
    transposes = _choices(abs(h) < abs(v), abs(abs(h) - abs(v)) / _SQRT2 < band)
    diagonal = float(block[1, 1])
    found: list[Symmetry] = []
    for t in transposes:
        first = v if t else h
        for mx in _choices(first < 0, abs(first) < band):
            flipped = -diagonal if mx else diagonal
            for my in _choices(flipped < 0, abs(diagonal) < band):
                found.append(Symmetry(t, mx, my))
    return found


def canonical_hashes(block: np.ndarray, margin: float = DEFAULT_MARGIN) -> tuple[int, tuple[int, ...]]:
    """(canonical pHash, alternative pHashes of near-tie orientations, without repeats)."""
    hashes = [phash_of_block(on_coefficients(block, s)) for s in canonical_symmetries(block, margin)]
    primary = hashes[0]
    alternatives = tuple(dict.fromkeys(x for x in hashes[1:] if x != primary))
    return primary, alternatives


def _choices(decided: bool, near_tie: bool) -> tuple[bool, ...]:
    return (decided, not decided) if near_tie else (decided,)
