"""A finalize row: number the groups decided in the row's range of components."""
from __future__ import annotations

from db.models import Claim, JobSettings, WorkRow
from db.repository import Repository


def finalize_row(repo: Repository, claim: Claim, row: WorkRow, settings: JobSettings) -> None:
    repo.finish_finalize_work(claim, row)
