"""The compiled Hamming kernel: every pair within a threshold between two blocks of 64-bit hashes.

Same contract as neardup.matching.close_pairs (the numpy reference, kept as the fallback), about
an order of magnitude faster. The inner loop only counts hits, so LLVM vectorises it (AVX2 popcount
by nibble lookup); the rare chunk with a hit is scanned again to write its pairs. Pairs go to
preallocated buffers: each band writes into its own, keeps counting past the end, and only a band
that overflowed runs again with the exact size. Threads are plain Python threads over nogil bands,
split so each gets the same number of pairs, which works with any numba threading layer and from
several worker threads at once.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from itertools import pairwise

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from neardup.matching import Triple, _as_uint64, _check_arguments

__all__ = ["close_pairs_fast", "default_threads", "warm"]

# Hashes of b scanned per hit test: small enough that a rescan is cheap, large enough that the
# vectorised loop runs long.
_CHUNK = 1024
# Initial output slots per band; a band with more hits runs again with exactly what it needs.
_BAND_CAPACITY = 4096
# Bands per thread: evens out the tail when one thread is slowed by something else.
_BANDS_PER_THREAD = 4
# Below this many pairs a single band on the calling thread beats handing work out.
_MIN_PARALLEL_PAIRS = 4_000_000


@intrinsic
def _popcount(typingctx, x):  # type: ignore[no-untyped-def]
    # numba has no popcount of its own; llvm.ctpop is what vectorises.
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.ctpop(args[0])

    return sig, codegen


@njit(nogil=True, cache=True, inline="always")
def _hits(x, seg, threshold):  # type: ignore[no-untyped-def]
    # A reduction over a slice (no index arithmetic, no stores): the shape LLVM vectorises.
    h = 0
    for j in range(seg.size):
        h += _popcount(x ^ seg[j]) <= threshold
    return h


@njit(nogil=True, cache=True)
def _band(a, b, start, stop, same, threshold, out_i, out_j, out_d):  # type: ignore[no-untyped-def]
    """Pairs of rows start..stop of a against b; returns how many there are (even past capacity)."""
    n = 0
    cap = out_i.size
    nb = b.size
    for i in range(start, stop):
        x = a[i]
        c0 = i + 1 if same else 0
        while c0 < nb:
            c1 = min(c0 + _CHUNK, nb)
            seg = b[c0:c1]
            if _hits(x, seg, threshold):
                for k in range(seg.size):
                    d = _popcount(x ^ seg[k])
                    if d <= threshold:
                        if n < cap:
                            out_i[n] = i
                            out_j[n] = c0 + k
                            out_d[n] = d
                        n += 1
            c0 = c1
    return n


def default_threads() -> int:
    """NEARDUP_KERNEL_THREADS, else 1: worker processes already fill the cores, one per core."""
    raw = os.environ.get("NEARDUP_KERNEL_THREADS", "")
    return max(1, int(raw)) if raw.strip() else 1


@cache
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="neardup-kernel")


def row_bands(n_left: int, n_right: int, same: bool, count: int) -> list[tuple[int, int]]:
    """Row ranges of a holding about the same number of pairs each (the triangle is uneven)."""
    if n_left == 0:
        return []
    if same:
        work = np.cumsum(np.arange(n_right - 1, n_right - 1 - n_left, -1, dtype=np.float64))
    else:
        work = np.arange(1, n_left + 1, dtype=np.float64) * n_right
    total = work[-1] if work[-1] > 0 else 1.0
    cuts = np.searchsorted(work, total * np.arange(1, count) / count, side="left") + 1
    edges = [0, *sorted({int(c) for c in cuts if 0 < c < n_left}), n_left]
    return list(pairwise(edges))


def _run_band(left: np.ndarray, right: np.ndarray, span: tuple[int, int], same: bool,
              threshold: int) -> Triple:
    capacity = _BAND_CAPACITY
    while True:
        out_i = np.empty(capacity, dtype=np.int64)
        out_j = np.empty(capacity, dtype=np.int64)
        out_d = np.empty(capacity, dtype=np.int64)
        n = _band(left, right, span[0], span[1], same, threshold, out_i, out_j, out_d)
        if n <= capacity:
            return out_i[:n], out_j[:n], out_d[:n]
        capacity = n  # The count is exact: one more run fills it.


def close_pairs_fast(a: np.ndarray, b: np.ndarray, threshold: int, *, same: bool,
                     threads: int | None = None) -> Triple:
    """Every (i, j) with popcount(a[i] ^ b[j]) <= threshold, as close_pairs: sorted by i then j."""
    left, right = _as_uint64(a), _as_uint64(b)
    _check_arguments(left, right, threshold, same)
    threads = default_threads() if threads is None else max(1, threads)
    pairs = len(left) * len(right) // (2 if same else 1)
    count = 1 if threads == 1 or pairs < _MIN_PARALLEL_PAIRS else threads * _BANDS_PER_THREAD
    spans = row_bands(len(left), len(right), same, count)
    if len(spans) <= 1:
        parts = [_run_band(left, right, s, same, threshold) for s in spans]
    else:
        parts = list(_pool(threads).map(lambda s: _run_band(left, right, s, same, threshold), spans))
    if not parts:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.copy(), empty.copy()
    # Bands are row ranges in order, and each band is row-major: concatenation stays sorted.
    return tuple(np.concatenate(column) for column in zip(*parts))  # type: ignore[return-value]


def warm() -> None:
    """Compile (or load from numba's cache) now, not in the first row a worker claims."""
    h = np.arange(4, dtype=np.uint64)
    close_pairs_fast(h, h, 1, same=True, threads=1)
    close_pairs_fast(h, h, 1, same=False, threads=1)
