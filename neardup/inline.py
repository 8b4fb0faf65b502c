"""Finishing a job in the CLI's own process when it has little or nothing to decode (a rescan).

Starting worker processes (about 3 s) costs more than comparing a few thousand stored hashes or
decoding a few dozen changed files, so such a job is hashed, compared and finalized right here,
through the same claims and row handlers the workers use (neardup.rows): rows are still claimed
from PostgreSQL, and a worker that turns up meanwhile simply takes its share. No ticket is sent
and the broker is never imported: importing Dramatiq and sending tickets nobody would take was a
tenth of a rescan. A rescan that meets the same unreadable files again is one of these too.
"""
from __future__ import annotations

from db.maintenance import settle_work
from db.repository import Repository
from db.transitions import Transitions
from neardup.cli import INLINE_FILES
from neardup.rows.cluster import cluster_row
from neardup.rows.compare import claim_limit, compare_claim
from neardup.rows.finalize import finalize_row
from neardup.rows.hashing import hash_row
from neardup.rows.loop import work_through

# Image pairs the CLI compares itself; beyond this, workers (several processes) are faster.
INLINE_PAIRS = 20_000_000
# Bytes the CLI decodes itself, on one core (with at most `inline_files` files, neardup.cli's
# INLINE_FILES by default): about a second of decoding at worst (large PNGs), against the seconds
# it takes worker processes to start.
INLINE_BYTES = 64 << 20


def finish_inline(repo: Repository, job_id: int, inline_files: int = INLINE_FILES) -> bool:
    """Run the job's phases here; False (nothing done) if it does not qualify: more files to decode
    than a few, hash rows already taken by workers, or too many pairs to compare."""
    transitions = Transitions(repo)
    progress = repo.progress(job_id)
    if progress is not None and progress.phase == "hash" and not progress.finished:
        hashing = next(p for p in progress.phases if p.name == "hash")
        if hashing.running:
            return False
        if hashing.pending:
            files, size = repo.pending_files(job_id)
            if files > inline_files or size > INLINE_BYTES:
                return False
            work_through(repo, job_id, "hash", hash_row, claim_limit=1)
        # Nothing (left) to decode: the hash phase moves on, as the monitor would move it.
        step(transitions, job_id, "hash")
        progress = repo.progress(job_id)
    if progress is None or progress.finished or progress.phase != "compare":
        return False
    compare = next(p for p in progress.phases if p.name == "compare")
    if compare.total > INLINE_PAIRS:
        return False
    work_through(repo, job_id, "compare", compare_claim, claim_limit=claim_limit, whole_claims=True)
    # The monitor's own transitions, made now rather than at its next tick.
    step(transitions, job_id, "compare")
    work_through(repo, job_id, "cluster", cluster_row, claim_limit=1)
    step(transitions, job_id, "cluster")
    work_through(repo, job_id, "finalize", finalize_row, claim_limit=1)
    step(transitions, job_id, "finalize")
    return True


def step(transitions: Transitions, job_id: int, phase: str) -> None:
    """One transition check, its tickets unsent: this process works the rows it makes."""
    kick = transitions.step(job_id, phase)
    if kick is not None:
        settle_work(transitions.repo.url, kick.rows)
