"""Synthetic images for the compare benchmark, in the stored hash form, with planted near-copies.

An image is stood for by its low-frequency 8x8 DCT block (Gaussian, amplitude falling as
1/(1+u+v) like a photo's spectrum); its stored form is what the hash phase keeps
(neardup.orientation.canonical_form). A near-copy adds white noise to a block (a resized or
recompressed copy's error is about white in pixels, so in the orthonormal DCT too), drawn until the
plain hash (sign bits, as stored) differs in at most max_flips bits, and is then rotated or mirrored
for a share of them.

Two noise models. "real" draws the noise's RMS, relative to the block's AC RMS, log-uniformly over
0.002-0.2: the span measured on the shared eval set's true copies (WebP re-encode 0.002, resize
0.011, thumbnail 0.02, copyright overlay 0.2). "uniform" draws an absolute sigma uniformly up to
max_noise (4.5 by default, about 0.26 of a typical AC RMS): mostly heavy edits, far harsher than
the copies seen in the eval set, kept to show where the canonical orientation's recall ends.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neardup.orientation import (
    DEFAULT_MARGIN,
    DEFAULT_REACH,
    IDENTITY,
    SYMMETRIES,
    Symmetry,
    canonical_form,
    on_coefficients,
    orientation_hashes,
    sign_hash,
)

__all__ = ["NOISE_MODELS", "Planted", "SyntheticSet", "make_set", "orientation_distance"]

_FALLOFF = 1.0 / (1.0 + np.add.outer(np.arange(8), np.arange(8)))
_SCALE = 100.0


@dataclass(frozen=True)
class Planted:
    original: int  # index of the image copied
    copy: int  # index of the copy
    symmetry: Symmetry
    flips: int  # hash bits the noise flipped, before any rotation


@dataclass(frozen=True)
class SyntheticSet:
    blocks: np.ndarray  # (n, 8, 8) DCT blocks
    hashes: np.ndarray  # int64 canonical hash per image
    alternatives: list[tuple[int, ...]]  # near-tie alternatives per image (usually empty)
    planted: list[Planted]
    ties: list[int]  # ties word per image (orientation.pack_ties)

    def __len__(self) -> int:
        return len(self.hashes)

    def head(self, k: int) -> SyntheticSet:
        """The first k images, without the planted list."""
        return SyntheticSet(self.blocks[:k], self.hashes[:k], self.alternatives[:k], [], self.ties[:k])

    @property
    def stored_hashes(self) -> int:
        return len(self.hashes) + sum(len(a) for a in self.alternatives)


def _bit_distance(x: int, y: int) -> int:
    return ((x ^ y) & 0xFFFF_FFFF_FFFF_FFFF).bit_count()


NOISE_MODELS = ("real", "uniform")
_REAL_RELATIVE_NOISE = (0.002, 0.2)


def _sigma(block: np.ndarray, rng: np.random.Generator, noise: str, max_noise: float) -> float:
    if noise == "uniform":
        return float(rng.uniform(0.0, max_noise))
    ac = block.ravel()[1:]
    low, high = np.log(_REAL_RELATIVE_NOISE[0]), np.log(_REAL_RELATIVE_NOISE[1])
    return float(np.exp(rng.uniform(low, high)) * np.sqrt(np.mean(ac * ac)))


def _near_copy(block: np.ndarray, rng: np.random.Generator, max_flips: int,
               max_noise: float, noise: str) -> tuple[np.ndarray, int]:
    plain = sign_hash(block)
    while True:
        noisy = block + rng.normal(size=block.shape) * _sigma(block, rng, noise, max_noise)
        flips = _bit_distance(plain, sign_hash(noisy))
        if flips <= max_flips:
            return noisy, flips


def make_set(n: int, *, seed: int = 0, copy_share: float = 0.01, rotated_share: float = 0.5,
             max_flips: int = 10, max_noise: float = 4.5, margin: float = DEFAULT_MARGIN,
             reach: float = DEFAULT_REACH, noise: str = "uniform") -> SyntheticSet:
    """n images of which copy_share are planted near-copies of others (distinct originals)."""
    if noise not in NOISE_MODELS:
        raise ValueError(f"noise must be one of {NOISE_MODELS}, got {noise!r}")
    rng = np.random.default_rng(seed)
    copies = round(n * copy_share)
    originals = n - copies
    blocks = rng.normal(size=(n, 8, 8)) * _FALLOFF * _SCALE
    planted = []
    sources = rng.choice(originals, size=copies, replace=False) if copies else []
    for k, src in enumerate(sources):
        index = originals + k
        noisy, flips = _near_copy(blocks[src], rng, max_flips, max_noise, noise)
        rotated = rng.random() < rotated_share
        symmetry = SYMMETRIES[int(rng.integers(1, 8))] if rotated else IDENTITY
        blocks[index] = on_coefficients(noisy, symmetry)
        planted.append(Planted(int(src), index, symmetry, flips))
    stored = [canonical_form(b, margin, reach) for b in blocks]
    hashes = np.array([f.hash for f in stored], dtype=np.int64)
    return SyntheticSet(blocks, hashes, [f.alternatives for f in stored], planted, [f.ties for f in stored])


def orientation_distance(x: np.ndarray, y: np.ndarray) -> int:
    """The brute-force rotation-proof distance: every orientation of each against the other's plain hash."""
    ox, oy = orientation_hashes(x), orientation_hashes(y)
    return min(min(_bit_distance(h, oy[0]) for h in ox), min(_bit_distance(ox[0], h) for h in oy))
