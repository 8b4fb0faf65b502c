"""Measure a verification stage before building it: would thumbnails confirm the near misses?

    python scripts/probe_verification.py SET_DIR [--loose 16] [--ncc 0.9]

SET_DIR holds images and ground_truth.csv (file,group,transform), as `neardup eval` reads. For
every pair of files this takes the brute-force sign-hash distance (all 8 orientations) and, for
pairs between the threshold (10) and --loose, the best normalised cross-correlation of their
trimmed 40x40 grayscale thumbnails (central 32x32, shifts up to 3 px, all 8 orientations). It
prints how many true and false pairs pass each correlation floor, and pairwise precision/recall
of plain connected components with and without the verified pairs: an upper bound on what a
compare phase that verifies its 11-16-bit candidates could reach on the set. Quadratic in the set
size and slow (pure numpy): meant for the few hundred files of a test set.
"""
from __future__ import annotations

import argparse
import csv
import os
from itertools import combinations

import numpy as np
from PIL import Image

from neardup.clustering import components
from neardup.fingerprint import dct_block, trim_border
from neardup.hashing import normalise_gray
from neardup.orientation import SYMMETRIES, on_pixels, orientation_hashes

THRESHOLD = 10
SIDE, INNER, SHIFT = 40, 32, 3


def load(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(8 orientation sign hashes, 40x40 thumbnail) of the trimmed grayscale image."""
    with Image.open(path) as im:
        im.seek(0)
        gray = trim_border(normalise_gray(im))
    hashes = np.array(orientation_hashes(dct_block(gray)), dtype=np.int64).view(np.uint64)
    thumb = np.asarray(gray.resize((SIDE, SIDE), Image.Resampling.LANCZOS), dtype=np.float64)
    return hashes, thumb


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum()) / den if den > 0 else 0.0


def best_correlation(a: np.ndarray, b: np.ndarray) -> float:
    m = (SIDE - INNER) // 2
    best = -1.0
    for s in SYMMETRIES:
        turned = on_pixels(b, s)[m:m + INNER, m:m + INNER]
        for dy in range(-SHIFT, SHIFT + 1):
            for dx in range(-SHIFT, SHIFT + 1):
                best = max(best, ncc(a[m + dy:m + dy + INNER, m + dx:m + dx + INNER], turned))
    return best


def scores(edges: list[tuple[int, int]], group: list[str]) -> tuple[float, float]:
    n = len(group)
    label: dict[int, int] = {}
    if edges:
        ids, labels, _ = components(np.array([e[0] for e in edges]), np.array([e[1] for e in edges]))
        label = dict(zip(ids.tolist(), labels.tolist()))
    tp = fp = fn = 0
    for i, j in combinations(range(n), 2):
        same, together = group[i] == group[j], i in label and label.get(i) == label.get(j)
        tp += same and together
        fn += same and not together
        fp += together and not same
    return tp / max(1, tp + fp), tp / max(1, tp + fn)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("set_dir")
    ap.add_argument("--loose", type=int, default=16, help="candidates up to this many bits (default 16)")
    ap.add_argument("--ncc", type=float, default=0.9, help="correlation floor of a verified pair (default 0.9)")
    args = ap.parse_args()
    with open(os.path.join(args.set_dir, "ground_truth.csv"), newline="") as f:
        rows = sorted((os.path.join(args.set_dir, r["file"]), r["group"]) for r in csv.DictReader(f))
    paths, group = [p for p, _ in rows], [g for _, g in rows]
    loaded = [load(p) for p in paths]
    hashes = np.array([h for h, _ in loaded])
    dist = np.bitwise_count(hashes[:, 0][:, None, None] ^ hashes[None, :, :]).min(axis=2)
    close, verified, true_scores, false_scores = [], [], [], []
    for i, j in combinations(range(len(paths)), 2):
        if dist[i, j] <= THRESHOLD:
            close.append((i, j))
        elif dist[i, j] <= args.loose:
            score = best_correlation(loaded[i][1], loaded[j][1])
            (true_scores if group[i] == group[j] else false_scores).append(score)
            if score >= args.ncc:
                verified.append((i, j))
    t, f = np.array(true_scores), np.array(false_scores)
    print(f"{args.set_dir}: {len(paths)} files; pairs at {THRESHOLD + 1}-{args.loose} bits: "
          f"{len(t)} true, {len(f)} false (highest false correlation {f.max() if len(f) else float('nan'):.3f})")
    for floor in (0.90, 0.93, 0.95, 0.97):
        print(f"  correlation >= {floor}: {(t >= floor).sum()} true kept, {(f >= floor).sum()} false kept")
    p0, r0 = scores(close, group)
    p1, r1 = scores(close + verified, group)
    print(f"  components of pairs <= {THRESHOLD} bits (all orientations): precision {p0:.4f} recall {r0:.4f}")
    print(f"  plus verified {THRESHOLD + 1}-{args.loose}-bit pairs:            precision {p1:.4f} recall {r1:.4f}")


if __name__ == "__main__":
    main()
