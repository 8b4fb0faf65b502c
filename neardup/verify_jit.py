"""The compiled part of neardup.verify: every candidate's best correlation in one call, no GIL.

A module of its own, as neardup.kernel_jit, so that a process verifying a handful of pairs never
imports numba.
"""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def _sums(pixels):  # type: ignore[no-untyped-def]
    # Summed-area tables of the pixels and their squares: any window's sum in four reads.
    side = pixels.shape[0]
    s1 = np.zeros((side + 1, side + 1))
    s2 = np.zeros((side + 1, side + 1))
    for y in range(side):
        r1 = 0.0
        r2 = 0.0
        for x in range(side):
            v = float(pixels[y, x])
            r1 += v
            r2 += v * v
            s1[y + 1, x + 1] = s1[y, x + 1] + r1
            s2[y + 1, x + 1] = s2[y, x + 1] + r2
    return s1, s2


@njit(nogil=True, cache=True, fastmath=True)
def _product(a, centre, y0, x0):  # type: ignore[no-untyped-def]
    # The one sum that depends on both images; fastmath lets LLVM vectorise the reduction.
    inner = centre.shape[0]
    p = np.float32(0.0)
    for y in range(inner):
        row = a[y0 + y]
        c = centre[y]
        for x in range(inner):
            p += row[x0 + x] * c[x]
    return p


@njit(nogil=True, cache=True)
def best_correlations(thumbs, ia, ib, turns, margin, shift):  # type: ignore[no-untyped-def]
    """Per candidate k: thumbs[ia[k]] against the centre of thumbs[ib[k]] turned by symmetry
    turns[k] (bits: 4 transpose, 2 mirror x, 1 mirror y; neardup.orientation.SYMMETRIES order),
    the best normalised cross-correlation over shifts up to ``shift`` pixels each way."""
    side = thumbs.shape[1]
    inner = side - 2 * margin
    n = inner * inner
    out = np.zeros(len(ia), dtype=np.float64)
    centre = np.empty((inner, inner), dtype=np.float32)
    # Per pair, not per image: a compare row may hold tens of thousands of thumbnails.
    a = np.empty((side, side), dtype=np.float32)
    for k in range(len(ia)):
        a[:, :] = thumbs[ia[k]]
        b, t = thumbs[ib[k]], turns[k]
        transpose, mirror_x, mirror_y = (t >> 2) & 1, (t >> 1) & 1, t & 1
        s1, s2 = _sums(thumbs[ia[k]])
        src = b.T if transpose else b
        total = 0.0
        for y in range(inner):
            yy = side - 1 - (y + margin) if mirror_y else y + margin
            row = src[yy]
            for x in range(inner):
                xx = side - 1 - (x + margin) if mirror_x else x + margin
                v = float(row[xx])
                centre[y, x] = v
                total += v
        mean = total / n
        energy = 0.0
        for y in range(inner):
            for x in range(inner):
                c = centre[y, x] - mean
                centre[y, x] = c
                energy += c * c
        best = 0.0
        for dy in range(-shift, shift + 1):
            for dx in range(-shift, shift + 1):
                y0, x0 = margin + dy, margin + dx
                w1 = s1[y0 + inner, x0 + inner] - s1[y0, x0 + inner] - s1[y0 + inner, x0] + s1[y0, x0]
                w2 = s2[y0 + inner, x0 + inner] - s2[y0, x0 + inner] - s2[y0 + inner, x0] + s2[y0, x0]
                # centre has mean 0: the window's own mean drops out of the product.
                p = float(_product(a, centre, y0, x0))
                den = np.sqrt(max(w2 - w1 * w1 / n, 0.0) * energy)
                if den > 1e-9 and p / den > best:
                    best = p / den
        out[k] = best
    return out
