"""Finishing a job in the CLI's own process when it has nothing to decode (a rescan).

Starting worker processes costs more than comparing a few thousand stored hashes, so a job whose
hash phase has no rows left is compared and finalized right here, through the same claims and
handlers the workers use: rows are still claimed from PostgreSQL, and a worker that turns up
meanwhile simply takes its share.
"""
from __future__ import annotations

# Image pairs the CLI compares itself; beyond this, workers (several processes) are faster.
INLINE_PAIRS = 20_000_000


def finish_inline(job_id: int) -> bool:
    """Run the job's compare, cluster and finalize phases here; False (nothing done) if it does not
    qualify."""
    from actors.broker import repository
    from actors.cluster_components import cluster_row
    from actors.compare_blocks import claim_limit, compare_claim
    from actors.finalize_job import finalize_row
    from actors.monitor_jobs import step_job
    from actors.tickets import work_through

    repo = repository()
    progress = repo.progress(job_id)
    if progress is None or progress.phase != "compare" or progress.finished:
        return False
    compare = next(p for p in progress.phases if p.name == "compare")
    if compare.total > INLINE_PAIRS:
        return False
    work_through(job_id, "compare", compare_claim, claim_limit=claim_limit, whole_claims=True,
                 budget_s=float("inf"), resend=lambda: None, poke=lambda: None)
    # The monitor's own transitions, made now rather than at its next tick.
    step_job(job_id, "compare")
    work_through(job_id, "cluster", cluster_row, claim_limit=1, budget_s=float("inf"),
                 resend=lambda: None, poke=lambda: None)
    step_job(job_id, "cluster")
    work_through(job_id, "finalize", finalize_row, claim_limit=1, budget_s=float("inf"),
                 resend=lambda: None, poke=lambda: None)
    step_job(job_id, "finalize")
    return True
