from __future__ import annotations

import numpy as np
import pytest

from neardup import matching
from neardup.matching import close_pairs

THRESHOLD = 10
Triples = list[tuple[int, int, int]]


def flip_bits(value: int, count: int, rng: np.random.Generator) -> int:
    positions = rng.choice(64, size=count, replace=False)
    mask = sum(1 << int(p) for p in positions)
    return int(np.array([value], dtype=np.int64).view(np.uint64)[0]) ^ mask


def as_int64(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.uint64).view(np.int64)


def random_hashes(count: int, rng: np.random.Generator) -> np.ndarray:
    low, high = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    return rng.integers(low, high, size=count, dtype=np.int64, endpoint=True)


def with_planted_copies(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Copies at threshold-1, threshold and threshold+1 bits, plus exact ones,
    # so both edges of "<= threshold" are exercised.
    flips = [THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 0]
    sources = range(0, len(base), 3)
    return as_int64([flip_bits(int(base[i]), flips[n % 4], rng) for n, i in enumerate(sources)])


def brute_force(a: np.ndarray, b: np.ndarray, threshold: int, same: bool) -> Triples:
    ua, ub = [int(x) for x in a.view(np.uint64)], [int(y) for y in b.view(np.uint64)]
    return [
        (i, j, (x ^ y).bit_count())
        for i, x in enumerate(ua)
        for j, y in enumerate(ub)
        if (x ^ y).bit_count() <= threshold and (not same or i < j)
    ]


def as_triples(result: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Triples:
    return list(zip(*(column.tolist() for column in result)))


@pytest.fixture
def blocks() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20240611)
    a = random_hashes(300, rng)
    return a, np.concatenate([random_hashes(200, rng), with_planted_copies(a, rng)])


def test_close_pairs_between_two_blocks_equals_brute_force(
    blocks: tuple[np.ndarray, np.ndarray],
) -> None:
    a, b = blocks
    expected = brute_force(a, b, THRESHOLD, same=False)
    assert len(expected) > 50  # the planted copies really are there
    assert as_triples(close_pairs(a, b, THRESHOLD, same=False)) == expected


def test_a_block_against_itself_equals_brute_force(blocks: tuple[np.ndarray, np.ndarray]) -> None:
    both = np.concatenate(blocks)
    expected = brute_force(both, both, THRESHOLD, same=True)
    assert len(expected) > 50
    assert as_triples(close_pairs(both, both, THRESHOLD, same=True)) == expected


def test_a_pair_at_exactly_the_threshold_is_kept_and_one_more_bit_is_not() -> None:
    rng = np.random.default_rng(7)
    base = random_hashes(1, rng)
    origin = int(base[0])
    b = as_int64([flip_bits(origin, THRESHOLD, rng), flip_bits(origin, THRESHOLD + 1, rng)])
    ia, ib, dist = close_pairs(base, b, THRESHOLD, same=False)
    assert (ia.tolist(), ib.tolist(), dist.tolist()) == ([0], [0], [THRESHOLD])


def test_same_block_pairs_have_i_below_j_and_no_self_pairs() -> None:
    hashes = np.array([5, 5, 5, -1, -1], dtype=np.int64)
    ia, ib, dist = close_pairs(hashes, hashes, 0, same=True)
    assert list(zip(ia.tolist(), ib.tolist())) == [(0, 1), (0, 2), (1, 2), (3, 4)]
    assert dist.tolist() == [0, 0, 0, 0]


def test_without_same_a_block_matches_itself_on_the_diagonal() -> None:
    hashes = np.array([1, 2**40], dtype=np.int64)
    ia, ib, _ = close_pairs(hashes, hashes, 0, same=False)
    assert list(zip(ia.tolist(), ib.tolist())) == [(0, 0), (1, 1)]


@pytest.mark.parametrize(("n_a", "n_b"), [(0, 0), (0, 5), (5, 0)])
def test_empty_inputs_give_empty_int64_results(n_a: int, n_b: int) -> None:
    rng = np.random.default_rng(1)
    result = close_pairs(random_hashes(n_a, rng), random_hashes(n_b, rng), 64, same=False)
    assert [(column.shape, column.dtype) for column in result] == [((0,), np.int64)] * 3


def test_an_empty_block_against_itself_is_fine() -> None:
    empty = np.empty(0, dtype=np.int64)
    assert all(len(column) == 0 for column in close_pairs(empty, empty, 5, same=True))


def test_tiny_tiles_give_the_same_answer_as_one_tile(
    blocks: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = blocks
    both = np.concatenate(blocks)
    # Swapped too, so that some matches lie left of the diagonal (ib < ia).
    cases = [(a, b, False), (b, a, False), (both, both, True)]
    whole = [as_triples(close_pairs(x, y, THRESHOLD, same=same)) for x, y, same in cases]
    # 700 bytes is 70 pairs: one-row bands, and b split into column tiles.
    monkeypatch.setattr(matching, "_TILE_BYTES", 700)
    assert matching._tile_shape(len(b)) == (1, 70)
    assert [as_triples(close_pairs(x, y, THRESHOLD, same=same)) for x, y, same in cases] == whole
    # 70 000 bytes: bands of many rows, b in one tile.
    monkeypatch.setattr(matching, "_TILE_BYTES", 70_000)
    assert matching._tile_shape(len(b)) == (7000 // len(b), len(b))
    assert [as_triples(close_pairs(x, y, THRESHOLD, same=same)) for x, y, same in cases] == whole


def test_the_tiles_stay_within_the_memory_budget_for_any_block_size() -> None:
    for n_right in (1, 4096, 10**6, 10**8):
        rows, cols = matching._tile_shape(n_right)
        assert rows * cols * matching._BYTES_PER_PAIR <= matching._TILE_BYTES
        assert rows >= 1 and cols >= 1


def test_unsigned_input_is_read_with_the_same_bits_as_signed() -> None:
    rng = np.random.default_rng(3)
    a, b = random_hashes(50, rng), random_hashes(50, rng)
    signed = as_triples(close_pairs(a, b, 30, same=False))
    assert signed  # at 30 bits some random pairs match
    assert as_triples(close_pairs(a.view(np.uint64), b.view(np.uint64), 30, same=False)) == signed


def test_results_are_sorted_by_ia_then_ib() -> None:
    rng = np.random.default_rng(11)
    a = random_hashes(400, rng)
    ia, ib, _ = close_pairs(a, a, 28, same=True)
    assert len(ia) > 10
    assert np.all(np.lexsort((ib, ia)) == np.arange(len(ia)))


@pytest.mark.parametrize("threshold", [-1, 65])
def test_a_threshold_outside_0_to_64_is_refused(threshold: int) -> None:
    with pytest.raises(ValueError, match="threshold"):
        close_pairs(np.zeros(2, np.int64), np.zeros(2, np.int64), threshold, same=False)


def test_same_with_blocks_of_different_lengths_is_refused() -> None:
    with pytest.raises(ValueError, match="same"):
        close_pairs(np.zeros(2, np.int64), np.zeros(3, np.int64), 5, same=True)


def test_non_integer_hashes_are_refused() -> None:
    with pytest.raises(TypeError):
        close_pairs(np.zeros(2, np.float64), np.zeros(2, np.int64), 5, same=False)


def closest_of(triples: Triples) -> Triples:
    best: dict[tuple[int, int], int] = {}
    for i, j, d in triples:
        best[(i, j)] = min(d, best.get((i, j), 64))
    return sorted((i, j, d) for (i, j), d in best.items())


@pytest.mark.parametrize("tile_bytes", [700, 70_000, None])
def test_turned_pairs_are_each_pairs_closest_version_within_the_threshold(
    blocks: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch, tile_bytes: int | None
) -> None:
    from neardup.kernel import close_pairs_turned_fast
    from neardup.matching import close_pairs_turned

    a, b = blocks
    both = np.concatenate(blocks)
    rng = np.random.default_rng(3)
    # Versions of b: one with every planted copy moved far, one with a few bits of each flipped.
    versions = np.stack([b ^ random_hashes(len(b), rng), b ^ (1 << rng.integers(0, 63, len(b)))])
    selves = np.stack([both[::-1].copy(), both])
    cases = [(a, versions, False), (both, selves, True)]
    expected = [closest_of([t for v in vs for t in brute_force(x, v, THRESHOLD, same)]) for x, vs, same in cases]
    assert all(len(e) > 50 for e in expected)
    if tile_bytes:
        monkeypatch.setattr(matching, "_TILE_BYTES", tile_bytes)
    assert [as_triples(close_pairs_turned(x, vs, THRESHOLD, same=same)) for x, vs, same in cases] == expected
    # The fast path may give a pair once per close version; its closest is the same, numpy's
    # running minimum or (once loaded) one compiled pass per version.
    for _ in ("numpy unless already loaded", "compiled"):
        assert [closest_of(as_triples(close_pairs_turned_fast(x, vs, THRESHOLD, same=same)))
                for x, vs, same in cases] == expected
        import neardup.kernel_jit  # noqa: F401
