"""The dihedral group on DCT blocks, and the canonical orientation."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.fftpack

from neardup.orientation import (
    IDENTITY,
    SYMMETRIES,
    Symmetry,
    canonical_hashes,
    canonical_symmetries,
    on_coefficients,
    on_pixels,
    orientation_hashes,
    phash_of_block,
)


def dct2(pixels: np.ndarray) -> np.ndarray:
    return scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)


def random_block(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    falloff = 1.0 / (1.0 + np.add.outer(np.arange(8), np.arange(8)))
    return rng.normal(size=(8, 8)) * falloff * 100


def test_the_eight_symmetries_are_distinct() -> None:
    pixels = np.arange(12.0).reshape(3, 4) ** 1.5
    images = {on_pixels(pixels, s).tobytes() + bytes(on_pixels(pixels, s).shape) for s in SYMMETRIES}
    assert len(images) == 8


@pytest.mark.parametrize("s", SYMMETRIES)
def test_a_symmetry_on_the_coefficients_equals_the_symmetry_on_the_pixels(s: Symmetry) -> None:
    pixels = np.random.default_rng(1).random((32, 32)) * 255
    assert np.allclose(on_coefficients(dct2(pixels)[:8, :8], s), dct2(on_pixels(pixels, s).copy())[:8, :8])


@pytest.mark.parametrize("seed", range(20))
def test_every_orientation_of_a_block_has_the_same_canonical_hash(seed: int) -> None:
    block = random_block(seed)
    canonical = {canonical_hashes(on_coefficients(block, s), margin=0.0)[0] for s in SYMMETRIES}
    assert len(canonical) == 1


def test_orientation_hashes_start_with_the_plain_hash() -> None:
    block = random_block(3)
    hashes = orientation_hashes(block)
    assert hashes[0] == phash_of_block(block) and len(set(hashes)) == 8


def test_a_near_tie_keeps_the_other_branch_as_an_alternative() -> None:
    block = random_block(4)
    block[0, 1], block[1, 0] = 50.0, 49.9  # |h| and |v| almost equal: the transpose is a toss-up
    symmetries = canonical_symmetries(block)
    assert {s.transpose for s in symmetries} == {False, True}
    primary, alternatives = canonical_hashes(block)
    assert alternatives and primary not in alternatives


def test_a_clear_decision_stores_no_alternative() -> None:
    block = random_block(5)
    block[0, 1], block[1, 0], block[1, 1] = 80.0, -30.0, -40.0
    assert canonical_symmetries(block) == [Symmetry(False, False, True)]
    assert canonical_hashes(block)[1] == ()
    assert canonical_symmetries(on_coefficients(block, IDENTITY)) == canonical_symmetries(block)
