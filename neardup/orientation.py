"""The 8 symmetries of the square, and one canonical orientation per image.

A symmetry of an image (rotation by a multiple of 90 degrees, mirror) acts on its 2-D DCT-II block
by transposing it and flipping the signs of odd coefficients: mirroring x negates every column of
odd horizontal frequency u, mirroring y every row of odd vertical frequency v. So one DCT serves
all 8 orientations, and an image can be put in a canonical orientation decided by a few low
coefficients: transpose so that C(0,2) >= C(2,0), then mirror so that C(0,1) and C(1,0) are
positive. A rotated or mirrored copy reaches the same canonical block, hence the same hash, and
comparing canonical hashes costs what comparing plain hashes costs. When a decision is near a tie,
noise could tip it either way in a copy: the hashes of the other branches are kept as
alternatives, each marked with the decision (wall) it crossed, and every image marks the walls it
is near. An alternative need only meet the images near its wall (neardup.variants).
"""
from __future__ import annotations

from collections.abc import Callable
from itertools import product
from typing import Any, NamedTuple

import numpy as np


class Symmetry(NamedTuple):
    """transpose, then mirror x (negate odd u), then mirror y (negate odd v)."""

    transpose: bool
    mirror_x: bool
    mirror_y: bool


SYMMETRIES: tuple[Symmetry, ...] = tuple(Symmetry(*bits) for bits in product((False, True), repeat=3))
IDENTITY = SYMMETRIES[0]

# Near-tie band and reach, as fractions of the block's RMS AC coefficient. An image stores the
# hashes of the other branches of every decision within `margin` of its tie (its alternatives), and
# marks each decision within `reach` of its tie (its near walls). An alternative is compared only
# with the images near the wall it crossed, so a wide band costs little: an image's alternative
# and a copy's primary can only meet in the copy's frame when noise carried the copy across that
# wall, which leaves the copy near it. On 200,000 noisy copies of synthetic photo-like blocks
# (neardup.synthetic, "real" noise, <= 10 bits from the original): copies whose canonical
# decisions went apart (brute force over all 8 orientations found them), and the compare work
# against a single-hash pass (1 + twice the alternatives times the near share, per wall):
#   margin 0.07, every alternative against every hash (the rule before this one): 396, 1.136
#   margin 0.15 / reach 0.45: 48, 1.042    0.20 / 0.40: 25, 1.051    0.25 / 0.50: 6, 1.080
#   0.30 / 0.60: 1, 1.117
# With sign bits (sign_hash) nothing else is lost: 0 of 80,000 copies at 0.25 / 0.50, where
# imagehash's median bits lost 29, 28 of them to the orientation the distance was read in.
# Real edits (a caption, a border, a crop with a resize) carry a copy further from a tie than noise:
# on three edited-copy sets, true pairs the walls kept apart fell from 12 / 64 / 225 at reach 0.5
# to 2 / 58 / 151 at 1.0 (1.5 kept no more), for compare work of 1.17 / 1.24 / 1.20 against
# 1.10 / 1.15 / 1.10, and 1.13 on `neardup bench compare`'s synthetic photos.
DEFAULT_MARGIN = 0.25
DEFAULT_REACH = 1.0
# The three decisions, in the order they are taken; an alternative's wall is the first it crossed.
WALLS: tuple[str, ...] = ("transpose", "mirror_x", "mirror_y")
_WALL_BITS = len(WALLS)
_TAG_BITS = 2
# The ties word of a hash stored before ties were: near every wall, every alternative crossing the
# first, so that its alternatives meet every canonical hash (db/queries.sql packs a NULL as this).
EVERY_WALL = (1 << _WALL_BITS) - 1
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


def sign_hash(block: np.ndarray) -> int:
    """pHash bits of a low-frequency DCT block by sign: each coefficient above zero.

    The rotation-proof form's bits. Every symmetry maps these bits to a fixed reordering of them
    with the odd coefficients' bits inverted, so two images are exactly as far apart in every
    orientation. Above the median (imagehash's bits), they are not: a symmetry negates the odd
    coefficients and moves the median, and the same pair lay 8 bits apart in one orientation and
    12 in another, so that no single orientation could match brute force over all eight. Zero is
    the median of the AC coefficients' distribution (the DC coefficient is above both), so the
    two hashes differ in a few bits of a photo.
    """
    return bits_to_int64(block > 0)


def _bit_maps() -> tuple[np.ndarray, np.ndarray]:
    """For each symmetry: where each bit of a sign hash comes from, and whether it is inverted."""
    index = np.arange(64, dtype=np.float64).reshape(8, 8) + 1.0  # +1: no position is zero
    sources, flips = [], []
    for s in SYMMETRIES:
        moved = on_coefficients(index, s)
        sources.append(np.abs(moved).astype(np.int64).ravel() - 1)
        flips.append((moved < 0).ravel())
    return np.array(sources), np.array(flips)


_SOURCES, _FLIPS = _bit_maps()
def dihedral_hashes(hashes: np.ndarray) -> np.ndarray:
    """(8, n) uint64: each sign hash (an 8x8 block's, sign_hash) as its image's hash would be in
    each orientation, in SYMMETRIES order, from the bits alone: a symmetry moves coefficients
    (transpose) and negates the odd ones, so it moves bits and inverts some."""
    given = np.asarray(hashes)
    h = given.view(np.uint64) if given.dtype == np.int64 else given.astype(np.uint64)
    # Bit k of the row-major block is 1 << (63 - k): big-endian bytes unpack in that order. Packed
    # bits, not shifts and sums of 64-bit words: half the time (3 ms for 2,000 hashes).
    bits = np.unpackbits(h.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1).astype(bool)  # (n, 64)
    moved = bits[:, _SOURCES] ^ _FLIPS[None, :, :]  # (n, 8, 64)
    packed = np.packbits(moved, axis=2).view(">u8")[:, :, 0].astype(np.uint64)  # (n, 8)
    return np.ascontiguousarray(packed.T)


