"""What the monitor does to jobs: lease sweeps and phase transitions, each one transaction."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from db.connect import retrying
from db.events import emit, phase_event
from db.queries import q
from db.repository import Repository, chunk_files

NEXT_PHASE: dict[str, str] = {"hash": "compare", "compare": "cluster", "cluster": "finalize"}
# A compare phase that fits one block is still cut into up to 4 blocks (10 rows, so that several
# workers share it) of at least 4,096 files (a row of 8 M image pairs or more: claims stay cheap
# beside the kernel). 30,000 files on 2 workers: 0.57 s on one worker's core as one row.
MIN_BLOCKS = 4
MIN_BLOCK_FILES = 4096


@dataclass(frozen=True)
class Kick:
    """Send this many tickets (broker messages) for this job's phase."""

    job_id: int
    phase: str
    tickets: int
    rows: int = 0  # rows the transition made (0 for a re-kick)


class Transitions:
    def __init__(self, repo: Repository, rekick_after_s: float = 10.0) -> None:
        self.repo = repo
        self.rekick_after_s = rekick_after_s

    @contextmanager
    def exclusive(self) -> Iterator[bool]:
        """Hold the monitor's advisory lock for a tick; yields False when another monitor has it.

        A session lock on a dedicated connection: released by the server if this process dies.
        """
        with self.repo.pool.connection() as conn:
            conn.autocommit = True
            got = bool(conn.execute(q("monitor_try_lock")).fetchone()[0])
            try:
                yield got
            finally:
                if got and not conn.closed:
                    conn.execute(q("monitor_unlock"))
                conn.autocommit = False

    @retrying()
    def ticked(self) -> None:
        with self.repo._tx() as cur:
            cur.execute(q("monitor_ticked"))

    @retrying()
    def arm_due(self, stale_s: float = 3.0, only_active: bool = False) -> bool:
        with self.repo._tx() as cur:
            cur.execute(q("monitor_arm_due"), {"stale_s": stale_s, "only_active": only_active})
            return cur.fetchone() is not None

    @retrying()
    def keep_ticking(self) -> bool:
        with self.repo._tx() as cur:
            cur.execute(q("monitor_keep_ticking"))
            return bool(cur.fetchone()[0])

    @retrying()
    def reclaim_expired(self) -> list[int]:
        """Expired leases back to pending (or failed after max attempts); the jobs touched."""
        with self.repo._tx() as cur:
            cur.execute(q("reclaim_expired"))
            return [r[0] for r in cur.fetchall()]

    @retrying()
    def checkpoint(self, job_id: int, min_step: float = 0.05, min_s: float = 5.0) -> bool:
        """A phase_progress event if the job's phase moved by min_step and min_s passed."""
        with self.repo._tx() as cur:
            cur.execute(q("progress_checkpoint"), {"job_id": job_id, "min_step": min_step, "min_s": min_s})
            return cur.fetchone() is not None

    @retrying()
    def busy(self, seconds: float) -> None:
        with self.repo._tx() as cur:
            cur.execute(q("monitor_busy"), {"busy_s": seconds})

    @retrying()
    def active_jobs(self) -> list[tuple[int, str]]:
        with self.repo._tx() as cur:
            cur.execute(q("active_jobs"))
            return [(i, p) for i, p in cur.fetchall()]

    @retrying()
    def step(self, job_id: int, phase: str, force_kick: bool = False) -> Kick | None:
        """Count what is left of the job's phase and act on it; returns the tickets to send."""
        # Pipelined: a transition is a dozen statements, most of whose results nobody waits for.
        with self.repo.pool.connection() as conn, conn.pipeline() as pipe, conn.transaction(), \
                conn.cursor() as cur:
            args = {"job_id": job_id, "phase": phase}
            cur.execute(q("phase_remaining"), args)
            pending, running, failed = cur.fetchone()
            if pending or running:
                if pending and (force_kick or not running):
                    return self._kick(cur, job_id, pending, 0.0 if force_kick else self.rekick_after_s)
                return None
            if failed and phase != "hash":
                # Missing compare or finalize results would be a silent lie: fail the job instead.
                cur.execute(q("failed_work"), args)
                _, a, b, error = cur.fetchone()
                where = {"compare": f" (blocks {a},{b})",
                         "cluster": f" (components {a}..{b})" if a is not None else ""}.get(phase, "")
                message = f"{phase} work failed{where}: {error}"
                cur.execute(q("fail_job"), {"job_id": job_id, "error": message})
                if cur.fetchone() is not None:
                    emit(cur, job_id, "job_failed", phase, error=message)
                return None
            if phase == "finalize":
                self._complete(cur, job_id)
                return None
            if phase not in NEXT_PHASE:
                return None
            return self._advance(cur, pipe, job_id, phase, NEXT_PHASE[phase])

    def _complete(self, cur, job_id: int) -> None:
        args = {"job_id": job_id}
        cur.execute(q("complete_job"), args)
        if cur.fetchone() is None:
            return  # Another monitor completed it first, or it was cancelled.
        cur.execute(q("count_groups"), args)
        groups = cur.fetchone()[0]
        cur.execute(q("drop_compare_blocks"), args)
        cur.execute(q("finish_job_phase"), {**args, "phase": "finalize"})
        phase_event(cur, job_id, "phase_completed", "finalize")
        emit(cur, job_id, "job_completed", None, groups=groups)

    def _kick(self, cur, job_id: int, pending: int, interval_s: float) -> Kick | None:
        cur.execute(q("kick_due"), {"job_id": job_id, "interval_s": interval_s})
        row = cur.fetchone()
        if row is None:
            return None
        phase, fanout = row
        return Kick(job_id, phase, min(pending, fanout))

    def _advance(self, cur, pipe: psycopg.Pipeline, job_id: int, src: str, dst: str) -> Kick | None:
        args = {"job_id": job_id}
        cur.execute(q("advance_phase"), {**args, "from_phase": src, "to_phase": dst})
        if cur.fetchone() is None:
            return None  # Another monitor moved it first.
        cur.execute(q("finish_job_phase"), {**args, "phase": src})
        phase_event(cur, job_id, "phase_completed", src)
        cur.execute(q("start_job_phase"), {**args, "phase": dst})
        if dst == "compare":
            cur.execute(q("job_settings"), args)
            block_size, fanout = cur.fetchone()[4:6]
            cur.execute(q("roomy_sorts"))
            cur.execute(q("unchunked_files"), args)
            if cur.fetchone()[0] > 0:
                # A hashed file in no chunk (recorded by a worker older than migration 0017, say)
                # would be compared with nothing, silently: the job's chunks are packed again.
                cur.execute(q("drop_job_chunks"), args)
                cur.execute(q("pack_submitted_chunks"), {**args, "chunk_files": chunk_files(block_size)})
            cur.execute(q("make_compare_blocks"), {**args, "block_size": block_size, "min_blocks": MIN_BLOCKS,
                                                   "min_block_files": min(block_size, MIN_BLOCK_FILES)})
            cur.execute(q("make_block_pair_work"), {**args, "lead_rows": fanout})
        elif dst == "cluster":
            cur.execute(q("make_cluster_start"), args)
        else:
            cur.execute(q("make_finalize_work"), args)
        pipe.sync()  # a pipelined statement's row count is known only once its result is in
        made = cur.rowcount
        phase_event(cur, job_id, "phase_started", dst)
        if dst == "finalize" and not made:
            self._complete(cur, job_id)  # no groups to number
            return None
        cur.execute(q("job_settings"), args)
        fanout = cur.fetchone()[5]
        return Kick(job_id, dst, min(made, fanout), made) if made else None
