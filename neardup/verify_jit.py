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
def _coarse(thumbs, cells):  # type: ignore[no-untyped-def]
    # Each thumbnail's grid of cell means, centre (cells - 2)^2 cells, less their mean.
    m, side = thumbs.shape[0], thumbs.shape[1]
    step = side // cells
    inner = cells - 2
    out = np.zeros((m, inner, inner))
    for k in range(m):
        total = 0.0
        for cy in range(inner):
            for cx in range(inner):
                acc = 0.0
                for y in range((cy + 1) * step, (cy + 2) * step):
                    for x in range((cx + 1) * step, (cx + 2) * step):
                        acc += thumbs[k, y, x]
                out[k, cy, cx] = acc / (step * step)
                total += out[k, cy, cx]
        out[k] -= total / (inner * inner)
    return out


@njit(nogil=True, cache=True)
def _turned(grid, y, x, transpose, mirror_x, mirror_y):  # type: ignore[no-untyped-def]
    # grid as neardup.orientation.on_pixels turns it, read at (y, x).
    side = grid.shape[0]
    if mirror_y:
        y = side - 1 - y
    if mirror_x:
        x = side - 1 - x
    return grid[x, y] if transpose else grid[y, x]


@njit(nogil=True, cache=True)
def _coarse_score(ca, cb, transpose, mirror_x, mirror_y):  # type: ignore[no-untyped-def]
    inner = ca.shape[0]
    p = 0.0
    sa = 0.0
    sb = 0.0
    for y in range(inner):
        for x in range(inner):
            v = _turned(cb, y, x, transpose, mirror_x, mirror_y)
            p += ca[y, x] * v
            sa += ca[y, x] * ca[y, x]
            sb += v * v
    den = np.sqrt(sa * sb)
    return p / den if den > 1e-9 else 0.0


@njit(nogil=True, cache=True)
def best_correlations(thumbs, ia, ib, turns, margin, shift, cells, coarse_floor):  # type: ignore[no-untyped-def]
    """Per candidate k: thumbs[ia[k]] against the centre of thumbs[ib[k]] turned by symmetry
    turns[k] (bits: 4 transpose, 2 mirror x, 1 mirror y; neardup.orientation.SYMMETRIES order),
    the best normalised cross-correlation over shifts up to ``shift`` pixels each way; the coarse
    correlation of their cell grids instead when that is below coarse_floor (neardup.verify)."""
    side = thumbs.shape[1]
    inner = side - 2 * margin
    n = inner * inner
    out = np.zeros(len(ia), dtype=np.float64)
    centre = np.empty((inner, inner), dtype=np.float32)
    floats = thumbs.astype(np.float32)
    coarse = _coarse(thumbs, cells)
    tables = np.empty((len(thumbs), 2, side + 1, side + 1))
    done = np.zeros(len(thumbs), dtype=np.bool_)
    for k in range(len(ia)):
        a, b, t = floats[ia[k]], floats[ib[k]], turns[k]
        transpose, mirror_x, mirror_y = (t >> 2) & 1, (t >> 1) & 1, t & 1
        rough = _coarse_score(coarse[ia[k]], coarse[ib[k]], transpose, mirror_x, mirror_y)
        if rough < coarse_floor:
            out[k] = rough
            continue
        if not done[ia[k]]:
            tables[ia[k], 0], tables[ia[k], 1] = _sums(thumbs[ia[k]])
            done[ia[k]] = True
        src = b.T if transpose else b
        total = 0.0
        for y in range(inner):
            yy = side - 1 - (y + margin) if mirror_y else y + margin
            row = src[yy]
            for x in range(inner):
                xx = side - 1 - (x + margin) if mirror_x else x + margin
                v = row[xx]
                centre[y, x] = v
                total += v
        mean = total / n
        energy = 0.0
        for y in range(inner):
            for x in range(inner):
                c = centre[y, x] - mean
                centre[y, x] = c
                energy += c * c
        s1, s2 = tables[ia[k], 0], tables[ia[k], 1]
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