def orientation_hashes(block: np.ndarray, bits: Callable[[np.ndarray], int] = sign_hash) -> list[int]:
    """The hash of each of the 8 orientations, in SYMMETRIES order (for brute-force references)."""
    return [bits(on_coefficients(block, s)) for s in SYMMETRIES]


class Canonical(NamedTuple):
    """The stored form of one image: its canonical hash, its alternatives, and its ties word.

    ties packs the near walls (bit w set: decision WALLS[w] within reach of its tie) and, from bit
    3, two bits per alternative naming the wall it crossed (see pack_ties / unpack_ties).
    """

    hash: int
    alternatives: tuple[int, ...]
    ties: int


def canonical_symmetries(block: np.ndarray, margin: float = DEFAULT_MARGIN) -> list[Symmetry]:
    """The symmetry to the canonical orientation first, then those of near-tie alternatives."""
    return [s for s, _ in canonical_branches(block, margin)]


def canonical_form(block: np.ndarray, margin: float = DEFAULT_MARGIN,
                   reach: float = DEFAULT_REACH) -> Canonical:
    """Canonical hash (sign bits), alternatives (without repeats) with their walls, near walls."""
    branches = canonical_branches(block, margin)
    hashes = [sign_hash(on_coefficients(block, s)) for s, _ in branches]
    return stored_form(hashes, [w for _, w in branches], near_walls(block, reach))


def stored_form(hashes: list[int], walls: list[int], near: int) -> Canonical:
    """The branches' hashes (canonical first) as stored: an alternative equal to the canonical
    hash or to an earlier one is dropped, and the first of equals keeps its wall."""
    crossed: dict[int, int] = {}
    for h, wall in zip(hashes[1:], walls[1:]):
        if h != hashes[0]:
            crossed.setdefault(h, wall)
    return Canonical(hashes[0], tuple(crossed), pack_ties(near, list(crossed.values())))


def canonical_hashes(block: np.ndarray, margin: float = DEFAULT_MARGIN) -> tuple[int, tuple[int, ...]]:
    """(canonical pHash, alternative pHashes of near-tie orientations, without repeats)."""
    form = canonical_form(block, margin)
    return form.hash, form.alternatives


def near_walls(block: np.ndarray, reach: float = DEFAULT_REACH) -> int:
    """Bit w set when decision WALLS[w] is within reach of its tie (read in the canonical frame)."""
    t, first, second, scale = _statistics(block)
    transpose = t < 0
    near = (abs(t), abs(second if transpose else first), abs(first if transpose else second))
    return sum(1 << w for w, x in enumerate(near) if x < reach * scale)


def pack_ties(near: int, alternative_walls: list[int]) -> int:
    if len(alternative_walls) > 7:
        raise ValueError(f"{len(alternative_walls)} alternatives: at most 7 orientations are left")
    return near | sum(w << (_WALL_BITS + _TAG_BITS * k) for k, w in enumerate(alternative_walls))


def unpack_ties(ties: int, alternatives: int) -> tuple[int, list[int]]:
    """(near walls bit set, the wall of each of the first `alternatives` alternatives)."""
    return near_of(ties), [wall_of(ties, k) for k in range(alternatives)]


def near_of(ties: Any) -> Any:
    """The near-walls bit set of a ties word (an int, or a numpy array of them)."""
    return ties & EVERY_WALL


def wall_of(ties: Any, k: Any) -> Any:
    """The wall alternative k crossed (ints, or numpy arrays of words and places alike)."""
    return (ties >> (_WALL_BITS + _TAG_BITS * k)) & ((1 << _TAG_BITS) - 1)


def _statistics(block: np.ndarray) -> tuple[float, float, float, float]:
    # The transpose reads the even coefficients C(0,2) and C(2,0), which no mirror changes: a
    # linear statistic, where comparing |C(0,1)| with |C(1,0)| (the first rule) was near a tie
    # more than twice as often. Both mirrors then read one of the two largest coefficients.
    ac = block.ravel()[1:]
    scale = float(np.sqrt(np.mean(ac * ac))) or 1.0
    t = (float(block[0, 2]) - float(block[2, 0])) / _SQRT2
    return t, float(block[0, 1]), float(block[1, 0]), scale


def canonical_branches(block: np.ndarray, margin: float = DEFAULT_MARGIN) -> list[tuple[Symmetry, int]]:
    """Symmetries of the canonical branch and of every near-tie branch, with the wall each crossed
    (an index into WALLS; -1 for the canonical branch).

    Transpose so that C(0,2) >= C(2,0); mirror x so that C(0,1) > 0; mirror y so that C(1,0) > 0
    (both read after the transpose). Each decision reads coefficients the remaining choices keep:
    mirrors keep the even C(0,2) and C(2,0), mirror y keeps C(0,1) (v = 0 is even) and mirror x
    keeps C(1,0).
    """
    t, h, v, scale = _statistics(block)
    band = margin * scale
    found: list[Symmetry] = []
    for transpose in _choices(t < 0, abs(t) < band):
        first, second = (v, h) if transpose else (h, v)
        for mx in _choices(first < 0, abs(first) < band):
            found.extend(Symmetry(transpose, mx, my) for my in _choices(second < 0, abs(second) < band))
    # Symmetry's fields are the decisions in WALLS order: the first that differs is the wall.
    return [(s, next((w for w in range(_WALL_BITS) if s[w] != found[0][w]), -1)) for s in found]


def _choices(decided: bool, near_tie: bool) -> tuple[bool, ...]:
    return (decided, not decided) if near_tie else (decided,)
