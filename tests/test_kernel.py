"""The compiled kernel and rotation-proof matching against brute-force references."""
from __future__ import annotations

import numpy as np
import pytest
from test_matching import THRESHOLD, as_triples, brute_force, random_hashes, with_planted_copies

from neardup import kernel, variants
from neardup.kernel import close_pairs_fast, row_bands
from neardup.matching import close_pairs
from neardup.orientation import SYMMETRIES, canonical_form, on_coefficients, pack_ties
from neardup.synthetic import make_set, orientation_distance
from neardup.variants import HashBlock, block_pairs, distance_matrix


@pytest.fixture
def tiny_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    # Many bands with room for 2 pairs each: the thread split and the overflow rerun both run.
    monkeypatch.setattr(kernel, "_MIN_PARALLEL_PAIRS", 0)
    monkeypatch.setattr(kernel, "_BAND_CAPACITY", 2)
    monkeypatch.setattr(kernel, "_NUMPY_BELOW", 0)  # the compiled kernel, however small the input


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("same", [False, True])
def test_the_kernel_finds_exactly_the_brute_force_pairs_edges_included(
    threads: int, same: bool, tiny_bands: None
) -> None:
    rng = np.random.default_rng(threads * 10 + same)
    base = random_hashes(150, rng)
    a = np.concatenate([base, with_planted_copies(base, rng)])
    b = a if same else np.concatenate([with_planted_copies(base, rng), random_hashes(40, rng)])
    found = as_triples(close_pairs_fast(a, b, THRESHOLD, same=same, threads=threads))
    expected = brute_force(a, b, THRESHOLD, same)
    assert found == expected
    distances = {d for _, _, d in found}
    assert {THRESHOLD - 1, THRESHOLD} <= distances, "the planted edge distances must be exercised"


def test_the_kernel_agrees_with_numpy_on_a_larger_block_pair() -> None:
    rng = np.random.default_rng(5)
    a, b = random_hashes(3000, rng), random_hashes(2500, rng)
    b[:300] = with_planted_copies(a[:900], rng)
    for same, right in ((False, b), (True, a)):
        fast = close_pairs_fast(a, right, 20, same=same, threads=2)
        slow = close_pairs(a, right, 20, same=same)
        assert len(fast[0]) > 100
        assert all(np.array_equal(x, y) for x, y in zip(fast, slow))


