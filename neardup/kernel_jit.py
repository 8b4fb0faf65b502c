"""The compiled part of neardup.kernel, in a module of its own so that importing the kernel does not
import numba: a process that only compares a few thousand hashes never pays for it.
"""
from __future__ import annotations

from numba import njit, types
from numba.extending import intrinsic

# Hashes of b scanned per hit test: small enough that a rescan is cheap, large enough that the
# vectorised loop runs long.
_CHUNK = 1024


@intrinsic
def _popcount(typingctx, x):  # type: ignore[no-untyped-def]
    # numba has no popcount of its own; llvm.ctpop is what vectorises.
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.ctpop(args[0])

    return sig, codegen


@njit(nogil=True, cache=True, inline="always")
def _hits(x, seg, threshold):  # type: ignore[no-untyped-def]
    # A reduction over a slice (no index arithmetic, no stores): the shape LLVM vectorises.
    h = 0
    for j in range(seg.size):
        h += _popcount(x ^ seg[j]) <= threshold
    return h


@njit(nogil=True, cache=True)
def _band(a, b, start, stop, same, threshold, out_i, out_j, out_d):  # type: ignore[no-untyped-def]
    """Pairs of rows start..stop of a against b; returns how many there are (even past capacity)."""
    n = 0
    cap = out_i.size
    nb = b.size
    for i in range(start, stop):
        x = a[i]
        c0 = i + 1 if same else 0
        while c0 < nb:
            c1 = min(c0 + _CHUNK, nb)
            seg = b[c0:c1]
            if _hits(x, seg, threshold):
                for k in range(seg.size):
                    d = _popcount(x ^ seg[k])
                    if d <= threshold:
                        if n < cap:
                            out_i[n] = i
                            out_j[n] = c0 + k
                            out_d[n] = d
                        n += 1
            c0 = c1
    return n
