"""cluster_components: a ticket to work through a job's cluster rows (neardup.rows.cluster)."""
from __future__ import annotations

import dramatiq

from actors.broker import repository
from db.models import Claim, JobSettings, WorkRow
from db.repository import Repository
from neardup.rows import cluster
from neardup.rows.loop import work_through


def cluster_row(repo: Repository, claim: Claim, row: WorkRow, settings: JobSettings) -> None:
    made = cluster.cluster_row(repo, claim, row, settings)
    # This thread works through the rows the first one made too; tickets bring the other workers in.
    for _ in range(min(made, settings.fanout) - 1):
        cluster_components.send(row.job_id)


@dramatiq.actor(max_retries=5, min_backoff=200, max_backoff=5000, priority=5, time_limit=24 * 3_600_000)
def cluster_components(job_id: int) -> None:
    from actors.monitor_jobs import step_and_follow

    work_through(repository(), job_id, "cluster", cluster_row, claim_limit=1, budget_s=5.0,
                 resend=lambda: cluster_components.send(job_id), poke=lambda: step_and_follow(job_id, "cluster"))
