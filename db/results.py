"""Repository methods that read a job's progress and results (mixed into db.repository.Repository).

The CLI, psql scripts and the web page all read these same queries: one source of truth.
"""
from __future__ import annotations

from contextlib import AbstractContextManager

import psycopg

from db.connect import retrying
from db.models import FailedFile, Group, JobProgress, PairPaths, job_progress_from_row
from db.queries import q


class ResultMethods:
    """Needs the host class's _tx(): a cursor inside one transaction."""

    def _tx(self) -> AbstractContextManager[psycopg.Cursor]:  # pragma: no cover - provided by host
        raise NotImplementedError

    @retrying()
    def progress(self, job_id: int) -> JobProgress | None:
        with self._tx() as cur:
            cur.execute(q("job_progress"), {"job_id": job_id})
            row = cur.fetchone()
        return job_progress_from_row(row) if row else None

    @retrying()
    def jobs(self, active_only: bool = False, limit: int = 20) -> list[JobProgress]:
        """The newest jobs first, each read from the same view as progress()."""
        with self._tx() as cur:
            cur.execute(q("list_jobs"), {"active_only": active_only, "limit": limit})
            return [job_progress_from_row(r) for r in cur.fetchall()]

    @retrying()
    def groups(self, job_id: int) -> list[Group]:
        with self._tx() as cur:
            cur.execute(q("job_groups"), {"job_id": job_id})
            rows = cur.fetchall()
        by_no: dict[int, tuple[str, list[str]]] = {}
        for no, keeper, member in rows:
            by_no.setdefault(no, (keeper, []))[1].append(member)
        return [Group(k, tuple(m)) for k, m in by_no.values()]

    @retrying()
    def pairs(self, job_id: int) -> list[PairPaths]:
        with self._tx() as cur:
            cur.execute(q("job_pair_paths"), {"job_id": job_id})
            return [PairPaths(*r) for r in cur.fetchall()]

    @retrying()
    def failed_files(self, job_id: int) -> list[FailedFile]:
        with self._tx() as cur:
            cur.execute(q("failed_files"), {"job_id": job_id})
            return [FailedFile(*r) for r in cur.fetchall()]

    @retrying()
    def hash_phase_timing(self, job_id: int) -> tuple[float, int, str | None]:
        """(seconds from the hash phase's start to its last row, files decoded, hash kind)."""
        with self._tx() as cur:
            cur.execute(q("hash_phase_timing"), {"job_id": job_id})
            seconds, hashed, kind = cur.fetchone()
        return float(seconds or 0.0), int(hashed), kind

    @retrying()
    def pending_files(self, job_id: int) -> tuple[int, int]:
        """(files, bytes) of the job still waiting to be hashed."""
        with self._tx() as cur:
            cur.execute(q("pending_files"), {"job_id": job_id})
            files, size = cur.fetchone()
        return int(files), int(size)
