"""From the pair graph to duplicate groups: components, then chains split so no group lies.

Pairs link images within the threshold, and linking is not transitive: a chain A~B~C with A far
from C is one connected component but not one duplicate group. Each component is split on its
full distance matrix (closest stored hashes of every two members):

- a component whose members are all within the threshold of each other is one group, never split;
- otherwise HDBSCAN finds its dense groups; a group that still holds two members farther apart
  than the threshold is split again, and points HDBSCAN calls noise join the group of their nearest
  member when they are within the threshold of that whole group;
- what is left (noise, or a chain with no density structure at all, where HDBSCAN calls everything
  noise) is covered greedily by cliques, seeded at the member with the most close neighbours.

So every group's members are pairwise within the threshold: deleting all but the keeper never
deletes a photo unrelated to another member.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np
from neardup.variants import HashBlock, distance_matrix

__all__ = ["batch_components", "components", "split_component", "split_hashes", "warm_clustering"]


def components(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Connected components of the pair graph: (file ids, component of each, component sizes).

    Components are numbered from 1 by descending size (then smallest member), so the large ones
    are scheduled first; images in no pair are in no component.
    """
    ids, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    if len(ids) == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    # scipy costs a fresh process ~0.2 s to import: only a job with pairs pays for it.
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(ids)
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (inverse[: len(a)], inverse[len(a):])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    first_member = np.full(len(sizes), n, dtype=np.int64)
    np.minimum.at(first_member, labels, np.arange(n))
    order = np.lexsort((first_member, -sizes))  # biggest first, then by smallest member
    number = np.empty(len(sizes), dtype=np.int64)
    number[order] = np.arange(1, len(sizes) + 1)
    return ids, number[labels], sizes[order]


def batch_components(sizes: Sequence[int], alone_from: int, batch_files: int) -> Iterator[tuple[int, int, int]]:
    """Work rows over components numbered 1.. (descending size): (files, first, last).

    A component of alone_from files or more is a row of its own; smaller ones are batched until a
    row holds about batch_files files, so the phase's progress moves in steps either way.
    """
    first, units = 0, 0
    for number, size in enumerate(sizes, start=1):
        size = int(size)
        if size >= alone_from:
            if units:
                yield units, first, number - 1
                units = 0
            yield size, number, number
            continue
        if units == 0:
            first = number
        units += size
        if units >= batch_files:
            yield units, first, number
            units = 0
    if units:
        yield units, first, len(sizes)


def split_component(dist: np.ndarray, threshold: int) -> list[list[int]]:
    """Groups (member indices, two or more each) whose members are pairwise within threshold."""
    m = len(dist)
    everyone = list(range(m))
    if m < 2:
        return []
    if _within(dist, everyone, threshold):
        return [everyone]
    groups: list[list[int]] = []
    leftover: list[int] = []
    for cluster, noise in _hdbscan(dist):
        if _within(dist, cluster, threshold):
            groups.append(cluster)
        elif len(cluster) < m:
            inner = [[cluster[i] for i in g] for g in split_component(dist[np.ix_(cluster, cluster)], threshold)]
            groups.extend(inner)
            # Members the recursion left alone get another chance beside everyone else.
            grouped = {x for g in inner for x in g}
            leftover.extend(x for x in cluster if x not in grouped)
        else:
            leftover.extend(cluster)  # HDBSCAN saw one blob: no structure to follow
        leftover.extend(noise)
    leftover = _attach(dist, groups, leftover, threshold)
    groups.extend(_cliques(dist, leftover, threshold))
    return sorted((sorted(g) for g in groups if len(g) >= 2), key=lambda g: g[0])


def split_hashes(ids: Sequence[int], hashes: Sequence[int], alternatives: Sequence[Sequence[int]],
                 threshold: int) -> list[list[int]]:
    """split_component on a component given by its stored hashes (ids ascending)."""
    if len(ids) == 2:
        return [[0, 1]]  # a component of two is one pair: within the threshold by construction
    return split_component(distance_matrix(HashBlock.from_lists(ids, hashes, alternatives)), threshold)


def warm_clustering() -> None:
    """Import hdbscan now (about a second), not inside the first component that needs it."""
    import hdbscan  # noqa: F401


def _within(dist: np.ndarray, members: Sequence[int], threshold: int) -> bool:
    if len(members) < 2:
        return True
    # The whole component is checked first and is the big case: no copy of the matrix for it.
    sub = dist if len(members) == len(dist) else dist[np.ix_(members, members)]
    return bool(sub.max() <= threshold)


def _hdbscan(dist: np.ndarray) -> Iterator[tuple[list[int], list[int]]]:
    """(cluster members, []) per cluster, then ([], noise) once."""
    import hdbscan

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hdbscan warns about precomputed non-float input
        labels = hdbscan.HDBSCAN(metric="precomputed", min_cluster_size=2, min_samples=1,
                                 allow_single_cluster=False).fit(dist.astype(np.float64)).labels_
    for label in sorted(set(labels.tolist()) - {-1}):
        yield np.flatnonzero(labels == label).tolist(), []
    yield [], np.flatnonzero(labels == -1).tolist()


def _attach(dist: np.ndarray, groups: list[list[int]], points: list[int], threshold: int) -> list[int]:
    """Each point joins the group of its nearest grouped member if within threshold of all of it."""
    owner = {x: k for k, g in enumerate(groups) for x in g}
    left = []
    for p in sorted(points, key=lambda p: _nearest(dist, p, owner)):
        if owner:
            members = np.fromiter(owner, dtype=np.int64)
            nearest = int(members[np.argmin(dist[p, members])])
            group = groups[owner[nearest]]
            if dist[p, nearest] <= threshold and dist[p, group].max() <= threshold:
                group.append(p)
                owner[p] = owner[nearest]
                continue
        left.append(p)
    return left


def _nearest(dist: np.ndarray, p: int, owner: dict[int, int]) -> int:
    # Closest points attach first, so a far one cannot block a near one.
    if not owner:
        return 0
    return int(dist[p, np.fromiter(owner, dtype=np.int64)].min())


def _cliques(dist: np.ndarray, points: list[int], threshold: int) -> list[list[int]]:
    """Greedy clique cover: seed at the most connected point, grow by nearest compatible point."""
    remaining = sorted(points)
    found = []
    while remaining:
        sub = dist[np.ix_(remaining, remaining)]
        close = sub <= threshold
        degree = close.sum(axis=1)
        seed = int(np.lexsort((sub.sum(axis=1), -degree))[0])
        group = [seed]
        for c in np.argsort(sub[seed], kind="stable").tolist():
            if c != seed and close[c, group].all():
                group.append(c)
        found.append([remaining[i] for i in group])
        taken = set(group)
        remaining = [x for i, x in enumerate(remaining) if i not in taken]
    return [g for g in found if len(g) >= 2]
