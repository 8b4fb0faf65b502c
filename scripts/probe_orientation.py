"""Measure the stored form on a labelled set: true pairs its orientations miss, and what it costs.

    python scripts/probe_orientation.py SET_DIR [--up-to 16] [--margin 0.25 --reach 1.0 ...]

SET_DIR holds images and ground_truth.csv (file,group,transform), as `neardup eval` reads. Each
image is hashed as the hash phase does (draft decode, border trim, canonical orientation with its
near-tie alternatives). For each margin/reach given (pairs of --margin and --reach, default the
current ones), it prints:

- true pairs within --up-to bits by brute force over the 8 orientations, and how many of them the
  compare phase's stored-form matching (canonical hashes, alternatives against the images near
  their walls) misses: copies whose canonical orientations went apart;
- unrelated pairs it finds within --up-to bits (candidates verification must turn away);
- the compare work beside a single-hash pass: 1 + 2 x sum over walls of (alternatives that
  crossed it x images near it) / images^2.

Quadratic in the set size: meant for the few hundred files of a test set.
"""
from __future__ import annotations

import argparse
import csv
import os

import numpy as np

from neardup.hashing import hash_file
from neardup.hashspec import HashSpec
from neardup.orientation import DEFAULT_MARGIN, DEFAULT_REACH, WALLS, dihedral_hashes
from neardup.variants import HashBlock, block_pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set_dir")
    ap.add_argument("--up-to", type=int, default=16, help="pairs within this many bits (default 16)")
    ap.add_argument("--margin", type=float, action="append", help=f"near-tie band (default {DEFAULT_MARGIN})")
    ap.add_argument("--reach", type=float, action="append", help=f"near-wall reach (default {DEFAULT_REACH})")
    args = ap.parse_args()
    margins, reaches = args.margin or [DEFAULT_MARGIN], args.reach or [DEFAULT_REACH]
    if len(margins) != len(reaches):
        ap.error("give as many --reach as --margin")
    with open(os.path.join(args.set_dir, "ground_truth.csv"), newline="") as f:
        rows = sorted((os.path.join(args.set_dir, r["file"]), r["group"]) for r in csv.DictReader(f))
    group = np.array([g for _, g in rows])
    n = len(rows)
    upper = np.triu_indices(n, 1)
    same = group[upper[0]] == group[upper[1]]
    for margin, reach in zip(margins, reaches):
        infos = [hash_file(p, HashSpec(margin=margin, reach=reach), draft=True) for p, _ in rows]
        canonical = np.array([i.hash for i in infos], dtype=np.int64)
        turned = dihedral_hashes(canonical)  # (8, n)
        brute = np.bitwise_count(canonical.view(np.uint64)[:, None, None] ^ turned.T[None, :, :]).min(axis=2)
        block = HashBlock.from_lists(list(range(n)), canonical.tolist(), [i.alternatives for i in infos],
                                     [i.ties for i in infos])
        lo, hi, _ = block_pairs(block, block, args.up_to, same=True)
        found = np.zeros((n, n), dtype=bool)
        found[lo, hi] = True
        wanted = same & (brute[upper] <= args.up_to)
        work = 1 + 2 * sum(len(block.crossing(w)) * len(block.near_to(w)) for w in range(len(WALLS))) / n**2
        print(f"{args.set_dir}: margin {margin:g} reach {reach:g}, {n} files: true pairs within {args.up_to} "
              f"bits (brute force) {int(wanted.sum())}, missed by the stored forms "
              f"{int((wanted & ~found[upper]).sum())}; unrelated pairs found {int((~same & found[upper]).sum())}; "
              f"compare work {work:.3f}x a single-hash pass")


if __name__ == "__main__":
    main()
