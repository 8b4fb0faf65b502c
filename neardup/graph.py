"""The pair graph's connected components, and work rows over them (the cluster phase's first row).

Pure numpy: no scipy here, whose import would be most of a rescan that meets a few pairs.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["batch_components", "components", "unique_inverse"]


def components(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Connected components of the pair graph: (file ids, component of each, component sizes).

    Components are numbered from 1 by descending size (then smallest member), so the large ones
    are scheduled first; images in no pair are in no component.
    """
    ids, inverse = unique_inverse(np.concatenate([a, b]))
    if len(ids) == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    labels = _root_labels(len(ids), inverse[: len(a)], inverse[len(a):])
    n = len(ids)
    _, labels = unique_inverse(labels)
    sizes = np.bincount(labels)
    first_member = np.full(len(sizes), n, dtype=np.int64)
    np.minimum.at(first_member, labels, np.arange(n))
    order = np.lexsort((first_member, -sizes))  # biggest first, then by smallest member
    number = np.empty(len(sizes), dtype=np.int64)
    number[order] = np.arange(1, len(sizes) + 1)
    return ids, number[labels], sizes[order]


def _root_labels(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Each node's component root (its smallest member index), by union-find in whole arrays.

    Not scipy's connected_components: importing scipy.sparse costs a fresh process half a second,
    most of a rescan that meets a few pairs. Each round hooks every edge's larger root under its
    smaller one, then jumps pointers until every node points at a root; roots only ever decrease,
    so no cycle forms, and a round leaves an edge split only if its roots' hook lost to a smaller
    one, which the next round catches.
    """
    parent = np.arange(n)
    while True:
        ru, rv = parent[u], parent[v]
        split = ru != rv
        if not split.any():
            return parent
        lo, hi = np.minimum(ru[split], rv[split]), np.maximum(ru[split], rv[split])
        np.minimum.at(parent, hi, lo)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


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


def unique_inverse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(x, return_inverse=True): the distinct values and each entry's place among them,
    without np.unique's first call importing numpy.ma (14 ms of a rescan's 450)."""
    order = np.argsort(x, kind="stable")
    ordered = x[order]
    first = np.ones(len(x), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    inverse = np.empty(len(x), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse
