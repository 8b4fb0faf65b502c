"""What a job hashes with, and the name (kind) that keeps hashes of different specs apart.

Light on purpose: the CLI names the kind at submit without importing the hashing libraries.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from neardup.orientation import DEFAULT_MARGIN, DEFAULT_REACH

__all__ = ["ALGORITHMS", "HASH_SIZES", "HashSpec", "library_versions"]

ALGORITHMS: tuple[str, ...] = ("phash", "dhash", "ahash", "whash")
# The compare kernel XORs 64-bit words: hash_size 8 is the only size that fills one exactly.
HASH_SIZES: tuple[int, ...] = (8,)
# Bump when the canonical rule or its near-tie margin changes: stored hashes of another version
# are then never reused or compared.
CANON_VERSION = 4
# Likewise for the border trim (see trim_border).
TRIM_VERSION = 2
# Likewise for the thumbnail kept with each hash (neardup.verify): hashes stored without one are
# hashed again rather than reused, so that a rescan verifies as a first scan does.
THUMB_VERSION = 1
# A line (row or column) at the image's edge is border when this share of its pixels is within
# BORDER_TOLERANCE grey levels of the edge's median; at most BORDER_MAX_CUT of a side goes. An added
# border is flat to a level or two even in a poor JPEG; a wider tolerance also cut smooth walls and
# skies, differently in a copy whose contrast or brightness changed (a 0.6-contrast copy of a photo
# by a wall lost 58 columns its original kept: 28 bits apart). Pairwise recall of `neardup eval` on
# four edited-copy sets (scripts/make_transform_set.py, fixed edits and --random 25 with seeds 3, 5,
# 7): 0.962 / 0.972 / 0.977 / 0.992 at 8, 0.972 / 0.972 / 0.985 / 1.0 at 5; 3 and 6 did worse.
BORDER_TOLERANCE = 5
BORDER_SHARE = 0.995
BORDER_MAX_CUT = 0.3
# pHash's thumbnail side (imagehash: hash_size * highfreq_factor).
PHASH_SIDE = 32
# The canonical orientation is decided on the thumbnail without this many pixels on every side
# (neardup.fingerprint.centre_block).
DECIDE_MARGIN = 4
# Bits a job verifies up to (neardup.verify), by its size: (most files, bits). Verification grows
# with the square of the job as the compare phase does: each candidate costs ~1-2 us, and each
# image of each compare row that is in a candidate ~5 us, where the kernel spends 0.07 ns on a
# pair. Unrelated photos are candidates at a rate of ~5e-5 within 14 bits, ~3e-4 within 16, ~2e-3
# within 18, ~1e-2 within 20 and ~3e-2 within 22. `neardup bench verify` measures both and projects
# each tier's largest job: verification ~3 % of the hash phase at 20,000 files (20 bits), 8 % at
# 200,000 (18), 19 % at 2 million (16) and 17 % at 5 million (14). A compare row then holds at most
# ~2 million candidates. Recall at 20 over 16 bits: 0.9944 -> 1.0 and 0.9709 -> 0.9768 on two
# edited-copy sets. 22 bits gained 0.9941 -> 0.997 on a third, but its 50,000 candidates in 2,000
# photos cost a rescan of them (0.5 s) ~60 ms: over the rescan's budget of 5 % of a first scan.
VERIFY_BY_SIZE: tuple[tuple[int, int], ...] = ((20_000, 20), (200_000, 18), (2_000_000, 16), (2**62, 14))
# A job of at most this many files (pHash with rotations) also compares every image's hash in its 7
# other orientations, within ALL_TURNS_MARGIN bits under the threshold: brute force, which finds the
# copies whose canonical orientations went apart without either being near a tie (a caption across a
# thumbnail-sized copy, say: 27 bits apart in their canonical frames, 8-9 in the right one). Seven
# more kernel passes over 20,000 files (1.4e9 pairs) took 0.16 s beside the 0.35 s of the canonical
# pass (compiled, 2 threads), against ~55 s of hashing. Pairwise
# recall 0.9941 -> 1.0 and 0.9797 -> 0.9826 on two edited-copy sets, no false pair on the sets of
# natural photos. The margin keeps turned pairs rarer than canonical ones among unrelated photos:
# on 4,000 of `neardup demo`'s (8 million pairs), canonical hashes within 9 / 10 bits 2.5e-7 / 1.3e-6,
# the 7 turns within 8 / 9 / 10 bits 0 / 1.3e-7 / 1.6e-6.
# Such a job's verification also gives near misses a second look with a thumbnail zoomed
# (neardup.verify.ZOOM), which costs ~1.7x its plain look.
ALL_TURNS_UP_TO = 20_000
ALL_TURNS_MARGIN = 2
# wHash at a fixed scale: imagehash's default follows the image size, so a JPEG decoded at 1/8 scale
# would hash differently from the same file decoded whole.
WHASH_SCALE = 32


@dataclass(frozen=True)
class HashSpec:
    """What a job hashes with; ``kind`` names it so that different specs are never mixed."""

    algo: str = "phash"
    size: int = 8
    rotations: bool = True
    # Cut uniform borders (frames, letterboxing) before hashing: a framed copy then hashes like the
    # original. Off only to reproduce imagehash exactly.
    trim: bool = True
    margin: float = DEFAULT_MARGIN
    reach: float = DEFAULT_REACH

    def __post_init__(self) -> None:
        if self.algo not in ALGORITHMS:
            raise ValueError(f"unknown hash algorithm {self.algo!r} (one of {', '.join(ALGORITHMS)})")
        if self.size not in HASH_SIZES:
            raise ValueError(f"hash size {self.size} is not supported: only 8 (64-bit hashes)")

    @property
    def kind(self) -> str:
        orientation = f"canon{CANON_VERSION}m{self.margin:g}r{self.reach:g}" if self.rotations else "plain"
        trim = f":trim{TRIM_VERSION}" if self.trim else ""
        return f"{self.algo}:{self.size}:{library_versions()}:{orientation}{trim}:thumb{THUMB_VERSION}"


@cache
def library_versions() -> str:
    # The decoder and resampler (Pillow) and the hash functions (imagehash) fix the bits.
    jpeg = f"+simplejpeg-{decoder_version()}" if decoder_version() else ""
    return f"imagehash-{version('ImageHash')}+pillow-{version('pillow')}{jpeg}"


@cache
def decoder_version() -> str | None:
    """simplejpeg's version when it is installed: it becomes part of the hash kind."""
    try:
        return version("simplejpeg")
    except PackageNotFoundError:
        return None
