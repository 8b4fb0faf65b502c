from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from neardup.grouping import Candidate, choose_keeper, connected_groups, keep, keeper_reason


def candidate(
    id: int, pixels: int = 100, size: int = 1000, mtime: float = 50.0, path: str = ""
) -> Candidate:
    return Candidate(id=id, path=path or f"/photos/{id}.jpg", pixels=pixels, size=size, mtime=mtime)


def test_a_chain_of_pairs_becomes_one_group() -> None:
    assert connected_groups([(1, 2), (2, 3), (3, 4)]) == [[1, 2, 3, 4]]


def test_disjoint_pairs_stay_separate_groups_sorted_by_first_member() -> None:
    assert connected_groups([(9, 5), (2, 1), (7, 8)]) == [[1, 2], [5, 9], [7, 8]]


def test_the_grouping_does_not_depend_on_pair_order_or_direction() -> None:
    pairs = [(1, 2), (3, 4), (2, 5), (10, 11), (4, 1), (20, 21)]
    expected = connected_groups(pairs)
    assert expected == [[1, 2, 3, 4, 5], [10, 11], [20, 21]]
    rng = random.Random(4)
    for _ in range(20):
        reordered = rng.sample(pairs, len(pairs))
        shuffled = [(y, x) if rng.random() < 0.5 else (x, y) for x, y in reordered]
        assert connected_groups(shuffled) == expected


def test_a_self_pair_does_not_make_a_group() -> None:
    assert connected_groups([(7, 7), (1, 2)]) == [[1, 2]]


def test_no_pairs_means_no_groups() -> None:
    assert connected_groups([]) == []


def test_numpy_indexes_come_back_as_plain_ints() -> None:
    ia, ib = np.array([3, 4], dtype=np.int64), np.array([4, 6], dtype=np.int64)
    groups = connected_groups(zip(ia, ib))
    assert groups == [[3, 4, 6]]
    assert all(type(member) is int for member in groups[0])


def test_a_long_chain_in_worst_order_neither_recurses_nor_splits() -> None:
    # Union by size and iterative finds keep this linear and stack-safe.
    count = 200_000
    assert connected_groups((i + 1, i) for i in range(count)) == [list(range(count + 1))]


def test_the_keeper_has_the_most_pixels_even_if_smaller_and_newer() -> None:
    big = candidate(1, pixels=2000, size=10, mtime=99.0)
    assert choose_keeper([candidate(2, pixels=1000, size=10**6, mtime=1.0), big]) == big


def test_with_equal_pixels_the_largest_file_is_kept() -> None:
    large = candidate(1, size=5000, mtime=99.0)
    assert choose_keeper([candidate(2, size=4000, mtime=1.0), large]) == large


def test_with_equal_pixels_and_size_the_oldest_file_is_kept() -> None:
    oldest = candidate(2, mtime=10.0)
    assert choose_keeper([candidate(1, mtime=20.0), oldest, candidate(3, mtime=30.0)]) == oldest


def test_a_complete_tie_is_broken_by_path() -> None:
    first = candidate(9, path="/a/photo.jpg")
    assert choose_keeper([candidate(1, path="/b/photo.jpg"), first]) == first


def test_the_keeper_does_not_depend_on_member_order() -> None:
    members = [
        candidate(1, pixels=10, size=5, mtime=3.0),
        candidate(2, pixels=10, size=5, mtime=2.0),
        candidate(3, pixels=10, size=4, mtime=1.0),
        candidate(4, pixels=9, size=9, mtime=0.0),
    ]
    keepers = {choose_keeper(list(order)).id for order in itertools.permutations(members)}
    assert keepers == {2}


def test_an_empty_group_has_no_keeper() -> None:
    with pytest.raises(ValueError):
        choose_keeper([])


@pytest.mark.parametrize(
    ("runner_up", "reason"),
    [
        (candidate(2, pixels=50), "most pixels (100 vs 50)"),
        (candidate(2, size=999), "same pixels, largest file (1,000 vs 999 bytes)"),
        (candidate(2, mtime=51.0), "same pixels and size, oldest file"),
        (candidate(2, path="/photos/z.jpg"), "identical pixels, size and age: first by path"),
    ],
)
def test_the_keeper_reason_names_the_rule_that_decided(runner_up: Candidate, reason: str) -> None:
    # The third member loses on pixels; the reason must be told against the
    # closest rival, not the weakest one.
    keeper = candidate(1)
    members = [runner_up, keeper, candidate(3, pixels=10)]
    assert choose_keeper(members) == keeper
    assert keeper_reason(keeper, members) == reason
    # The cluster phase ranks once for both: the same keeper, the same reason, in any order.
    for order in itertools.permutations(members):
        assert keep(list(order)) == (keeper, reason)


def test_a_lone_keeper_is_the_only_member() -> None:
    keeper = candidate(1)
    assert keeper_reason(keeper, [keeper]) == "only member"
    assert keep([keeper]) == (keeper, "only member")
