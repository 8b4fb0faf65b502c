"""Second look at near misses: the thumbnails of two images, correlated, confirm a looser pair.

A 64-bit hash reads a few low frequencies, and some true copies land just past the threshold: a
caption on a dark photo, a crop of a few percent, a heavy edit of an edit. Unrelated photos land
there too, more of them, so the threshold cannot just be raised. Each image also keeps the 32x32
grayscale thumbnail pHash reads (in its canonical orientation, 1 KiB), and a pair whose hashes are
past the threshold but within the job's verify_up_to is kept when their thumbnails correlate:
normalised cross-correlation of the central 26x26 of one against the other, shifted up to
SHIFT pixels each way (a crop moves the picture), in the orientation that brings their hashes
closest, after a coarse look at their cell means turns most unrelated pairs away cheaply (see
FLOOR and COARSE_FLOOR for what they were measured on; `scripts/probe_verification.py` and
`neardup bench verify` measure them again).

Pure code: ids, hashes and thumbnail bytes in, a verdict per pair out.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping
from functools import cache
from typing import Protocol

import numpy as np

from neardup.graph import unique_inverse
from neardup.orientation import SYMMETRIES, Symmetry, dihedral_hashes, on_pixels

__all__ = ["COARSE_FLOOR", "FLOOR", "SIDE", "ZOOM", "Seen", "correlation", "correlations", "pack", "turn_between",
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
# A crop of a few percent also scales the picture by as much; on a fine-grained one (a star field,
# grass, brick, gravel) that alone took the correlation of a 3-5 % crop with its photo to 0.6-0.73
# (the coarse look 0.03-0.84). With `zoom`, pairs that score at least _RETRY_FROM but under FLOOR
# are looked at again with one thumbnail magnified by ZOOM and by 1/ZOOM about the centre: those
# crops reached 0.84-0.95, while none of 35,000 unrelated candidates at 11-20 bits in five
# edited-copy sets passed (the highest zoomed 0.78, before ZOOM_FLOOR). Confirmed true candidates
# (with ZOOM_FLOOR): 724 -> 838, 530 -> 547, 324 -> 331, 455 -> 464 and 476 -> 478. It costs:
# 12,939 candidates among 2,000 photos took 15 ms without it, 26 ms from 0.55 and 49 ms from 0,
# so only small jobs take it (JobSettings.all_turns).
ZOOM = 1.06
# A zoomed score counts from here: one hard negative (a quadrant of a microscope picture against
# one of a photo, 12 bits apart) reached 0.828 plain and 0.856 zoomed; the crops above, 0.87-0.95.
ZOOM_FLOOR = 0.87
_RETRY_FROM = 0.55
# First a coarse look: the thumbnails' 8x8 grids of 4x4-pixel means (centre 6x6 cells), unshifted.
# Most unrelated candidates fail it at a fiftieth of the full correlation's cost; every candidate
# that went on to reach FLOOR had at least 0.84 on four edited-copy sets (most unrelated ones
# fewer than 0.6).
_CELLS = 8
COARSE_FLOOR = 0.7
# Below this many full correlations numpy (~0.1 ms each) beats loading the compiled one into a
# fresh process (~0.5 s: a rescan in the CLI meets a hundred or so); a worker loads it at start
# (warm_verification), and once loaded it answers every size at ~11 us each.
_COMPILED_FROM = 2048
_NUMPY_CHUNK = 128  # pairs a numpy pass holds (a few MB of temporaries)


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
    return np.frombuffer(_checked(thumb), dtype=np.uint8).reshape(SIDE, SIDE)


def turn_between(a: int, b: int) -> Symmetry:
    """The symmetry of b's canonical frame that brings its sign hash closest to a's."""
    return SYMMETRIES[int(_turns(np.array([a], dtype=np.int64), np.array([b], dtype=np.int64))[0])]


def correlation(a: bytes, b: bytes, turn: Symmetry, *, zoom: bool = False) -> float:
    """Best normalised cross-correlation of b's centre (turned) against a, shifted up to SHIFT px;
    a pair whose coarse correlation (8x8 cell means, unshifted) is below COARSE_FLOOR scores that
    instead; with zoom, a near miss the best of that and the same with b zoomed by ZOOM and 1/ZOOM."""
    pixels = np.stack([_pixels(a), _pixels(b)])
    pair = (np.array([0]), np.array([1]), np.array([SYMMETRIES.index(turn)]))
    return float((_best(pixels, *pair) if zoom else _scores(pixels, *pair))[0])


def verified(lo: np.ndarray, hi: np.ndarray, seen: Mapping[int, Seen], floor: float = FLOOR, *,
             zoom: bool = False) -> np.ndarray:
    """Per candidate pair (ids lo[k], hi[k]): whether their thumbnails confirm it. A pair with an
    image stored without a thumbnail is not confirmed. zoom: near misses get a second look (ZOOM)."""
    return correlations(lo, hi, seen, zoom=zoom) >= floor


def correlations(lo: np.ndarray, hi: np.ndarray, seen: Mapping[int, Seen], *, zoom: bool = False) -> np.ndarray:
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
    out[usable] = _best(pixels, ia, ib, turns) if zoom else _scores(pixels, ia, ib, turns)
    return out


def _best(pixels: np.ndarray, ia: np.ndarray, ib: np.ndarray, turns: np.ndarray) -> np.ndarray:
    """_scores, and for the near misses the best of a second chance with pixels[ib] zoomed in and
    out (ZOOM): a crop also scales the picture."""
    scores = _scores(pixels, ia, ib, turns)
    retry = np.flatnonzero((scores < FLOOR) & (scores >= _RETRY_FROM))
    if len(retry):
        firsts, ra = unique_inverse(ia[retry])
        seconds, rb = unique_inverse(ib[retry])
        for zoom in (ZOOM, 1.0 / ZOOM):
            stack = np.concatenate([pixels[firsts], _zoomed(pixels[seconds], zoom)])
            zoomed = _scores(stack, ra, rb + len(firsts), turns[retry])
            # A zoom is one more way for two pictures to line up: it must do better than FLOOR.
            scores[retry] = np.where(zoomed >= ZOOM_FLOOR, np.maximum(scores[retry], zoomed), scores[retry])
    return scores


def _scores(pixels: np.ndarray, ia: np.ndarray, ib: np.ndarray, turns: np.ndarray) -> np.ndarray:
    """Per pair, the coarse look; for those that pass it, the full correlation instead."""
    out = _coarse_scores(pixels, ia, ib, turns)
    go = np.flatnonzero(out >= COARSE_FLOOR)
    if len(go) < _COMPILED_FROM and "neardup.verify_jit" not in sys.modules:
        out[go] = _full_scores(pixels, ia[go], ib[go], turns[go])
    else:
        from neardup.verify_jit import best_correlations

        out[go] = best_correlations(pixels, ia[go], ib[go], turns[go], MARGIN, SHIFT)
    return out


@cache
def _zoom_matrix(zoom: float) -> np.ndarray:
    """(SIDE, SIDE) linear interpolation: row i samples the line at centre + (i - centre) / zoom."""
    centre = (SIDE - 1) / 2
    at = np.clip(centre + (np.arange(SIDE) - centre) / zoom, 0, SIDE - 1)
    low = np.minimum(np.floor(at).astype(np.int64), SIDE - 2)
    frac = at - low
    out = np.zeros((SIDE, SIDE), dtype=np.float32)
    out[np.arange(SIDE), low] = 1 - frac
    out[np.arange(SIDE), low + 1] += frac
    return out


def _zoomed(pixels: np.ndarray, zoom: float) -> np.ndarray:
    """Each thumbnail magnified by zoom about its centre (bilinear): a zoom about the centre
    commutes with the 8 turns, so it can come before them."""
    w = _zoom_matrix(zoom)
    return np.clip(np.rint(w @ pixels.astype(np.float32) @ w.T), 0, 255).astype(np.uint8)


def _coarse_scores(pixels: np.ndarray, ia: np.ndarray, ib: np.ndarray, turns: np.ndarray) -> np.ndarray:
    """The coarse correlation of every pair at once: each image's cell grid in its 8 turns, normalised."""
    step = SIDE // _CELLS
    centre = pixels[:, step:SIDE - step, step:SIDE - step].astype(np.float32)
    # Cell sums as a few strided additions, columns then rows: reductions over a short axis, or
    # over a 5-axis view, cost several times more.
    columns = sum(centre[:, :, k::step] for k in range(1, step)) + centre[:, :, 0::step]
    grids = sum(columns[:, k::step, :] for k in range(1, step)) + columns[:, 0::step, :]
    grids -= grids.mean(axis=(1, 2), keepdims=True)
    # A turn only moves cells, so one norm serves all 8; float32 halves what the gathers move.
    norms = np.sqrt((grids * grids).sum(axis=(1, 2), keepdims=True))
    grids = np.divide(grids, norms, out=np.zeros_like(grids), where=norms > 1e-6)
    turned = np.stack([_turn_all(grids, s) for s in SYMMETRIES]).reshape(len(SYMMETRIES), len(pixels), -1)
    return np.einsum("pk,pk->p", turned[0, ia], turned[turns, ib]).astype(np.float64)


