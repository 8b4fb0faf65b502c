"""finalize_job: number the groups the cluster phase decided, a range of components a row.

The monitor completes the job when it counts no finalize row left (poked by the last ticket).
"""
from __future__ import annotations

import dramatiq

from actors.broker import repository
from neardup.rows.finalize import finalize_row
from neardup.rows.loop import work_through


@dramatiq.actor(max_retries=5, min_backoff=200, max_backoff=5000, priority=5, time_limit=24 * 3_600_000)
def finalize_job(job_id: int) -> None:
    from actors.monitor_jobs import step_and_follow

    work_through(repository(), job_id, "finalize", finalize_row, claim_limit=1, budget_s=3600.0,
                 resend=lambda: finalize_job.send(job_id), poke=lambda: step_and_follow(job_id, "finalize"))
