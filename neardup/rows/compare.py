"""A claim of compare rows: the compiled kernel over block pairs, finished a claim at a time.

Rows are claimed several at a time when they are small (one round trip, one fetch of the claim's
blocks, one finishing transaction), one at a time when a row is already ~0.1 s of work. The
worker holds only the blocks of the rows in its claim.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import numpy as np

from db.models import BlockHashes, Claim, JobSettings, SeenFile
from db.repository import Repository
from neardup.hashspec import ALL_TURNS_MARGIN
from neardup.rows.loop import Finish, one_line
from neardup.variants import HashBlock, block_pairs
from neardup.verify import verified

log = logging.getLogger("neardup.worker")

# Image pairs one claim should carry: ~0.1 s of kernel on one core. Rows of big blocks are
# claimed one by one; rows of tiny blocks up to MAX_CLAIM at once.
CLAIM_PAIRS = 250_000_000
MAX_CLAIM = 256


def claim_limit(settings: JobSettings) -> int:
    per_row = max(1, settings.block_size * settings.block_size)
    return int(min(MAX_CLAIM, max(1, CLAIM_PAIRS // per_row)))


def _hash_block(b: BlockHashes) -> HashBlock:
    return HashBlock.build(b.ids, b.hashes, b.alt_ids, b.alt_hashes, b.ties)


# The blocks of this thread's last claim, by (database, job, block): rows are claimed in block
# order, so the next claim usually shares one of them and fetches only the other. Only blocks the
# new claim needs are kept, so a thread still holds no more than its claim's blocks. The database
# is part of the key: another database (a test's, or one made again) numbers its jobs afresh.
_held = threading.local()


def _blocks(repo: Repository, job_id: int, needed: set[int]) -> dict[int, HashBlock]:
    held: dict[tuple[str, int, int], HashBlock] = getattr(_held, "blocks", {})
    blocks = {k: held[(repo.url, job_id, k)] for k in needed if (repo.url, job_id, k) in held}
    # Blocks not needed go before the fetch, so old and new ones are never held together.
    del held
    _held.blocks = {}
    missing = sorted(needed - blocks.keys())
    if missing:
        blocks.update((k, _hash_block(b)) for k, b in repo.compare_blocks(job_id, missing).items())
    _held.blocks = {(repo.url, job_id, k): b for k, b in blocks.items()}
    return blocks


def confirmed(repo: Repository, job_id: int, a: np.ndarray, b: np.ndarray, d: np.ndarray, threshold: int,
              blocks: Iterable[HashBlock] = (), zoom: bool = False) -> np.ndarray:
    """Which pairs to keep: those within the threshold, and candidates past it that their
    thumbnails confirm (neardup.verify; zoom: with its second look at near misses), read for
    these files only."""
    keep = d <= threshold
    far = ~keep
    if far.any():
        ids = np.concatenate([a[far], b[far]])
        ids.sort()
        seen = _seen(repo, job_id, ids[np.r_[True, ids[1:] != ids[:-1]]], blocks)
        keep[far] = verified(a[far], b[far], seen, zoom=zoom)
    return keep


def _seen(repo: Repository, job_id: int, ids: np.ndarray, blocks: Iterable[HashBlock]) -> dict[int, SeenFile]:
    """Hash and thumbnail of these files. What the thread read for its last claim is kept for the
    images of the blocks this claim holds: rows come in block order, so a claim shares a block
    with the last and reads only the other's thumbnails (at scale nearly every image of a block is
    in some candidate: 32 MB a block). So a thread holds at most its blocks' thumbnails."""
    members = {i for blk in blocks for i in blk.ids.tolist()}
    same_job = getattr(_held, "seen_of", None) == (repo.url, job_id)
    held: dict[int, SeenFile] = getattr(_held, "seen", {}) if same_job else {}
    kept = {i: f for i, f in held.items() if i in members}
    del held
    _held.seen = {}
    missing = [i for i in ids.tolist() if i not in kept]
    if missing:
        kept.update(repo.seen_files(missing))
    _held.seen, _held.seen_of = kept, (repo.url, job_id)
    return kept


def _turned_up_to(settings: JobSettings) -> int | None:
    return max(0, settings.threshold - ALL_TURNS_MARGIN) if settings.all_turns else None


def compare_claim(repo: Repository, claim: Claim, settings: JobSettings) -> Finish | None:
    """Run the claim's rows through the kernel; returns the transaction that finishes them (None
    when they were released instead), for the caller to run now or behind the next claim."""
    job_id = claim.rows[0].job_id
    try:
        blocks = _blocks(repo, job_id, {x for r in claim.rows for x in (r.block_a, r.block_b)})
        parts = []
        for row in claim.rows:
            same = row.block_a == row.block_b
            lo, hi, dist = block_pairs(blocks[row.block_a], blocks[row.block_b], settings.candidates_up_to,
                                       same=same, all_turns_up_to=_turned_up_to(settings))
            parts.append((np.full(len(lo), row.id, dtype=np.int64), lo, hi, dist))
        work, a, b, d = (np.concatenate(column) for column in zip(*parts))
        keep = confirmed(repo, job_id, a, b, d, settings.threshold, blocks.values(), zoom=settings.all_turns)
        work, a, b, d = work[keep], a[keep], b[keep], d[keep]
    except Exception as e:  # noqa: BLE001 - give the claim's rows back, with the reason
        log.exception("compare rows %s of job %s failed", [r.id for r in claim.rows], job_id)
        for row in claim.rows:
            repo.release(claim, row.id, one_line(e))
        return None
    work_ids = [r.id for r in claim.rows]
    return lambda: repo.finish_compare_claim(claim, job_id, work_ids, work, a, b, d)
