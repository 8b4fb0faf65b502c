"""`neardup bench verify`: what verifying near misses costs beside hashing and the kernel, same run.

The photos are hashed in-process as the hash phase hashes them (timed: the core-seconds an image
costs to hash, the yardstick), then put in one block. For each bound it counts the candidates
past the threshold (the rate among all pairs, which is what grows with a job) and those their
thumbnails confirm. Verification's unit costs are measured apart: per candidate (the candidates
repeated until they far outnumber the images) and per image of a compare row (each image in one
pair). From these it projects, for each tier of neardup.hashspec.VERIFY_BY_SIZE, verification's
core-seconds at the tier's largest job against its hashing's. In-process and single-threaded;
fetching the thumbnails from PostgreSQL is not counted.
"""
from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from neardup.cli import BLOCK_SIZE, Exit, Fail, emit_json, env, flag, positive, stderr_console

BOUNDS = (12, 14, 16, 18, 20, 22)
# Projections stop at the product's largest job; the last tier has no end of its own.
LARGEST_JOB = 5_000_000


def register_bench(kinds: argparse._SubParsersAction) -> None:
    v = kinds.add_parser("verify", help="verification of near misses beside the compare kernel",
                         epilog="examples:\n  neardup bench verify --json\n"
                                "  neardup bench verify --dir ~/Pictures --json",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    v.add_argument("--images", type=positive, default=env("BENCH_IMAGES", 2000, int),
                   help="photo-sized JPEGs to generate, once (default 2000)")
    v.add_argument("--dir", default=env("BENCH_DIR", None), help="use the images under this folder instead")
    v.add_argument("--json", action="store_true", default=flag("JSON"), help="print one JSON object")
    v.set_defaults(run=run)


def _hash(path: str) -> tuple[int, tuple[int, ...], int, bytes | None] | None:
    from neardup.hashing import HashError, hash_file
    from neardup.hashspec import HashSpec

    try:
        info = hash_file(path, HashSpec(), draft=True)
    except HashError:
        return None
    return info.hash, info.alternatives, info.ties, info.thumb


def _images(args: argparse.Namespace) -> list[str]:
    from db.embedded import data_home
    from neardup.bench_hash import PHOTOS_VERSION, make_photos

    if args.dir is None:
        folder = data_home() / "bench" / f"photos-v{PHOTOS_VERSION}-{args.images}"
        stderr_console().print(f"bench: {args.images} photos in {folder} (made once)")
        return [str(p) for p in make_photos(folder, args.images)]
    root = Path(args.dir)
    if not root.is_dir():
        raise Fail(f"--dir {root}: not a directory", Exit.USAGE)
    found = sorted(str(p) for p in root.rglob("*") if p.is_file() and p.suffix.lower() != ".csv")
    if len(found) < 2:
        raise Fail(f"--dir {root}: fewer than two files", Exit.USAGE)
    return found


def _candidates(block, threshold: int, bound: int):  # type: ignore[no-untyped-def]
    """(lower ids, higher ids) of the pairs past the threshold and within bound."""
    from neardup.variants import block_pairs

    lo, hi, dist = block_pairs(block, block, bound, same=True, threads=1)
    return lo[dist > threshold], hi[dist > threshold]


def _unit_costs(candidates, seen, n: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(us a candidate, us an image) of neardup.verify.correlations: the candidates repeated until
    they outnumber the images a hundredfold, then every image in one pair."""
    import numpy as np

    from neardup.verify import correlations

    lo, hi = candidates
    if not len(lo):
        return 0.0, 0.0
    times = max(1, -(-100 * n // len(lo)))
    lo_many, hi_many = np.tile(lo, times), np.tile(hi, times)
    start = time.perf_counter()
    correlations(lo_many, hi_many, seen)
    per_candidate = (time.perf_counter() - start) / len(lo_many)
    ids = np.arange(n - n % 2)
    start = time.perf_counter()
    correlations(ids[0::2], ids[1::2], seen)
    per_image = max(0.0, (time.perf_counter() - start) - per_candidate * len(ids) // 2) / max(1, len(ids))
    return per_candidate * 1e6, per_image * 1e6


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from db.models import SeenFile
    from neardup.hashspec import VERIFY_BY_SIZE
    from neardup.kernel import warm
    from neardup.variants import HashBlock, block_pairs
    from neardup.verify import FLOOR, correlations, warm_verification

    paths = _images(args)
    processes = os.cpu_count() or 1
    start = time.perf_counter()
    with ProcessPoolExecutor(processes) as pool:
        hashed = [h for h in pool.map(_hash, paths, chunksize=16) if h is not None]
    hash_s_per_image = (time.perf_counter() - start) * processes / len(paths)  # core-seconds
    n = len(hashed)
    ids = list(range(n))
    block = HashBlock.from_lists(ids, [h[0] for h in hashed], [h[1] for h in hashed], [h[2] for h in hashed])
    seen = {i: SeenFile(h[0], h[3]) for i, h in zip(ids, hashed)}
    warm()
    warm_verification()
    threshold, pairs = 10, n * (n - 1) // 2
    start = time.perf_counter()
    block_pairs(block, block, threshold, same=True, threads=1)
    kernel_s = time.perf_counter() - start
    per_candidate_us, per_image_us = _unit_costs(_candidates(block, threshold, max(BOUNDS)), seen, n)
    bounds: dict[str, dict[str, Any]] = {}
    for bound in BOUNDS:
        start = time.perf_counter()
        lo, hi, dist = block_pairs(block, block, bound, same=True, threads=1)
        loose_kernel_s = time.perf_counter() - start
        far = dist > threshold
        scores = correlations(lo[far], hi[far], seen)
        candidates = int(far.sum())
        bounds[str(bound)] = {"candidates": candidates, "rate": candidates / pairs,
                              "confirmed": int((scores >= FLOOR).sum()), "kernel_s": round(loose_kernel_s, 4)}
    tiers = []
    for most, bits in VERIFY_BY_SIZE:
        files = min(most, LARGEST_JOB)
        side = min(files, BLOCK_SIZE)
        rows = (-(-files // side)) ** 2 / 2
        if bits <= threshold:
            continue  # verification off
        rate = bounds[str(bits)]["rate"]
        # Every candidate once, and each row's images that are in some candidate once: an image
        # meets `side` others in a row, each a candidate at the rate.
        involved = 1 - np.exp(-rate * side)
        verify_core_s = (rate * files * (files - 1) / 2 * per_candidate_us
                         + rows * 2 * side * involved * per_image_us) / 1e6
        tiers.append({"files_up_to": files, "bits": bits, "verify_core_s": round(verify_core_s, 1),
                      "hash_core_s": round(files * hash_s_per_image, 1),
                      "verify_share_of_hashing": round(verify_core_s / (files * hash_s_per_image), 4)})
    result = {"images": n, "pairs": pairs, "threshold": threshold, "hash_core_s_per_image": round(hash_s_per_image, 5),
              "kernel_s_at_threshold": round(kernel_s, 4), "verify_us_per_candidate": round(per_candidate_us, 3),
              "verify_us_per_image": round(per_image_us, 3), "bounds": bounds, "tiers": tiers,
              "note": "in-process, one thread; projections scale the candidate rate and cost measured here"}
    if args.json:
        emit_json(result)
    else:
        console = stderr_console()
        console.print(f"verification: {per_candidate_us:.2f} us a candidate, {per_image_us:.2f} us an image")
        for bits, b in bounds.items():
            console.print(f"within {bits} bits: {b['candidates']} candidates (rate {b['rate']:.1e}), "
                          f"{b['confirmed']} confirmed")
        for t in tiers:
            console.print(f"up to {t['files_up_to']:,} files at {t['bits']} bits: verification "
                          f"{t['verify_core_s']:,} core-s, {100 * t['verify_share_of_hashing']:.1f} % of hashing")
    return int(Exit.OK)
