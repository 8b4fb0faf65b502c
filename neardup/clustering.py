"""From the pair graph to duplicate groups: components, then chains split so no group lies.

Pairs link images within the threshold, and linking is not transitive: a chain A~B~C with A far
from C is one connected component but not one duplicate group. Each component is split on its
full distance matrix (closest stored hashes of every two members):

- a component whose members are all near each other (within LOOSE_FACTOR x the threshold: two edits
  of one photo, a crop and a blur, say, may be 12 apart though each is close to the original) is
  one group, never split;
- otherwise its dense core is peeled out: the member close to (within the threshold of) the
  smallest share of the others leaves, again and again, until every member left is close to
  more than DENSE_SHARE (half) of the others. A core of more than DENSE_MIN_STRICT members is one group (the
  many edited copies of one photo: a heavy edit may be more than the threshold from another heavy
  edit, yet both are close to nearly every copy). A peeled member still close to one core member
  and within LOOSE_FACTOR x the threshold of more than half of the core is taken back (a crop of a
  few percent), and so is one close to DENSE_MIN_STRICT core members and within WIDE_FACTOR x the
  threshold of more than half of it; what is left is split the same way, component by component;
- a part with no such core (a chain, a few photos) is split strictly: HDBSCAN finds its dense
  groups; a group that still holds two members farther apart than the threshold is split again,
  and points HDBSCAN calls noise join the group of their nearest member when they are within the
  threshold of that whole group; what is left (noise, or a chain with no density structure at all,
  where HDBSCAN calls everything noise) is covered greedily by cliques, seeded at the member with
  the most close neighbours.

So every member of a group is close to another, and its core members to more than half of the
core: any two core members are close or have a close neighbour in common, and a member taken back
is near most of the core. A group of DENSE_MIN_STRICT or fewer (where a share leaves no slack) is
pairwise near. Two unrelated photos' copies joined by a bridge are each close to
half the component at most, so they never make one core, and a photo unrelated to a core is far
from most of it, so the core never takes it back: deleting all but the keeper never deletes a photo
unrelated to the rest of its group.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np
from neardup.graph import batch_components, components
from neardup.variants import HashBlock, distance_matrix

__all__ = ["DENSE_SHARE", "LOOSE_FACTOR", "WIDE_FACTOR", "adopt", "batch_components", "components", "dense_core",
           "split_component", "split_hashes", "warm_clustering"]

# A dense core's members are each within the threshold of more than this share of the others. Half
# is the least that still holds a group together: two members that are not close to each other then
# always have a close neighbour in common, and two photos' copies joined by a bridge (each copy close
# to its own half and the bridge) never make one core. 0.8 made heavy edits close to 50-76 % of their
# photo's copies a group of their own (pairwise recall on edited-copy sets 0.956 / 0.927 against
# 0.962 / 0.972 at a half, no false pair at either).
DENSE_SHARE = 0.5
# A core this small goes to the strict split (cliques), which also handles chains better than
# peeling one pair at a time: in a handful of members a share leaves no slack.
DENSE_MIN_STRICT = 5
# A part this small is covered by cliques straight away: with a handful of points HDBSCAN's
# densities say nothing the clique cover does not, and importing it (scikit-learn, about a second)
# would be most of a rescan that meets one three-photo chain.
CLIQUES_UP_TO = 8
# Near: within LOOSE_FACTOR x the threshold. A connected part whose members are all near each other
# is one group, and a member the dense core peeled is taken back when close to one core member and
# near more than half of the core. A crop of a few percent (5 % off one corner, or 2-3 % and a
# resize) hashes 6-10 bits from some of its photo's copies and 10-14 from most, and two edits of a
# photo may be 12 apart; unrelated photos, hard negatives included (three shots of one office), are
# 16 and more apart in every set we have.
LOOSE_FACTOR = 1.4
# A peeled member close to DENSE_MIN_STRICT or more core members (thumbnails confirm pairs up to
# 20 bits apart, neardup.verify) and within WIDE_FACTOR x the threshold of more than half of the
# core is taken back too: a caption on a dark photo, confirmed with 6 of its photo's 25 copies and
# 14-20 bits from the rest, was left alone (pairwise recall 0.9942 -> 0.997, 0.9768 -> 0.9797 and
# 0.9694 -> 0.9728 on three edited-copy sets, no false pair on any set, hard negatives included).
WIDE_FACTOR = 2.0


def split_component(dist: np.ndarray, threshold: int) -> list[list[int]]:
    """Groups (member indices, two or more each): dense cores, else pairwise within threshold."""
    if len(dist) < 2:
        return []
    groups: list[list[int]] = []
    parts = [list(range(len(dist)))]
    while parts:
        part = parts.pop()
        sub = dist if len(part) == len(dist) else dist[np.ix_(part, part)]
        if len(part) < 2:
            continue
        # A part is connected at the threshold; all near each other, it is one photo's copies.
        if _within(sub, list(range(len(part))), LOOSE_FACTOR * threshold):
            groups.append(part)
            continue
        core, rest = dense_core(sub, threshold)
        if len(core) <= DENSE_MIN_STRICT:
            groups.extend([part[i] for i in g] for g in _split_strict(sub, threshold))
            continue
        taken, rest = adopt(sub, core, rest, threshold)
        groups.append([part[i] for i in core + taken])
        parts.extend([part[rest[i]] for i in piece] for piece in _pieces(sub[np.ix_(rest, rest)], threshold))
    return sorted((sorted(g) for g in groups if len(g) >= 2), key=lambda g: g[0])


def dense_core(dist: np.ndarray, threshold: int, share: float = DENSE_SHARE) -> tuple[list[int], list[int]]:
    """(core, peeled): peel the member close to the fewest others (then the farthest in sum) until
    each one left is within threshold of more than ``share`` of the others left."""
    m = len(dist)
    close = dist <= threshold
    np.fill_diagonal(close, False)
    degree = close.sum(axis=1).astype(np.int64)
    total = dist.sum(axis=1, dtype=np.int64)
    alive = np.ones(m, dtype=bool)
    left = m
    while left >= 2:
        idx = np.flatnonzero(alive)
        worst = int(idx[np.lexsort((-total[idx], degree[idx]))[0]])
        if degree[worst] > share * (left - 1) + 1e-9:
            break
        alive[worst] = False
        degree -= close[worst]
        total -= dist[worst].astype(np.int64)
        left -= 1
    return np.flatnonzero(alive).tolist(), np.flatnonzero(~alive).tolist()


def adopt(dist: np.ndarray, core: list[int], peeled: list[int], threshold: int) -> tuple[list[int], list[int]]:
    """(taken, left): the peeled members the core takes back (see LOOSE_FACTOR and WIDE_FACTOR),
    judged by the core alone."""
    if not peeled:
        return [], []
    to_core = dist[np.ix_(peeled, core)]
    loose = (to_core <= LOOSE_FACTOR * threshold).sum(axis=1) > DENSE_SHARE * len(core)
    wide = (to_core <= WIDE_FACTOR * threshold).sum(axis=1) > DENSE_SHARE * len(core)
    close = (to_core <= threshold).sum(axis=1)
    taken = (loose & (close >= 1)) | (wide & (close >= DENSE_MIN_STRICT))
    return [p for p, t in zip(peeled, taken) if t], [p for p, t in zip(peeled, taken) if not t]


def _pieces(dist: np.ndarray, threshold: int) -> list[list[int]]:
    """Connected components of the pairs within threshold (indices into dist)."""
    if len(dist) == 0:
        return []
    from scipy.sparse.csgraph import connected_components

    _, labels = connected_components(dist <= threshold, directed=False)
    return [np.flatnonzero(labels == k).tolist() for k in range(int(labels.max()) + 1)]


def _split_strict(dist: np.ndarray, threshold: int) -> list[list[int]]:
    """Groups whose members are pairwise within threshold (HDBSCAN, attachment, cliques)."""
    m = len(dist)
    everyone = list(range(m))
    if m < 2:
        return []
    if _within(dist, everyone, threshold):
        return [everyone]
    if m <= CLIQUES_UP_TO:
        return sorted((sorted(g) for g in _cliques(dist, everyone, threshold)), key=lambda g: g[0])
    groups: list[list[int]] = []
    leftover: list[int] = []
    for cluster, noise in _hdbscan(dist):
        if _within(dist, cluster, threshold):
            groups.append(cluster)
        elif len(cluster) < m:
            inner = [[cluster[i] for i in g] for g in _split_strict(dist[np.ix_(cluster, cluster)], threshold)]
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
                 threshold: int, dihedral: bool = False,
                 linked: Sequence[tuple[int, int]] = ()) -> list[list[int]]:
    """split_component on a component given by its stored hashes (ids ascending); dihedral: they
    are sign hashes, compared in all 8 orientations (see variants.distance_matrix). linked: pairs
    (indices) past the threshold that thumbnails confirmed (neardup.verify), which count as close."""
    if len(ids) == 2:
        return [[0, 1]]  # a component of two is one pair: close or confirmed, by construction
    block = HashBlock.from_lists(ids, hashes, alternatives)
    dist = distance_matrix(block, dihedral=dihedral)
    if len(linked):
        i, j = np.array(linked, dtype=np.int64).T
        dist[i, j] = dist[j, i] = np.minimum(dist[i, j], threshold)
    return split_component(dist, threshold)


def warm_clustering() -> None:
    """Import hdbscan now (about a second), not inside the first component that needs it."""
    import hdbscan  # noqa: F401


def _within(dist: np.ndarray, members: Sequence[int], threshold: float) -> bool:
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
