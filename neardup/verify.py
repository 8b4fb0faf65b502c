"""Second look at near misses: the thumbnails of two images, correlated, confirm a looser pair.

A 64-bit hash reads a few low frequencies, and some true copies land just past the threshold: a
caption on a dark photo, a crop of a few percent, a heavy edit of an edit. Unrelated photos land
there too, more of them, so the threshold cannot just be raised. Each image also keeps the 32x32
grayscale thumbnail pHash reads (in its canonical orientation, 1 KiB), and a pair whose hashes are
past the threshold but within the job's verify_up_to is kept when their thumbnails correlate:
normalised cross-correlation of the central 26x26 of one against the other, shifted up to
SHIFT pixels each way (a crop moves the picture), in the orientation that brings their hashes
closest. On six edited-copy sets, 11-16-bit candidates: true copies score 0.85-1.0 (most over
0.9), unrelated photos never above 0.79 (`scripts/probe_verification.py`).

Pure code: ids, hashes and thumbnail bytes in, a verdict per pair out.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from neardup.orientation import SYMMETRIES, Symmetry, dihedral_hashes, on_pixels

__all__ = ["COARSE_FLOOR", "FLOOR", "SIDE", "Seen", "correlation", "correlations", "pack", "turn_between",
           "verified", "warm_verification"]

SIDE = 32  # neardup.hashspec.PHASH_SIDE: the thumbnail pHash's DCT reads
# Rows and columns left out on every side of the compared centre; shifts reach into them.
MARGIN = 3
SHIFT = 2
# The least correlation that confirms a pair. On eight edited-copy sets, 12,231 unrelated candidates
# at 11-20 bits: none passed the coarse look and then scored 0.70 (alone, the full correlation
# reached 0.77); 3,385 true ones: 2,608 at 0.9 or more, 224 in 0.85-0.9, 152 in 0.8-0.85. Recall at
# 0.9 / 0.85 / 0.8 (16 bits): 0.9883 / 0.9912 / 0.9941 on one set, 0.9472 / 0.9543 / 0.9584 on
# another, precision 1 at each.
FLOOR = 0.85
_INNER = SIDE - 2 * MARGIN
# First a coarse look: the thumbnails' 8x8 grids of 4x4-pixel means (centre 6x6 cells), unshifted.
# Most unrelated candidates fail it at a fiftieth of the full correlation's cost; every candidate
# that went on to reach FLOOR had at least 0.84 on four edited-copy sets (most unrelated ones
# fewer than 0.6).
_CELLS = 8
COARSE_FLOOR = 0.7
# Below this many full correlations numpy (~0.2 ms each) beats loading the compiled one into a
# fresh process (~0.5 s: a rescan in the CLI meets a few dozen); a worker loads it at start
# (warm_verification), and once loaded it answers every size at ~11 us each.
_COMPILED_FROM = 2048


class Seen(Protocol):
    """What verification reads of one image: its canonical hash and its thumbnail bytes."""

    @property
    def hash(self) -> int: ...  # signed 64-bit sign hash, canonical orientation

    @property
    def thumb(self) -> bytes | None: ...  # SIDE x SIDE uint8, canonical orientation; None: none stored


def pack(thumb: np.ndarray, s: Symmetry) -> bytes:
    """The float thumbnail turned by s (the canonical symmetry), rounded to bytes."""
    turned = on_pixels(np.asarray(thumb, dtype=np.float64), s)
    return np.clip(np.rint(turned), 0, 255).astype(np.uint8).tobytes()


def _pixels(thumb: bytes) -> np.ndarray:
    return np.frombuffer(_checked(thumb), dtype=np.uint8).reshape(SIDE, SIDE).astype(np.float64)


def turn_between(a: int, b: int) -> Symmetry:
    """The symmetry of b's canonical frame that brings its sign hash closest to a's."""
    return SYMMETRIES[int(_turns(np.array([a], dtype=np.int64), np.array([b], dtype=np.int64))[0])]


def correlation(a: bytes, b: bytes, turn: Symmetry) -> float:
    """Best normalised cross-correlation of b's centre (turned) against a, shifted up to SHIFT px;
    a pair whose coarse correlation (coarse()) is below COARSE_FLOOR scores that instead."""
    pa, pb = _pixels(a), on_pixels(_pixels(b), turn)
    rough = _coarse_score(pa, pb)
    if rough < COARSE_FLOOR:
        return rough
    centre = pb[MARGIN:MARGIN + _INNER, MARGIN:MARGIN + _INNER]
    centre = centre - centre.mean()
    lo, hi = MARGIN - SHIFT, MARGIN + SHIFT + 1
    windows = sliding_window_view(pa, (_INNER, _INNER))[lo:hi, lo:hi]  # (shifts, shifts, inner, inner)
    # centre has mean 0, so each window's own mean drops out of the product.
    products = np.einsum("ijkl,kl->ij", windows, centre)
    sums = windows.sum(axis=(2, 3))
    squares = np.einsum("ijkl,ijkl->ij", windows, windows)
    spread = squares - sums * sums / (_INNER * _INNER)
    den = np.sqrt(np.maximum(spread, 0.0) * float((centre * centre).sum()))
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(den > 1e-9, products / den, 0.0)
    return float(scores.max())


def _coarse_score(pa: np.ndarray, pb: np.ndarray) -> float:
    """Correlation of the two thumbnails' 4x4-pixel means, centre 6x6 cells, unshifted (pb turned)."""
    x, y = _coarse(pa), _coarse(pb)
    den = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return float((x * y).sum()) / den if den > 1e-9 else 0.0


