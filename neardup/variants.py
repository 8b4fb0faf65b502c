"""Rotation-proof matching over the stored hash form: a canonical hash plus rare alternatives.

Each image is stored as the hash of its canonical orientation and, when the canonical choice was
near a tie, the hashes of the other orientations it could have made (neardup.orientation). Two
images are as far apart as the closest of their stored hashes. A block is laid out flat, one entry
per stored hash with the index of the image it belongs to, so the compiled kernel runs over it
unchanged and costs (stored hashes / images)^2 of a single-hash pass: about 1.1 when a few percent
of images carry an alternative.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neardup.kernel import close_pairs_fast
from neardup.matching import Triple

__all__ = ["HashBlock", "block_pairs", "distance_matrix"]

_MATRIX_CHUNK = 256


@dataclass(frozen=True)
class HashBlock:
    """Images of one block: ids, and every stored hash with the index of its image."""

    ids: np.ndarray  # int64, one per image
    hashes: np.ndarray  # uint64, canonical hashes first (image order), then alternatives
    owner: np.ndarray  # int64 index into ids, one per hash

    @classmethod
    def build(cls, ids: np.ndarray, hashes: np.ndarray, alt_ids: np.ndarray | None = None,
              alt_hashes: np.ndarray | None = None) -> HashBlock:
        """ids with their canonical hashes (sorted by id here if need be); alt_ids[k] is the image alt_hashes[k] belongs to."""
        ids = np.asarray(ids, dtype=np.int64)
        canonical = np.asarray(hashes, dtype=np.int64).view(np.uint64)
        if len(ids) != len(canonical):
            raise ValueError(f"{len(ids)} ids but {len(canonical)} hashes")
        if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            order = np.argsort(ids, kind="stable")
            ids, canonical = ids[order], canonical[order]
        owner = np.arange(len(ids), dtype=np.int64)
        if alt_ids is None or len(alt_ids) == 0:
            return cls(ids, np.ascontiguousarray(canonical), owner)
        alt_owner = np.searchsorted(ids, alt_ids)
        if np.any(alt_owner >= len(ids)) or np.any(ids[np.minimum(alt_owner, len(ids) - 1)] != alt_ids):
            raise ValueError("an alternative hash belongs to no image of the block")
        flat = np.concatenate([canonical, np.asarray(alt_hashes, dtype=np.int64).view(np.uint64)])
        return cls(ids, flat, np.concatenate([owner, alt_owner.astype(np.int64)]))

    @classmethod
    def from_lists(cls, ids: Sequence[int], hashes: Sequence[int],
                   alternatives: Sequence[Sequence[int]]) -> HashBlock:
        """One entry per image: id, canonical hash, its alternative hashes (often none)."""
        pairs = [(i, h) for i, alts in zip(ids, alternatives) for h in alts]
        alt_ids = np.array([p[0] for p in pairs], dtype=np.int64)
        alt_hashes = np.array([p[1] for p in pairs], dtype=np.int64)
        return cls.build(np.array(ids, dtype=np.int64), np.array(hashes, dtype=np.int64), alt_ids, alt_hashes)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def variants(self) -> int:
        return len(self.hashes)


def block_pairs(a: HashBlock, b: HashBlock, threshold: int, *, same: bool,
                threads: int | None = None) -> Triple:
    """Image pairs within threshold by their closest stored hashes: (id_lo, id_hi, distance).

    Each unordered pair once, lower id first, sorted; with ``same`` pass one block twice.
    """
    vi, vj, dist = close_pairs_fast(a.hashes, b.hashes, threshold, same=same, threads=threads)
    ia, ib = a.owner[vi], b.owner[vj]
    if same:
        # Two orientations of one image are not a pair.
        keep = ia != ib
        ia, ib, dist = ia[keep], ib[keep], dist[keep]
    x, y = a.ids[ia], b.ids[ib]
    lo, hi = np.minimum(x, y), np.maximum(x, y)
    return _closest(lo, hi, dist)


def _closest(lo: np.ndarray, hi: np.ndarray, dist: np.ndarray) -> Triple:
    # Several stored hashes of one pair may match: keep the pair once, at its smallest distance.
    if len(lo) == 0:
        return lo.astype(np.int64), hi.astype(np.int64), dist.astype(np.int64)
    order = np.lexsort((dist, hi, lo))
    lo, hi, dist = lo[order], hi[order], dist[order]
    first = np.ones(len(lo), dtype=bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    return lo[first], hi[first], dist[first]


def distance_matrix(block: HashBlock) -> np.ndarray:
    """All-pairs distances between the block's images, closest stored hashes (for clustering)."""
    h = block.hashes
    n = len(block)
    # Reduce variant rows, then variant columns, to their images with a minimum; in row chunks
    # so the temporaries stay small for a large component.
    rows = np.full((n, len(h)), 64, dtype=np.uint8)
    for r0 in range(0, len(h), _MATRIX_CHUNK):
        r1 = min(r0 + _MATRIX_CHUNK, len(h))
        np.minimum.at(rows, block.owner[r0:r1], np.bitwise_count(h[r0:r1, None] ^ h[None, :]))
    out = np.full((n, n), 64, dtype=np.uint8)
    np.minimum.at(out.T, block.owner, rows.T)
    np.fill_diagonal(out, 0)
    return out
