"""The dihedral group on DCT blocks, and the canonical orientation."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.fftpack

from neardup.orientation import (
    DEFAULT_MARGIN,
    DEFAULT_REACH,
    IDENTITY,
    SYMMETRIES,
    WALLS,
    Symmetry,
    canonical_form,
    canonical_hashes,
    canonical_symmetries,
    dihedral_hashes,
    on_coefficients,
    near_of,
    near_walls,
    on_pixels,
    orientation_hashes,
    pack_ties,
    phash_of_block,
    sign_hash,
    unpack_ties,
    wall_of,
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
    assert hashes[0] == sign_hash(block) and len(set(hashes)) == 8
    assert orientation_hashes(block, phash_of_block)[0] == phash_of_block(block)


def distance(x: int, y: int) -> int:
    return ((x ^ y) & 0xFFFF_FFFF_FFFF_FFFF).bit_count()


def test_two_blocks_are_equally_far_apart_in_every_orientation_by_sign_bits_not_by_median_bits() -> None:
    rng = np.random.default_rng(8)
    median_varies = False
    for seed in range(40):
        x = random_block(seed)
        y = x + rng.normal(size=(8, 8)) * 4.0
        by_sign = {distance(sign_hash(on_coefficients(x, s)), sign_hash(on_coefficients(y, s))) for s in SYMMETRIES}
        assert len(by_sign) == 1
        by_median = {distance(phash_of_block(on_coefficients(x, s)), phash_of_block(on_coefficients(y, s)))
                     for s in SYMMETRIES}
        median_varies |= len(by_median) > 1
    assert median_varies  # why the stored form does not use imagehash's bits


def test_a_near_tie_keeps_the_other_branch_as_an_alternative_marked_with_its_wall() -> None:
    block = random_block(4)
    block[0, 2], block[2, 0] = 30.0, 29.9  # the transpose is a toss-up
    block[0, 1], block[1, 0] = 80.0, 60.0  # both mirrors are clear
    symmetries = canonical_symmetries(block)
    assert {s.transpose for s in symmetries} == {False, True}
    form = canonical_form(block)
    assert form.alternatives and form.hash not in form.alternatives
    near, walls = unpack_ties(form.ties, len(form.alternatives))
    assert near == 1 << WALLS.index("transpose")
    assert walls == [WALLS.index("transpose")] * len(form.alternatives)


def test_a_clear_decision_stores_no_alternative_and_is_near_no_wall() -> None:
    block = random_block(5)
    block[0, 2], block[2, 0] = 40.0, -30.0
    block[0, 1], block[1, 0] = 80.0, -60.0
    assert canonical_symmetries(block) == [Symmetry(False, False, True)]
    assert canonical_form(block) == (canonical_hashes(block)[0], (), 0)
    assert canonical_symmetries(on_coefficients(block, IDENTITY)) == canonical_symmetries(block)


def test_a_decision_within_reach_but_beyond_the_margin_marks_its_wall_only() -> None:
    block = random_block(6)
    block[0, 2], block[2, 0] = 40.0, -30.0
    block[0, 1], block[1, 0] = 80.0, 0.0
    scale = float(np.sqrt(np.mean(block.ravel()[1:] ** 2)))
    block[1, 0] = -(DEFAULT_MARGIN + DEFAULT_REACH) / 2 * scale
    form = canonical_form(block)
    assert form.alternatives == ()
    assert unpack_ties(form.ties, 0) == (1 << WALLS.index("mirror_y"), [])


@pytest.mark.parametrize("seed", range(10))
def test_every_orientation_of_a_block_is_near_the_same_walls(seed: int) -> None:
    block = random_block(seed)
    assert len({near_walls(on_coefficients(block, s)) for s in SYMMETRIES}) == 1


def test_ties_words_round_trip() -> None:
    assert unpack_ties(pack_ties(0b101, [2, 0, 1, 1]), 4) == (0b101, [2, 0, 1, 1])
    # The same reading over numpy arrays, as a packed block is read.
    words = np.array([pack_ties(0b101, [2, 0, 1, 1]), pack_ties(0b010, [1])], dtype=np.int64)
    assert near_of(words).tolist() == [0b101, 0b010]
    assert wall_of(words, np.array([0, 0])).tolist() == [2, 1]
    assert wall_of(words[[0, 0]], np.array([2, 3])).tolist() == [1, 1]
    with pytest.raises(ValueError):
        pack_ties(0, [0] * 8)


@pytest.mark.parametrize("seed", range(5))
def test_a_sign_hash_turned_bit_by_bit_equals_the_hash_of_the_turned_block(seed: int) -> None:
    blocks = [random_block(seed * 100 + k) for k in range(20)]
    plain = np.array([sign_hash(b) for b in blocks], dtype=np.int64)
    turned = dihedral_hashes(plain)
    assert turned.shape == (8, 20) and turned.dtype == np.uint64
    for k, b in enumerate(blocks):
        expected = np.array(orientation_hashes(b), dtype=np.int64).view(np.uint64)
        assert turned[:, k].tolist() == expected.tolist()

