"""hash_files: a ticket to work through a job's hash rows (neardup.rows.hashing)."""
from __future__ import annotations

import dramatiq

from actors.broker import repository
from neardup.rows.hashing import hash_row
from neardup.rows.loop import work_through


@dramatiq.actor(max_retries=5, min_backoff=200, max_backoff=5000, priority=10, time_limit=3_600_000)
def hash_files(job_id: int) -> None:
    from actors.monitor_jobs import monitor_jobs

    work_through(repository(), job_id, "hash", hash_row, claim_limit=1, budget_s=5.0,
                 resend=lambda: hash_files.send(job_id), poke=lambda: monitor_jobs.send(job_id))
