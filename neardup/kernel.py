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
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from itertools import pairwise

import numpy as np

from neardup.matching import Triple, _as_uint64, _check_arguments, close_pairs, close_pairs_turned

__all__ = ["close_pairs_fast", "close_pairs_turned_fast", "default_threads", "warm"]

# Initial output slots per band; a band with more hits runs again with exactly what it needs.
_BAND_CAPACITY = 4096
# Bands per thread: evens out the tail when one thread is slowed by something else.
_BANDS_PER_THREAD = 4
# Below this many pairs a single band on the calling thread beats handing work out.
_MIN_PARALLEL_PAIRS = 4_000_000
# Below this many pairs numpy answers in a few milliseconds, while a fresh process spends about
# 0.3 s importing numba and loading the compiled kernel: a rescan compared in the CLI stays numpy.
# Once the kernel is loaded (a worker warms it at start), it answers every size: a 224-file block
# pair took numpy 175 us.
_NUMPY_BELOW = 4_000_000


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
    from neardup.kernel_jit import _band

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
    if pairs < _NUMPY_BELOW and not _kernel_loaded():
        return close_pairs(left, right, threshold, same=same)
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


def close_pairs_turned_fast(a: np.ndarray, turned: np.ndarray, threshold: int, *, same: bool,
                            threads: int | None = None) -> Triple:
    """close_pairs_turned's pairs (a pair may come once per version that is close; the closest is
    the caller's to keep): numpy's running minimum where close_pairs_fast would stay numpy too,
    else one compiled pass per version."""
    pairs = len(a) * (len(turned[0]) if len(turned) else 0) // (2 if same else 1)
    if not len(turned) or (pairs < _NUMPY_BELOW and not _kernel_loaded()):
        return close_pairs_turned(a, turned, threshold, same=same)
    parts = [close_pairs_fast(a, version, threshold, same=same, threads=threads) for version in turned]
    return tuple(np.concatenate(column) for column in zip(*parts))  # type: ignore[return-value]


def _kernel_loaded() -> bool:
    return "neardup.kernel_jit" in sys.modules


def warm() -> None:
    """Compile (or load from numba's cache) now, not in the first row a worker claims."""
    h = np.arange(4, dtype=np.uint64)
    for same in (True, False):
        _run_band(h, h, (0, len(h)), same, 1)
