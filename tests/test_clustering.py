"""Components of the pair graph, and chains split so no group holds two unrelated photos."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from neardup.clustering import (
    LOOSE_FACTOR,
    WIDE_FACTOR,
    adopt,
    batch_components,
    components,
    dense_core,
    split_component,
    split_hashes,
)

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
    # A~B and B~C at 8 bits, A to C at 16 (beyond the loose bound): one component, not one group.
    a = 0x0F0F_0F0F_0F0F_0F0F
    b = flipped(a, *range(8))
    c = flipped(b, *range(10, 18))
    groups = split_hashes([1, 2, 3], [a, b, c], [(), (), ()], THRESHOLD)
    assert groups and all(not {0, 2} <= set(g) for g in groups)
    assert [0, 1] in groups or [1, 2] in groups


def test_a_long_chain_is_cut_into_groups_of_near_members() -> None:
    dist = line(*range(0, 48, 6))  # 8 points 6 apart: each only close to its neighbours
    groups = split_component(dist, THRESHOLD)
    assert len(groups) >= 3
    assert all(diameter(dist, g) <= LOOSE_FACTOR * THRESHOLD for g in groups)
    assert len({x for g in groups for x in g}) == sum(len(g) for g in groups)


def test_a_true_duplicate_group_is_never_split() -> None:
    dist = line(0, 2, 5, 7, 9, 10)  # everyone within 10 of everyone
    assert split_component(dist, THRESHOLD) == [[0, 1, 2, 3, 4, 5]]
    # Two edits of one photo 12 apart, each close to the original: near, so still one group.
    assert split_component(line(0, 6, 12), THRESHOLD) == [[0, 1, 2]]


def test_two_dense_groups_joined_by_a_bridge_come_apart_whole() -> None:
    dist = line(0, 1, 2, 3, 9, 16, 17, 18, 19)
    groups = split_component(dist, THRESHOLD)
    assert [0, 1, 2, 3] in [g[:4] for g in groups]
    assert any({5, 6, 7, 8} <= set(g) for g in groups)
    assert all(diameter(dist, g) <= THRESHOLD for g in groups)


def test_a_noise_point_joins_its_nearest_group_only_when_close_to_all_of_it() -> None:
    near = split_component(line(0, 2, 3, 4, 9), THRESHOLD)
    assert near == [[0, 1, 2, 3, 4]]  # 9 is within 10 of every member
    far = split_component(line(0, 2, 3, 5, 15), THRESHOLD)
    assert far == [[0, 1, 2, 3]]  # 15 is close to 5 but 15 from 0, beyond the loose bound: left alone


def edits_of(center: int, rng: np.random.Generator, count: int, most_bits: int) -> list[int]:
    """count hashes, each center with up to most_bits random bits flipped (one photo's edits)."""
    return [flipped(center, *rng.choice(64, int(rng.integers(0, most_bits + 1)), replace=False).tolist())
            for _ in range(count)]


def test_many_edits_of_one_photo_stay_one_group_though_two_heavy_edits_are_far_apart() -> None:
    # 30 light edits (up to 3 bits) and two heavy ones, 7 bits each way from the original: the
    # heavy two are 14 apart, beyond the threshold, yet each is within it of every light edit.
    rng = np.random.default_rng(1)
    center = 0x1234_5678_9ABC_DEF0
    light = [flipped(center, *rng.choice(range(16, 64), int(rng.integers(0, 4)), replace=False).tolist())
             for _ in range(30)]
    heavy = [flipped(center, *range(0, 7)), flipped(center, *range(7, 14))]
    hashes = light + heavy
    groups = split_hashes(list(range(len(hashes))), hashes, [()] * len(hashes), THRESHOLD)
    assert groups == [list(range(len(hashes)))]


def test_a_heavy_edit_close_to_more_than_half_of_its_photos_copies_stays_in_their_group() -> None:
    # Ten copies 0..9 and two heavy edits at 14 and -5, each within the threshold of six of the
    # eleven others: a stricter core (80 %) made them groups of their own, one photo twice.
    dist = line(*range(10), 14, -5)
    assert split_component(dist, THRESHOLD) == [list(range(12))]
    core, peeled = dense_core(dist, THRESHOLD, share=0.8)
    assert peeled  # what the old share did


def test_two_photos_edits_joined_by_a_bridge_never_share_a_group() -> None:
    # Two unrelated photos (32 bits apart), 12 edits each, and a chain of images 4 bits apart
    # from one to the other: one component, two photos.
    rng = np.random.default_rng(2)
    a = 0x0F0F_0F0F_0F0F_0F0F
    b = flipped(a, *range(0, 64, 2))
    steps = [flipped(a, *range(0, k, 2)) for k in range(8, 64, 8)]  # 4 bits apart: a chain a..b
    first, second = edits_of(a, rng, 12, 3), edits_of(b, rng, 12, 3)
    hashes = first + second + steps
    assert bin((a ^ b) & (1 << 64) - 1).count("1") == 32
    groups = split_hashes(list(range(len(hashes))), hashes, [()] * len(hashes), THRESHOLD)
    for g in groups:
        assert not (set(g) & set(range(12)) and set(g) & set(range(12, 24))), g
    assert any(set(range(12)) <= set(g) for g in groups)
    assert any(set(range(12, 24)) <= set(g) for g in groups)


def test_groups_never_mix_photos_every_member_is_close_to_one_and_small_groups_are_near() -> None:
    rng = np.random.default_rng(3)
    for trial in range(30):
        centers = [int(x) for x in rng.integers(0, (1 << 63) - 1, 3)]
        counts = [int(rng.integers(2, 20)) for _ in centers]
        hashes = [h for c, k in zip(centers, counts) for h in edits_of(c, rng, k, 9)]
        photo = np.repeat(np.arange(3), counts)
        pos = rng.uniform(0, 40, 25)  # and a line of chained points beside them
        for of_hashes, dist in ((False, line(*pos)), (True, _distances(hashes))):
            for g in split_component(dist, THRESHOLD):
                close = dist[np.ix_(g, g)] <= THRESHOLD
                np.fill_diagonal(close, False)
                assert close.any(axis=1).all()
                if len(g) <= 5:
                    assert diameter(dist, g) <= LOOSE_FACTOR * THRESHOLD
                if of_hashes:
                    # Three random centres are about 32 bits apart: their edits never share a group.
                    assert len(set(photo[g].tolist())) == 1, g


def test_the_dense_core_peels_the_loosest_member_first() -> None:
    core, peeled = dense_core(line(0, 2, 3, 4, 12), THRESHOLD, share=0.8)
    assert core == [0, 1, 2, 3] and peeled == [4]  # 12 and 0 are both near 3 of 4: 12 is farther


def test_components_are_numbered_largest_first_and_cover_exactly_the_paired_files() -> None:
    a, b = np.array([10, 20, 30, 40, 50]), np.array([11, 21, 31, 41, 20])
    ids, labels, sizes = components(a, b)
    assert ids.tolist() == [10, 11, 20, 21, 30, 31, 40, 41, 50]
    assert sizes.tolist() == [3, 2, 2, 2]
    by_id = dict(zip(ids.tolist(), labels.tolist()))
    assert by_id[20] == by_id[21] == by_id[50] == 1
    assert by_id[10] == by_id[11] != by_id[30]


@pytest.mark.parametrize("seed", range(6))
def test_components_match_a_graph_search_on_random_graphs_and_long_shuffled_chains(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    a, b = rng.integers(0, n, 1800), rng.integers(0, n, 1800)
    chain = rng.permutation(n)[:700]  # one long path through shuffled ids: many hooking rounds
    a, b = np.concatenate([a, chain[:-1]]) * 7 + 1, np.concatenate([b, chain[1:]]) * 7 + 1
    ids, labels, sizes = components(a, b)
    neighbours: dict[int, list[int]] = {}
    for x, y in zip(a.tolist(), b.tolist()):
        neighbours.setdefault(x, []).append(y)
        neighbours.setdefault(y, []).append(x)
    expected, seen = [], set()
    for start in sorted(neighbours):
        if start not in seen:
            seen.add(start)
            todo, found = [start], {start}
            while todo:
                for nxt in neighbours[todo.pop()]:
                    if nxt not in found:
                        found.add(nxt)
                        todo.append(nxt)
            seen |= found
            expected.append(frozenset(found))
    got: dict[int, set[int]] = {}
    for i, c in zip(ids.tolist(), labels.tolist()):
        got.setdefault(c, set()).add(i)
    assert {frozenset(s) for s in got.values()} == set(expected)
    assert sorted(sizes.tolist(), reverse=True) == sizes.tolist() == [len(got[k]) for k in range(1, len(got) + 1)]


def test_large_components_are_rows_of_their_own_and_small_ones_are_batched() -> None:
    rows = list(batch_components([900, 300, 5, 4, 3, 2, 2, 2], alone_from=256, batch_files=8))
    assert rows == [(900, 1, 1), (300, 2, 2), (9, 3, 4), (9, 5, 8)]
    assert sum(r[0] for r in rows) == 900 + 300 + 5 + 4 + 3 + 2 + 2 + 2


def test_a_small_chain_is_split_without_importing_hdbscan() -> None:
    # A rescan that meets one three-photo chain must not pay a second for scikit-learn's import.
    code = ("import sys; from neardup.clustering import split_hashes; "
            "a = 0x0F0F0F0F0F0F0F0F; b = a ^ 0xFF; c = b ^ 0xFF0000; "
            "groups = split_hashes([1, 2, 3], [a, b, c - (1 << 64) if c >= 1 << 63 else c], [(), (), ()], 10); "
            "assert groups in ([[0, 1]], [[1, 2]]), groups; assert 'hdbscan' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_crop_close_to_one_copy_and_near_the_rest_rejoins_its_photo() -> None:
    # Twelve copies of a photo, one bit from it each; a crop 12 bits from the photo, so 13 from most
    # copies and 9 from the one that shares three of its changes: the core peels it, then takes it back.
    photo = 0x3C3C_A5A5_0FF0_1234
    copies = [flipped(photo, 20, 21, 22)] + [flipped(photo, i) for i in range(1, 12)]
    crop = flipped(photo, *range(20, 32))
    dist = _distances(copies + [crop])
    assert sorted(dist[12, :12].tolist()) == [9] + [13] * 11
    assert dense_core(dist, THRESHOLD)[1] == [12]
    assert split_component(dist, THRESHOLD) == [list(range(13))]


def test_the_core_takes_back_no_member_far_from_most_of_it() -> None:
    # Within the threshold of one core member, but beyond the loose bound of the rest: not taken.
    dist = np.full((8, 8), 4, dtype=np.uint8)
    dist[7, :] = dist[:, 7] = 20
    dist[7, 0] = dist[0, 7] = THRESHOLD
    np.fill_diagonal(dist, 0)
    assert adopt(dist, list(range(7)), [7], THRESHOLD) == ([], [7])
    dist[7, 1:4] = dist[1:4, 7] = int(LOOSE_FACTOR * THRESHOLD)  # near 4 of 7: more than half
    assert adopt(dist, list(range(7)), [7], THRESHOLD) == ([7], [])
    dist[7, 0] = dist[0, 7] = THRESHOLD + 1  # near most, but close to none: not taken
    assert adopt(dist, list(range(7)), [7], THRESHOLD) == ([], [7])


def test_the_core_takes_back_a_member_close_to_a_handful_of_it_and_within_twice_the_threshold_of_most() -> None:
    # A caption on a dark photo: confirmed (close) with 5 of 12 copies, 18 bits from the rest.
    dist = np.full((13, 13), 4, dtype=np.uint8)
    dist[12, :] = dist[:, 12] = 18
    dist[12, :5] = dist[:5, 12] = THRESHOLD
    np.fill_diagonal(dist, 0)
    assert dense_core(dist, THRESHOLD)[1] == [12]
    assert adopt(dist, list(range(12)), [12], THRESHOLD) == ([12], [])
    assert split_component(dist, THRESHOLD) == [list(range(13))]
    dist[12, 4] = dist[4, 12] = THRESHOLD + 1  # close to 4 only
    assert adopt(dist, list(range(12)), [12], THRESHOLD) == ([], [12])
    dist[12, 4] = dist[4, 12] = THRESHOLD
    dist[12, 5:] = dist[5:, 12] = int(WIDE_FACTOR * THRESHOLD) + 1  # far from most of the core
    assert adopt(dist, list(range(12)), [12], THRESHOLD) == ([], [12])


def _distances(hashes: list[int]) -> np.ndarray:
    from neardup.variants import HashBlock, distance_matrix

    return distance_matrix(HashBlock.from_lists(list(range(len(hashes))), hashes, [()] * len(hashes)))


def test_copies_whose_canonical_orientations_went_apart_stay_one_group_with_sign_hashes() -> None:
    from neardup.orientation import SYMMETRIES, dihedral_hashes

    rng = np.random.default_rng(8)
    original = int(rng.integers(0, 2**63))
    # A rotated copy stored in another orientation than its original (neither near a tie, so
    # neither kept the other's hash), and a copy close to both that linked them into a component.
    turned = int(dihedral_hashes(np.array([original], dtype=np.int64))[SYMMETRIES.index((True, True, False)), 0])
    rotated = flipped(turned, 3, 40)
    between = flipped(original, 5, 9, 17)
    hashes = [flipped(original), between, rotated]
    assert bin((hashes[0] ^ hashes[2]) & (2**64 - 1)).count("1") > THRESHOLD
    assert split_hashes([1, 2, 3], hashes, [(), (), ()], THRESHOLD) == [[0, 1]]
    assert split_hashes([1, 2, 3], hashes, [(), (), ()], THRESHOLD, dihedral=True) == [[0, 1, 2]]



def test_confirmed_pairs_past_the_threshold_count_as_close_when_a_component_is_split() -> None:
    # a~b within the threshold; c is 16 and 23 bits from them (past the loose bound): cut off,
    # unless verification confirmed c with both. Confirmed with a only, c is a chain's end.
    a = 0x0F0F_0F0F_0F0F_0F0F
    b, c = flipped(a, *range(7)), flipped(a, *range(23))
    ids, alts = [1, 2, 3], [(), (), ()]
    assert split_hashes(ids, [a, b, c], alts, THRESHOLD) == [[0, 1]]
    assert split_hashes(ids, [a, b, c], alts, THRESHOLD, linked=[(0, 2), (1, 2)]) == [[0, 1, 2]]
    assert split_hashes(ids, [a, b, c], alts, THRESHOLD, linked=[(0, 2)]) == [[0, 1]]