def test_small_inputs_are_answered_by_numpy_until_the_compiled_kernel_is_loaded_with_its_exact_result(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(9)
    base = random_hashes(400, rng)
    a = np.concatenate([base, with_planted_copies(base, rng)])
    assert len(a) * len(a) // 2 < kernel._NUMPY_BELOW
    numpy_calls = []
    monkeypatch.setattr(kernel, "close_pairs", lambda *x, **k: numpy_calls.append(1) or close_pairs(*x, **k))
    monkeypatch.setattr(kernel, "_kernel_loaded", lambda: False)  # a fresh CLI process
    small = close_pairs_fast(a, a, THRESHOLD, same=True)
    assert numpy_calls == [1]
    monkeypatch.setattr(kernel, "_kernel_loaded", lambda: True)  # a worker, warmed at start
    compiled = close_pairs_fast(a, a, THRESHOLD, same=True)
    assert numpy_calls == [1]
    assert len(small[0]) >= 100
    assert all(np.array_equal(x, y) for x, y in zip(small, compiled))


def test_bands_split_the_triangle_into_equal_work() -> None:
    spans = row_bands(10_000, 10_000, True, 8)
    work = [sum(10_000 - i - 1 for i in range(s, e)) for s, e in spans]
    assert spans[0][0] == 0 and spans[-1][1] == 10_000 and len(spans) == 8
    assert max(work) / min(work) < 1.01
    assert spans[0][1] - spans[0][0] < spans[-1][1] - spans[-1][0]  # early rows are longer


def test_every_rotation_and_mirror_of_an_image_is_found_at_distance_zero() -> None:
    data = make_set(60, seed=3, copy_share=0.0)
    ids, hashes, alternatives, ties = [], [], [], []
    for k, block in enumerate(data.blocks):
        for s, symmetry in enumerate(SYMMETRIES):
            form = canonical_form(on_coefficients(block, symmetry))
            ids.append(k * 8 + s)
            hashes.append(form.hash)
            alternatives.append(form.alternatives)
            ties.append(form.ties)
    image = HashBlock.from_lists(ids, hashes, alternatives, ties)
    lo, hi, dist = block_pairs(image, image, THRESHOLD, same=True)
    zero = {(a, b) for a, b, d in zip(lo.tolist(), hi.tolist(), dist.tolist()) if d == 0}
    for k in range(60):
        views = range(k * 8, k * 8 + 8)
        assert all((a, b) in zero for a in views for b in views if a < b)


@pytest.mark.parametrize(("seed", "noise"), [(1, "uniform"), (2, "uniform"), (3, "real"), (4, "real")])
def test_rotated_and_mirrored_near_copies_are_found_as_brute_force_finds_them(seed: int, noise: str) -> None:
    # uniform noise up to 1.0: light edits; "real": the eval set's span, up to overlays.
    data = make_set(1500, seed=seed, copy_share=0.2, rotated_share=0.8, max_noise=1.0, noise=noise)
    ids = np.arange(100, 1600)
    block = HashBlock.from_lists(ids.tolist(), data.hashes.tolist(), data.alternatives, data.ties)
    lo, hi, _ = block_pairs(block, block, THRESHOLD, same=True)
    found = set(zip(lo.tolist(), hi.tolist()))
    rotated = [p for p in data.planted if p.symmetry != SYMMETRIES[0]]
    assert len(rotated) > 200
    for p in data.planted:
        by_brute_force = orientation_distance(data.blocks[p.original], data.blocks[p.copy]) <= THRESHOLD
        assert ((ids[p.original], ids[p.copy]) in found) == by_brute_force, p


def test_a_pair_matching_through_several_stored_hashes_is_reported_once_at_its_closest() -> None:
    # No ties words (hashes stored before them): every alternative meets every canonical hash.
    block = HashBlock.from_lists([1, 2], [0, 0b111], [[0b1], [0b11, 0b1]])
    lo, hi, dist = block_pairs(block, block, THRESHOLD, same=True)
    assert (lo.tolist(), hi.tolist(), dist.tolist()) == ([1], [2], [1])
    # Clustering compares every stored hash with every other: alternative 0b1 meets 0b1.
    matrix = distance_matrix(block)
    assert matrix.tolist() == [[0, 0], [0, 0]]


FAR = -1  # 64 bits from 0
TURNED = 0x0F0F_0F0F_0F0F_0F0F  # 32 bits from both


@pytest.fixture(params=["one pass", "by wall"])
def matching_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    # Small block pairs take one numpy pass sifted by the walls; large ones a kernel call per wall.
    monkeypatch.setattr(variants, "_ONE_PASS_BELOW", 10**12 if request.param == "one pass" else 0)
    return request.param


@pytest.mark.parametrize("same", [True, False])
@pytest.mark.parametrize("near", [0b001, 0b010, 0b100])
def test_an_alternative_meets_only_the_images_near_its_wall(same: bool, near: int, matching_path: str) -> None:
    wall = 1  # image 1's alternative crossed mirror_x
    one = ([1], [0], [[TURNED]], [pack_ties(0, [wall])])
    two = ([2], [TURNED], [[]], [near])
    if same:
        block = HashBlock.from_lists(*[x + y for x, y in zip(one, two)])
        found = block_pairs(block, block, THRESHOLD, same=True)
    else:
        found = block_pairs(HashBlock.from_lists(*one), HashBlock.from_lists(*two), THRESHOLD, same=False)
        back = block_pairs(HashBlock.from_lists(*two), HashBlock.from_lists(*one), THRESHOLD, same=False)
        assert all(np.array_equal(x, y) for x, y in zip(found, back))
    expected = ([1], [2], [0]) if near == 1 << wall else ([], [], [])
    assert tuple(x.tolist() for x in found) == expected


@pytest.mark.parametrize("same", [True, False])
def test_one_pass_and_a_kernel_call_per_wall_find_the_same_pairs(same: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_set(1200, seed=7, copy_share=0.2, rotated_share=0.8, noise="real")
    assert sum(map(len, data.alternatives)) > 150
    ids = np.arange(1200)
    parts = (ids,) if same else (ids[:600], ids[600:])
    blocks = [HashBlock.from_lists(k.tolist(), data.hashes[k].tolist(), [data.alternatives[i] for i in k],
                                   [data.ties[i] for i in k]) for k in parts]
    found = []
    for below in (10**12, 0):
        monkeypatch.setattr(variants, "_ONE_PASS_BELOW", below)
        found.append(block_pairs(blocks[0], blocks[-1], THRESHOLD, same=same))
    assert len(found[0][0]) > 40
    assert all(np.array_equal(x, y) for x, y in zip(*found))


def test_alternatives_meet_each_other_only_in_clustering(matching_path: str) -> None:
    block = HashBlock.from_lists([1, 2], [0, FAR], [[TURNED], [TURNED]], [pack_ties(0b111, [0])] * 2)
    assert block_pairs(block, block, THRESHOLD, same=True)[0].tolist() == []
    assert distance_matrix(block)[0, 1] == 0


def test_two_orientations_of_one_image_are_not_a_pair() -> None:
    block = HashBlock.from_lists([7, 8], [0, -1], [[0b1], []])
    lo, _, _ = block_pairs(block, block, THRESHOLD, same=True)
    assert lo.tolist() == []
