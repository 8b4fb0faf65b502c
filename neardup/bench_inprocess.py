"""The in-process side of `neardup bench compare`: what the same work costs with no database.

Kernel against numpy, rotation-proof against single-hash matching, kernel plus grouping over the
whole set (the baseline the job's wall time is divided by), and brute-force references.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from neardup.clustering import components, split_hashes, warm_clustering
from neardup.grouping import Candidate, keep
from neardup.kernel import close_pairs_fast, row_bands, warm
from neardup.matching import close_pairs
from neardup.synthetic import SyntheticSet, orientation_distance
from neardup.variants import HashBlock, block_pairs

PairSet = set[tuple[int, int]]


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of repeat runs, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def numpy_pairs(a: np.ndarray, b: np.ndarray, threshold: int, threads: int) -> tuple[np.ndarray, ...]:
    """The numpy reference (close_pairs) spread over threads by row bands, like the kernel."""
    spans = row_bands(len(a), len(b), False, threads)
    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(lambda s: close_pairs(a[s[0]:s[1]], b, threshold, same=False), spans))
    ia = np.concatenate([p[0] + s[0] for p, s in zip(parts, spans)])
    return ia, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])


def kernel_vs_numpy(hashes: np.ndarray, threshold: int, threads: int, side: int = 16384) -> dict[str, Any]:
    """Pairs/s of both on the same block pair of the set's hashes, same threads."""
    a, b = hashes[:side], hashes[side: 2 * side] if len(hashes) >= 2 * side else hashes[:side]
    pairs = len(a) * len(b)
    t_kernel, fast = timed(lambda: close_pairs_fast(a, b, threshold, same=False, threads=threads), repeat=3)
    t_numpy, slow = timed(lambda: numpy_pairs(a, b, threshold, threads), repeat=1)
    same = all(np.array_equal(x, y) for x, y in zip(fast, slow))
    return {"kernel_pairs_per_s": pairs / t_kernel, "numpy_pairs_per_s": pairs / t_numpy,
            "kernel_vs_numpy": t_numpy / t_kernel, "kernel_equals_numpy": same}


def stored_block(data: SyntheticSet, ids: np.ndarray) -> HashBlock:
    """The whole set as one block, in the stored form (ids: the job's file id of each image)."""
    return HashBlock.from_lists(ids.tolist(), data.hashes.tolist(), data.alternatives, data.ties)


def in_process(data: SyntheticSet, ids: np.ndarray, threshold: int, threads: int) -> dict[str, Any]:
    """Kernel + grouping over the whole set: the baseline the job's wall time is set against."""
    block = stored_block(data, ids)
    warm()
    warm_clustering()
    t_kernel, (lo, hi, _) = timed(lambda: block_pairs(block, block, threshold, same=True, threads=threads),
                                  repeat=2)
    t_group, groups = timed(lambda: group_in_process(data, ids, lo, hi, threshold))
    return {"kernel_s": t_kernel, "grouping_s": t_group, "in_process_s": t_kernel + t_group,
            "pairs": set(zip(lo.tolist(), hi.tolist())), "groups": groups}


def rotation_cost(data: SyntheticSet, ids: np.ndarray, threshold: int, threads: int,
                  side: int = 40_000, rounds: int = 5) -> dict[str, Any]:
    """Rotation-proof matching (every stored hash) against single-hash matching, same images.

    On the first `side` images, alternated `rounds` times and best of each, so that a shared
    machine's slow moments hit both alike.
    """
    k = min(side, len(data))
    part = data.head(k)
    block = stored_block(part, ids[:k])
    t_single, t_rotation = float("inf"), float("inf")
    for _ in range(rounds):
        t_single = min(t_single, timed(
            lambda: close_pairs_fast(part.hashes, part.hashes, threshold, same=True, threads=threads))[0])
        t_rotation = min(t_rotation, timed(
            lambda: block_pairs(block, block, threshold, same=True, threads=threads))[0])
    return {"rotation_cost_ratio": t_rotation / t_single, "rotation_cost_images": k,
            "single_hash_s": t_single, "rotation_proof_s": t_rotation}


def group_in_process(data: SyntheticSet, ids: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                     threshold: int) -> int:
    """What the cluster phase does, in one process: components, splits, keepers; returns groups."""
    members, labels, sizes = components(lo, hi)
    index = np.searchsorted(ids, members)
    order = np.argsort(labels, kind="stable")
    bounds = np.cumsum(sizes)[:-1] if len(sizes) else []
    made = 0
    for chunk in np.split(order, bounds):
        k = index[chunk]
        # The job's hashes are sign hashes with rotations on: split in all 8 orientations as it does.
        groups = split_hashes(members[chunk].tolist(), data.hashes[k].tolist(),
                              [data.alternatives[i] for i in k], threshold, dihedral=True)
        for g in groups:
            keep([Candidate(int(members[chunk][i]), "", 0, 0, 0.0) for i in g])
        made += len(groups)
    return made


def reference_pairs(data: SyntheticSet, ids: np.ndarray, sample: np.ndarray, threshold: int) -> PairSet:
    """The stored form's pairs among a sample of images, matched with numpy: what the job must find."""
    sample = np.sort(sample)
    block = HashBlock.from_lists(ids[sample].tolist(), data.hashes[sample].tolist(),
                                 [data.alternatives[i] for i in sample], [data.ties[i] for i in sample])
    lo, hi, _ = block_pairs(block, block, threshold, same=True, match=close_pairs)
    return set(zip(lo.tolist(), hi.tolist()))


def planted_recall(data: SyntheticSet, ids: np.ndarray, found: PairSet, threshold: int) -> dict[str, Any]:
    """Planted copies found by the job against brute force over all 8 orientations."""
    rows = []
    for p in data.planted:
        bf = orientation_distance(data.blocks[p.original], data.blocks[p.copy]) <= threshold
        a, b = sorted((int(ids[p.original]), int(ids[p.copy])))
        rows.append((bf, (a, b) in found, p.symmetry != (False, False, False), p.flips))
    out: dict[str, Any] = {"planted": len(rows)}
    for name, subset in (("", rows), ("rotated_", [r for r in rows if r[2]])):
        total = max(1, len(subset))
        out[f"{name}recall_bruteforce"] = sum(r[0] for r in subset) / total
        out[f"{name}recall"] = sum(r[1] for r in subset) / total
        out[f"{name}missed_vs_bruteforce"] = sum(r[0] and not r[1] for r in subset)
    # Where the misses are: by how many plain-hash bits the copy's noise flipped.
    out["missed_by_flips"] = {f"{lo}-{hi}": sum(r[0] and not r[1] for r in rows if lo <= r[3] <= hi)
                              for lo, hi in ((0, 2), (3, 4), (5, 6), (7, 8), (9, 10))}
    return out
