"""compare_blocks: a ticket to work through a job's compare rows (neardup.rows.compare)."""
from __future__ import annotations

import dramatiq

from actors.broker import repository
from neardup.rows.compare import claim_limit, compare_claim
from neardup.rows.loop import work_through


@dramatiq.actor(max_retries=5, min_backoff=200, max_backoff=5000, priority=10, time_limit=3_600_000)
def compare_blocks(job_id: int) -> None:
    from actors.monitor_jobs import step_and_follow

    # The ticket that ran out of rows steps the job itself (the transition is a conditional UPDATE,
    # safe from any thread): a message to the monitor would cost a broker round trip per phase.
    work_through(repository(), job_id, "compare", compare_claim, claim_limit=claim_limit, whole_claims=True,
                 budget_s=5.0, resend=lambda: compare_blocks.send(job_id),
                 poke=lambda: step_and_follow(job_id, "compare"))