def _coarse(pixels: np.ndarray) -> np.ndarray:
    cells = pixels.reshape(_CELLS, SIDE // _CELLS, _CELLS, SIDE // _CELLS).mean(axis=(1, 3))[1:-1, 1:-1]
    return cells - cells.mean()


def verified(lo: np.ndarray, hi: np.ndarray, seen: Mapping[int, Seen], floor: float = FLOOR) -> np.ndarray:
    """Per candidate pair (ids lo[k], hi[k]): whether their thumbnails confirm it. A pair with an
    image stored without a thumbnail is not confirmed."""
    return correlations(lo, hi, seen) >= floor


def correlations(lo: np.ndarray, hi: np.ndarray, seen: Mapping[int, Seen]) -> np.ndarray:
    """correlation() of each candidate pair in the orientation its hashes agree on; 0 without
    both thumbnails. The coarse look runs on every pair at once; the full correlation of those
    that pass is compiled (neardup.verify_jit) when they are many, numpy when they are few."""
    lo, hi = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
    out = np.zeros(len(lo), dtype=np.float64)
    ids = np.array(sorted(i for i, f in seen.items() if f.thumb is not None), dtype=np.int64)
    if not len(ids) or not len(lo):
        return out
    ia = np.minimum(np.searchsorted(ids, lo), len(ids) - 1)
    ib = np.minimum(np.searchsorted(ids, hi), len(ids) - 1)
    usable = np.flatnonzero((ids[ia] == lo) & (ids[ib] == hi))
    ia, ib = ia[usable], ib[usable]
    hashes = np.array([seen[i].hash for i in ids.tolist()], dtype=np.int64)
    # Each image's 8 turns once, not once per pair it is in.
    turns = _turns(hashes[ia], hashes[ib], dihedral_hashes(hashes)[:, ib])
    thumbs = [_checked(seen[i].thumb) for i in ids.tolist()]  # type: ignore[arg-type]
    pixels = np.frombuffer(b"".join(thumbs), dtype=np.uint8).reshape(len(ids), SIDE, SIDE)
    out[usable] = _coarse_scores(pixels, ia, ib, turns)
    go = np.flatnonzero(out[usable] >= COARSE_FLOOR)
    if len(go) < _COMPILED_FROM and "neardup.verify_jit" not in sys.modules:
        full = [correlation(thumbs[x], thumbs[y], SYMMETRIES[t])
                for x, y, t in zip(ia[go].tolist(), ib[go].tolist(), turns[go].tolist())]
    else:
        from neardup.verify_jit import best_correlations

        full = best_correlations(pixels, ia[go], ib[go], turns[go], MARGIN, SHIFT)
    out[usable[go]] = full
    return out


def _coarse_scores(pixels: np.ndarray, ia: np.ndarray, ib: np.ndarray, turns: np.ndarray) -> np.ndarray:
    """_coarse_score of every pair at once: each image's cell grid in its 8 turns, normalised."""
    step, inner = SIDE // _CELLS, _CELLS - 2
    centre = pixels[:, step:SIDE - step, step:SIDE - step].astype(np.float32)
    # Cell means as two small matrix products (pool rows, pool columns): a batched BLAS call,
    # several times faster than a reduction over a 5-axis view.
    pool = np.kron(np.eye(inner, dtype=np.float32), np.full((1, step), 1.0 / step, dtype=np.float32))
    grids = (pool @ centre @ pool.T).astype(np.float64)
    grids -= grids.mean(axis=(1, 2), keepdims=True)
    turned = np.stack([_turn_all(grids, s) for s in SYMMETRIES]).reshape(len(SYMMETRIES), len(pixels), -1)
    norms = np.linalg.norm(turned, axis=2, keepdims=True)
    unit = np.divide(turned, norms, out=np.zeros_like(turned), where=norms > 1e-9)
    return np.einsum("pk,pk->p", unit[0, ia], unit[turns, ib])


def _turn_all(grids: np.ndarray, s: Symmetry) -> np.ndarray:
    # on_pixels over a stack of grids (axis 0: the images).
    out = grids.transpose(0, 2, 1) if s.transpose else grids
    if s.mirror_x:
        out = out[:, :, ::-1]
    if s.mirror_y:
        out = out[:, ::-1, :]
    return out


def warm_verification() -> None:
    """Load (or compile) the compiled verifier now, not in the first row a worker claims."""
    from neardup.verify_jit import best_correlations

    tiny = np.zeros((1, SIDE, SIDE), dtype=np.uint8)
    best_correlations(tiny, np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64), MARGIN, SHIFT)


def _checked(thumb: bytes) -> bytes:
    if len(thumb) != SIDE * SIDE:
        raise ValueError(f"a thumbnail is {SIDE * SIDE} bytes, not {len(thumb)}")
    return thumb


def _turns(a: np.ndarray, b: np.ndarray, turned_b: np.ndarray | None = None) -> np.ndarray:
    """Per pair, the index (into SYMMETRIES) of the turn of b's sign hash closest to a's;
    turned_b: dihedral_hashes(b) when already known."""
    turned = dihedral_hashes(b) if turned_b is None else turned_b  # (8, n)
    return np.argmin(np.bitwise_count(turned ^ a.view(np.uint64)[None, :]), axis=0).astype(np.int64)
