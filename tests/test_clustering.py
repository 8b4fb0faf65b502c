"""Components of the pair graph, and chains split so no group holds two unrelated photos."""
from __future__ import annotations

import numpy as np

from neardup.clustering import batch_components, components, split_component, split_hashes

THRESHOLD = 10


def line(*positions: float) -> np.ndarray:
    """Distances between points on a line: a chain when steps are below the threshold."""
    p = np.array(positions, dtype=float)
    return np.abs(p[:, None] - p[None, :]).astype(np.uint8)


def flipped(value: int, *bits: int) -> int:
    for b in bits:
        value ^= 1 << b
    return value - (1 << 64) if value >= 1 << 63 else value


def diameter(dist: np.ndarray, group: list[int]) -> int:
    return int(dist[np.ix_(group, group)].max())


def test_a_chain_of_hashes_is_split_so_its_ends_are_never_grouped() -> None:
    # A~B and B~C at 6 bits, A to C at 12: one component, not one group.
    a = 0x0F0F_0F0F_0F0F_0F0F
    b = flipped(a, 0, 1, 2, 3, 4, 5)
    c = flipped(b, 10, 11, 12, 13, 14, 15)
    groups = split_hashes([1, 2, 3], [a, b, c], [(), (), ()], THRESHOLD)
    assert groups and all(not {0, 2} <= set(g) for g in groups)
    assert [0, 1] in groups or [1, 2] in groups


def test_a_long_chain_is_cut_into_groups_within_the_threshold() -> None:
    dist = line(*range(0, 48, 6))  # 8 points 6 apart: each only near its neighbours
    groups = split_component(dist, THRESHOLD)
    assert len(groups) >= 3
    assert all(diameter(dist, g) <= THRESHOLD for g in groups)
    assert len({x for g in groups for x in g}) == sum(len(g) for g in groups)


def test_a_true_duplicate_group_is_never_split() -> None:
    dist = line(0, 2, 5, 7, 9, 10)  # everyone within 10 of everyone
    assert split_component(dist, THRESHOLD) == [[0, 1, 2, 3, 4, 5]]


def test_two_dense_groups_joined_by_a_bridge_come_apart_whole() -> None:
    dist = line(0, 1, 2, 3, 9, 16, 17, 18, 19)
    groups = split_component(dist, THRESHOLD)
    assert [0, 1, 2, 3] in [g[:4] for g in groups]
    assert any({5, 6, 7, 8} <= set(g) for g in groups)
    assert all(diameter(dist, g) <= THRESHOLD for g in groups)


def test_a_noise_point_joins_its_nearest_group_only_when_close_to_all_of_it() -> None:
    near = split_component(line(0, 2, 3, 4, 9), THRESHOLD)
    assert near == [[0, 1, 2, 3, 4]]  # 9 is within 10 of every member
    far = split_component(line(0, 2, 3, 4, 12), THRESHOLD)
    assert far == [[0, 1, 2, 3]]  # 12 is near 4 but 12 from 0: left alone


def test_components_are_numbered_largest_first_and_cover_exactly_the_paired_files() -> None:
    a, b = np.array([10, 20, 30, 40, 50]), np.array([11, 21, 31, 41, 20])
    ids, labels, sizes = components(a, b)
    assert ids.tolist() == [10, 11, 20, 21, 30, 31, 40, 41, 50]
    assert sizes.tolist() == [3, 2, 2, 2]
    by_id = dict(zip(ids.tolist(), labels.tolist()))
    assert by_id[20] == by_id[21] == by_id[50] == 1
    assert by_id[10] == by_id[11] != by_id[30]


def test_large_components_are_rows_of_their_own_and_small_ones_are_batched() -> None:
    rows = list(batch_components([900, 300, 5, 4, 3, 2, 2, 2], alone_from=256, batch_files=8))
    assert rows == [(900, 1, 1), (300, 2, 2), (9, 3, 4), (9, 5, 8)]
    assert sum(r[0] for r in rows) == 900 + 300 + 5 + 4 + 3 + 2 + 2 + 2