def _full_scores(pixels: np.ndarray, ia: np.ndarray, ib: np.ndarray, turns: np.ndarray) -> np.ndarray:
    """The full correlation of every pair, in numpy: neardup.verify_jit's, a chunk of pairs at once."""
    out = np.empty(len(ia), dtype=np.float64)
    lo, hi = MARGIN - SHIFT, MARGIN + SHIFT + 1
    for start in range(0, len(ia), _NUMPY_CHUNK):
        part = slice(start, start + _NUMPY_CHUNK)
        a = pixels[ia[part]].astype(np.float64)
        b = np.empty_like(a)
        for t, s in enumerate(SYMMETRIES):  # not np.unique: its first call imports numpy.ma (14 ms)
            at = turns[part] == t
            if at.any():
                b[at] = _turn_all(pixels[ib[part][at]], s)
        centre = b[:, MARGIN:MARGIN + _INNER, MARGIN:MARGIN + _INNER]
        centre = centre - centre.mean(axis=(1, 2), keepdims=True)
        shifts = range(lo, hi)
        # centre has mean 0, so each window's own mean drops out of the product.
        products = np.stack([np.stack([(a[:, y:y + _INNER, x:x + _INNER] * centre).sum(axis=(1, 2))
                                       for x in shifts], axis=1) for y in shifts], axis=1)
        # Each window's sum and sum of squares from summed-area tables.
        s1, s2 = _summed(a), _summed(a * a)
        sums, squares = _windows(s1, lo, hi), _windows(s2, lo, hi)
        spread = np.maximum(squares - sums * sums / (_INNER * _INNER), 0.0)
        den = np.sqrt(spread * (centre * centre).sum(axis=(1, 2))[:, None, None])
        scores = np.divide(products, den, out=np.zeros_like(products), where=den > 1e-9)
        out[part] = np.maximum(scores.max(axis=(1, 2)), 0.0)
    return out


def _summed(x: np.ndarray) -> np.ndarray:
    out = np.zeros((len(x), x.shape[1] + 1, x.shape[2] + 1))
    out[:, 1:, 1:] = x.cumsum(axis=1).cumsum(axis=2)
    return out


def _windows(table: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Per image, the sum over each _INNER-square window at offsets lo..hi-1 from a summed-area table."""
    y = np.arange(lo, hi)
    return (table[:, y[:, None] + _INNER, y[None, :] + _INNER] - table[:, y[:, None], y[None, :] + _INNER]
            - table[:, y[:, None] + _INNER, y[None, :]] + table[:, y[:, None], y[None, :]])


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
