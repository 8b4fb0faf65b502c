"""The ticket loop: claims worked one after another, each claim's finish run behind the next one."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from db.models import Claim, HashedFile, JobSettings
from db.repository import JobOptions, Repository
from db.transitions import Transitions
from neardup.rows.compare import compare_claim
from neardup.rows.loop import Finish, work_through


def compare_job(repo: Repository, files: int = 300, block_size: int = 40) -> int:
    """A job in its compare phase: hashes in a few families, so that rows find pairs."""
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2**63, size=files // 3, dtype=np.int64)
    hashes = [int(base[k % len(base)] ^ (1 << int(rng.integers(0, 62)))) for k in range(files)]
    job = repo.submit_hashed(["/x"], [HashedFile(f"/x/{k:04d}.jpg", 1, 0.0, h, (), 10, 10, 0)
                                      for k, h in enumerate(hashes)], JobOptions(block_size=block_size))
    assert Transitions(repo).step(job, "hash") is not None
    return job


def rows_by_status(repo: Repository, job: int) -> dict[str, int]:
    with repo.pool.connection() as conn:
        return dict(conn.execute("SELECT status, count(*)::int FROM work WHERE job_id = %s AND phase = 'compare' "
                                 "GROUP BY status", (job,)).fetchall())


def test_every_finish_has_landed_when_the_loop_steps_the_job(repo: Repository) -> None:
    job = compare_job(repo)
    seen: list[dict[str, int]] = []
    handled = work_through(repo, job, "compare", compare_claim, claim_limit=1, whole_claims=True,
                           poke=lambda: seen.append(rows_by_status(repo, job)))
    assert handled > 5
    assert seen == [{"done": handled}]
    assert len(repo.job_pairs(job)[0]) > 0


def test_finishes_run_in_claim_order_one_at_a_time_behind_the_next_claims_work(repo: Repository) -> None:
    job = compare_job(repo)
    log: list[str] = []
    lock = threading.Lock()
    running = threading.Event()

    def note(text: str) -> None:
        with lock:
            log.append(text)

    def handler(r: Repository, claim: Claim, settings: JobSettings) -> Finish | None:
        row = claim.rows[0].id
        note(f"work {row}")
        finish = compare_claim(r, claim, settings)
        assert finish is not None

        def later() -> object:
            assert not running.is_set(), "two finishes at once"
            running.set()
            try:
                note(f"finish {row}")
                return finish()
            finally:
                running.clear()
        return later

    handled = work_through(repo, job, "compare", handler, claim_limit=1, whole_claims=True)
    finished = [int(e.split()[1]) for e in log if e.startswith("finish")]
    worked = [int(e.split()[1]) for e in log if e.startswith("work")]
    assert finished == worked and len(worked) == handled
    # A claim's finish never comes before its own work, nor after the work two claims later.
    for k, row in enumerate(worked):
        at = log.index(f"finish {row}")
        assert log.index(f"work {row}") < at
        if k + 2 < len(worked):
            assert at < log.index(f"work {worked[k + 2]}")
    assert rows_by_status(repo, job) == {"done": handled}


def test_a_failed_finish_fails_the_ticket_and_its_row_waits_for_its_lease(repo: Repository) -> None:
    job = compare_job(repo)

    def handler(r: Repository, claim: Claim, settings: JobSettings) -> Finish | None:
        compare_claim(r, claim, settings)  # computed, but its finish is dropped for a failing one

        def broken() -> object:
            raise ConnectionError("server went away")
        return broken

    with pytest.raises(ConnectionError, match="server went away"):
        work_through(repo, job, "compare", handler, claim_limit=1, whole_claims=True)
    statuses = rows_by_status(repo, job)
    # The first claim's failure surfaces while the second claim is worked; neither is done.
    assert statuses.get("done", 0) == 0 and statuses["running"] == 2

