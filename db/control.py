"""Stopping and restarting a job: each one conditional statement, its event in the same one."""
from __future__ import annotations

from db.connect import retrying
from db.models import Resumed
from db.queries import q


class JobControl:
    def __init__(self, repo) -> None:  # type: ignore[no-untyped-def] - a db.repository.Repository
        self.repo = repo

    @retrying()
    def status(self, job_id: int) -> tuple[str, str] | None:
        """(status, phase), or None for a job that does not exist."""
        with self.repo._tx() as cur:
            cur.execute(q("job_status"), {"job_id": job_id})
            row = cur.fetchone()
        return (row[0], row[1]) if row else None

    @retrying()
    def cancel(self, job_id: int) -> int | None:
        """Cancel a pending or running job; the units of work cancelled, or None if it was not active.

        Pending rows are cancelled; running rows finish (their results are kept) or are abandoned
        (the lease sweep cancels them). Idempotent: a second call finds nothing to do.
        """
        with self.repo._tx() as cur:
            cur.execute(q("cancel_job"), {"job_id": job_id})
            row = cur.fetchone()
        return int(row[1]) if row else None

    @retrying()
    def resume(self, job_id: int) -> Resumed | None:
        """Continue a cancelled or interrupted job from its rows; None if it is finished or unknown.

        Cancelled rows and rows whose lease has expired go back to pending; finished rows stay
        finished, so no finished work is done again. The caller then sends tickets.
        """
        with self.repo._tx() as cur:
            cur.execute(q("resume_job"), {"job_id": job_id})
            row = cur.fetchone()
        return Resumed(row[0], row[1], bool(row[2]), int(row[3])) if row else None
