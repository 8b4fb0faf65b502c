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

__all__ = ["FLOOR", "SIDE", "Seen", "correlation", "pack", "turn_between", "verified"]

SIDE = 32  # neardup.hashspec.PHASH_SIDE: the thumbnail pHash's DCT reads
# Rows and columns left out on every side of the compared centre; shifts reach into them.
MARGIN = 3
SHIFT = 2
# The least correlation that confirms a pair. Unrelated photos' thumbnails reached 0.79 at most in
# 11-16-bit candidates of six sets; true copies mostly score over 0.9.
FLOOR = 0.9
_INNER = SIDE - 2 * MARGIN
# Below this many candidates numpy answers in milliseconds, where loading numba costs a fresh
# process about 0.3 s (a rescan that meets a few near misses); once loaded it answers every size.
_COMPILED_FROM = 64


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
    """Best normalised cross-correlation of b's centre (turned) against a, shifted up to SHIFT px."""
    pa, pb = _pixels(a), on_pixels(_pixels(b), turn)
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


def verified(lo: np.ndarray, hi: np.ndarray, seen: Mapping[int, Seen], floor: float = FLOOR) -> np.ndarray:
    """Per candidate pair (ids lo[k], hi[k]): whether their thumbnails confirm it. A pair with an
    image stored without a thumbnail is not confirmed."""
    return correlations(lo, hi, seen) >= floor


def correlations(lo: np.ndarray, hi: np.ndarray, seen: Mapping[int, Seen]) -> np.ndarray:
    """correlation() of each candidate pair in the orientation its hashes agree on; 0 without
    both thumbnails. Compiled (neardup.verify_jit) for many pairs, numpy for a few."""
    lo, hi = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
    out = np.zeros(len(lo), dtype=np.float64)
    usable = [k for k, (x, y) in enumerate(zip(lo.tolist(), hi.tolist()))
              if getattr(seen.get(x), "thumb", None) is not None and getattr(seen.get(y), "thumb", None) is not None]
    if not usable:
        return out
    ids = sorted({int(v) for k in usable for v in (lo[k], hi[k])})
    at = {i: n for n, i in enumerate(ids)}
    ia = np.array([at[int(lo[k])] for k in usable], dtype=np.int64)
    ib = np.array([at[int(hi[k])] for k in usable], dtype=np.int64)
    hashes = np.array([seen[i].hash for i in ids], dtype=np.int64)
    turns = _turns(hashes[ia], hashes[ib])
    if len(usable) < _COMPILED_FROM and "neardup.verify_jit" not in sys.modules:
        scores = [correlation(seen[ids[x]].thumb, seen[ids[y]].thumb, SYMMETRIES[t])  # type: ignore[arg-type]
                  for x, y, t in zip(ia.tolist(), ib.tolist(), turns.tolist())]
    else:
        from neardup.verify_jit import best_correlations

        thumbs = np.frombuffer(b"".join(_checked(seen[i].thumb) for i in ids), dtype=np.uint8)  # type: ignore[arg-type]
        scores = best_correlations(thumbs.reshape(len(ids), SIDE, SIDE), ia, ib, turns, MARGIN, SHIFT)
    out[usable] = scores
    return out


def _checked(thumb: bytes) -> bytes:
    if len(thumb) != SIDE * SIDE:
        raise ValueError(f"a thumbnail is {SIDE * SIDE} bytes, not {len(thumb)}")
    return thumb


def _turns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pair, the index (into SYMMETRIES) of the turn of b's sign hash closest to a's."""
    turned = dihedral_hashes(b)  # (8, n)
    return np.argmin(np.bitwise_count(turned ^ a.view(np.uint64)[None, :]), axis=0).astype(np.int64)
