"""Rotation-proof matching over the stored hash form: a canonical hash plus rare alternatives.

Each image is stored as the hash of its canonical orientation and, when a decision of the
canonical choice was near a tie, the hashes of the other branches (neardup.orientation), each
marked with the wall (decision) it crossed; every image also marks the walls it is near. Two images
match through their canonical hashes, or through an alternative of one and the canonical hash of
the other when that other is near the alternative's wall: a copy whose noise tipped a decision the
other way sits near that decision's tie. So an alternative meets a small share of a block, and a
block pair costs little more than a single-hash pass: 1 + 2 x (alternatives x near share, per
wall), about 1.08 on synthetic photo-like blocks and 1.16 on the eval set's photos. A block is laid out flat, canonical hashes first (image
order), then alternatives with the index of their image, so the compiled kernel runs over slices
of it unchanged.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, partial

import numpy as np

from neardup.kernel import close_pairs_fast, close_pairs_turned_fast
from neardup.matching import Triple
from neardup.orientation import EVERY_WALL, WALLS, dihedral_hashes, near_of, wall_of

__all__ = ["HashBlock", "block_pairs", "distance_matrix"]

_MATRIX_CHUNK = 256
# Below this many stored-hash pairs, one pass over every stored hash of both blocks, keeping the
# hits the walls allow, beats a kernel call per wall: 100,128 rows of 224-file blocks took 16.8 s
# one way (10.6 s before walls, when every hash met every hash in one call).
_ONE_PASS_BELOW = 1_000_000


@dataclass(frozen=True)
class HashBlock:
    """Images of one block: ids, every stored hash with the index of its image, and the ties."""

    ids: np.ndarray  # int64, one per image
    hashes: np.ndarray  # uint64, canonical hashes first (image order), then alternatives
    owner: np.ndarray  # int64 index into ids, one per hash
    near: np.ndarray  # uint8 per image: bit w set when the image is near wall w
    wall: np.ndarray  # int8 per hash: the wall an alternative crossed, -1 for canonical hashes

    @classmethod
    def build(cls, ids: np.ndarray, hashes: np.ndarray, alt_ids: np.ndarray | None = None,
              alt_hashes: np.ndarray | None = None, ties: np.ndarray | None = None) -> HashBlock:
        """ids with their canonical hashes (sorted by id here if need be); alt_ids[k] is the image
        alt_hashes[k] belongs to, an image's alternatives in their stored order; ties[i] is image
        i's ties word (orientation.pack_ties). Without ties (hashes stored before walls were kept)
        every image is near every wall and every alternative crossed the first: each alternative
        then meets every canonical hash, as it used to."""
        ids = np.asarray(ids, dtype=np.int64)
        canonical = np.asarray(hashes, dtype=np.int64).view(np.uint64)
        if len(ids) != len(canonical):
            raise ValueError(f"{len(ids)} ids but {len(canonical)} hashes")
        words = np.full(len(ids), EVERY_WALL, dtype=np.int64) if ties is None \
            else np.asarray(ties, dtype=np.int64)
        if len(words) != len(ids):
            raise ValueError(f"{len(ids)} ids but {len(words)} ties words")
        if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            order = np.argsort(ids, kind="stable")
            ids, canonical, words = ids[order], canonical[order], words[order]
        owner = np.arange(len(ids), dtype=np.int64)
        near = near_of(words).astype(np.uint8)
        if alt_ids is None or len(alt_ids) == 0:
            return cls(ids, np.ascontiguousarray(canonical), owner, near, np.full(len(ids), -1, np.int8))
        alt_ids = np.asarray(alt_ids, dtype=np.int64)
        alt_owner = np.searchsorted(ids, alt_ids)
        if np.any(alt_owner >= len(ids)) or np.any(ids[np.minimum(alt_owner, len(ids) - 1)] != alt_ids):
            raise ValueError("an alternative hash belongs to no image of the block")
        flat = np.concatenate([canonical, np.asarray(alt_hashes, dtype=np.int64).view(np.uint64)])
        walls = wall_of(words[alt_owner], _rank_within(alt_owner))
        return cls(ids, flat, np.concatenate([owner, alt_owner]), near,
                   np.concatenate([np.full(len(ids), -1, np.int8), walls.astype(np.int8)]))

    @classmethod
    def from_lists(cls, ids: Sequence[int], hashes: Sequence[int],
                   alternatives: Sequence[Sequence[int]], ties: Sequence[int] | None = None) -> HashBlock:
        """One entry per image: id, canonical hash, its alternative hashes (often none), ties word."""
        pairs = [(i, h) for i, alts in zip(ids, alternatives) for h in alts]
        alt_ids = np.array([p[0] for p in pairs], dtype=np.int64)
        alt_hashes = np.array([p[1] for p in pairs], dtype=np.int64)
        return cls.build(np.array(ids, dtype=np.int64), np.array(hashes, dtype=np.int64), alt_ids,
                         alt_hashes, None if ties is None else np.array(ties, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def turned(self) -> np.ndarray:
        """The canonical (sign) hashes in all 8 orientations, (8, images): block_pairs' all_turns."""
        return np.ascontiguousarray(dihedral_hashes(self.hashes[:len(self)]))

    @property
    def variants(self) -> int:
        return len(self.hashes)

    def crossing(self, wall: int) -> np.ndarray:
        """Indexes (into hashes) of the alternatives that crossed this wall."""
        return self._by_wall[0][wall]

    def near_to(self, wall: int) -> np.ndarray:
        """Indexes (into hashes) of the canonical hashes of the images near this wall."""
        return self._by_wall[1][wall]

    @cached_property
    def _by_wall(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        # A worker keeps its blocks across rows: worked out once per block, not once per row.
        return ([np.flatnonzero(self.wall == w) for w in range(len(WALLS))],
                [np.flatnonzero(self.near & (1 << w)) for w in range(len(WALLS))])

    def allows(self, i: np.ndarray, other: HashBlock, j: np.ndarray) -> np.ndarray:
        """Whether stored hash i of this block may meet stored hash j of other (pairwise)."""
        wi, wj = self.wall[i].astype(np.int64), other.wall[j].astype(np.int64)
        near_i, near_j = self.near[self.owner[i]], other.near[other.owner[j]]
        return (((wi < 0) & (wj < 0))
                | ((wi >= 0) & (wj < 0) & ((near_j >> np.maximum(wi, 0)) & 1 == 1))
                | ((wj >= 0) & (wi < 0) & ((near_i >> np.maximum(wj, 0)) & 1 == 1)))


def block_pairs(a: HashBlock, b: HashBlock, threshold: int, *, same: bool,
                threads: int | None = None, match: Callable[..., Triple] | None = None,
                all_turns_up_to: int | None = None) -> Triple:
    """Image pairs within threshold by their closest stored hashes: (id_lo, id_hi, distance).

    Canonical hashes against canonical hashes, and each wall's alternatives against the canonical
    hashes of the images near that wall. Each unordered pair once, lower id first, sorted; with
    ``same`` pass one block twice. ``match`` is the kernel (the compiled one unless given). With
    ``all_turns_up_to`` (sign hashes), canonical hashes also meet b's in the 7 other orientations
    within that many bits: brute force over the orientations, 8 passes in all.
    """
    if match is None and a.variants * b.variants < _ONE_PASS_BELOW:
        vi, vj, dist = _one_pass(a, b, threshold, same, threads)
    else:
        vi, vj, dist = _by_wall(a, b, threshold, same, match or partial(close_pairs_fast, threads=threads))
    if all_turns_up_to is not None:
        # Canonical hashes come first in a block, so their indexes are their images' too. Within
        # one block the upper triangle is enough: i meets j turned by t where j meets i turned by
        # t's inverse.
        if match is None:
            ti, tj, td = close_pairs_turned_fast(a.hashes[:len(a)], b.turned[1:], all_turns_up_to, same=same,
                                                 threads=threads)
        else:
            ti, tj, td = (np.concatenate(c) for c in zip(*(match(a.hashes[:len(a)], version, all_turns_up_to,
                                                                  same=same) for version in b.turned[1:])))
        vi, vj, dist = np.concatenate([vi, ti]), np.concatenate([vj, tj]), np.concatenate([dist, td])
    ia, ib = a.owner[vi], b.owner[vj]
    if same:
        # Two orientations of one image are not a pair.
        keep = ia != ib
        ia, ib, dist = ia[keep], ib[keep], dist[keep]
    x, y = a.ids[ia], b.ids[ib]
    lo, hi = np.minimum(x, y), np.maximum(x, y)
    return _closest(lo, hi, dist)


def _by_wall(a: HashBlock, b: HashBlock, threshold: int, same: bool, match: Callable[..., Triple]) -> Triple:
    # Canonical against canonical, then each wall's alternatives against the images near it.
    vi, vj, dist = match(a.hashes[:len(a)], b.hashes[:len(b)], threshold, same=same)
    left, right, dists = [vi], [vj], [dist]
    for wall in range(len(WALLS)):
        sides = [(a.crossing(wall), b.near_to(wall))]
        if not same:
            sides.append((a.near_to(wall), b.crossing(wall)))
        for xi, yi in sides:
            if len(xi) and len(yi):
                i, j, d = match(a.hashes[xi], b.hashes[yi], threshold, same=False)
                left.append(xi[i])
                right.append(yi[j])
                dists.append(d)
    return np.concatenate(left), np.concatenate(right), np.concatenate(dists)


def _one_pass(a: HashBlock, b: HashBlock, threshold: int, same: bool, threads: int | None) -> Triple:
    # Every stored hash against every other in one call; the walls then sift the (few) hits.
    i, j, d = close_pairs_fast(a.hashes, b.hashes, threshold, same=same, threads=threads)
    keep = a.allows(i, b, j)
    return i[keep], j[keep], d[keep]


def _rank_within(owner: np.ndarray) -> np.ndarray:
    # Each alternative's place among its image's alternatives, in the order given.
    order = np.argsort(owner, kind="stable")
    sorted_owner = owner[order]
    starts = np.flatnonzero(np.r_[True, sorted_owner[1:] != sorted_owner[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(owner)]))
    rank = np.empty(len(owner), dtype=np.int64)
    rank[order] = np.arange(len(owner)) - run_start
    return rank


def _closest(lo: np.ndarray, hi: np.ndarray, dist: np.ndarray) -> Triple:
    # Several stored hashes of one pair may match: keep the pair once, at its smallest distance.
    if len(lo) == 0:
        return lo.astype(np.int64), hi.astype(np.int64), dist.astype(np.int64)
    order = np.lexsort((dist, hi, lo))
    lo, hi, dist = lo[order], hi[order], dist[order]
    first = np.ones(len(lo), dtype=bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    return lo[first], hi[first], dist[first]


def distance_matrix(block: HashBlock, dihedral: bool = False) -> np.ndarray:
    """All-pairs distances between the block's images, closest stored hashes (for clustering).

    Every stored hash against every other, walls aside: never farther apart than block_pairs
    found two images, and a component's matrix is small enough not to mind the extra work. With
    dihedral (sign hashes, orientation.dihedral_hashes), each hash also meets the others in all 8
    orientations: brute force, which the canonical form approaches but does not always reach (two
    copies whose canonical decisions went apart, neither near the tie), and which a component can
    afford where the compare phase cannot.
    """
    h = block.hashes
    n = len(block)
    turned = dihedral_hashes(h) if dihedral else h[None, :]
    # Reduce variant rows, then variant columns, to their images with a minimum; in row chunks
    # so the temporaries stay small for a large component.
    rows = np.full((n, len(h)), 64, dtype=np.uint8)
    for r0 in range(0, len(h), _MATRIX_CHUNK):
        r1 = min(r0 + _MATRIX_CHUNK, len(h))
        for t in turned:
            np.minimum.at(rows, block.owner[r0:r1], np.bitwise_count(h[r0:r1, None] ^ t[None, :]))
    out = np.full((n, n), 64, dtype=np.uint8)
    np.minimum.at(out.T, block.owner, rows.T)
    np.fill_diagonal(out, 0)
    return out
