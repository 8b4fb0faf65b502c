"""The monitor: phase transitions that happen once, however many monitors run."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from db.repository import JobOptions, NewFile, Repository
from db.control import JobControl
from db.models import HashedFile, HashResult
from db.transitions import Transitions


def finish_hash_phase(repo: Repository, job: int) -> None:
    while rows := (claim := repo.claim(job, "hash", 10, 60.0)).rows:
        for row in rows:
            files = repo.files_of_work(row.id)
            results = [HashResult(f.id, f.id * 7919, 10, 10, None) for f in files]
            assert repo.finish_hash_work(claim, row.id, results)


def test_the_phase_transition_happens_once_with_two_monitors_running_at_once(database_url: str) -> None:
    setup = Repository(database_url)
    job = setup.submit(["/x"], [NewFile(f"/x/{i}.jpg", 1, 0.0) for i in range(50)],
                       JobOptions(block_size=10, batch_size=5))
    finish_hash_phase(setup, job)
    barrier = threading.Barrier(8)
    kicks = []

    def monitor() -> None:
        t = Transitions(Repository(database_url))
        barrier.wait()
        kicks.append(t.step(job, "hash"))

    threads = [threading.Thread(target=monitor) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    moved = [k for k in kicks if k is not None]
    assert len(moved) == 1
    assert moved[0].phase == "compare"
    with setup.pool.connection() as conn:
        rows = conn.execute("SELECT count(*), sum(units) FROM work WHERE job_id = %s AND phase = 'compare'",
                            (job,)).fetchone()
    # 5 blocks of 10: 5 diagonal + 10 off-diagonal block pairs, 50*49/2 image pairs in all.
    assert rows == (15, 50 * 49 // 2)
    assert setup.progress(job).phase == "compare"


def test_the_monitor_lock_admits_one_tick_at_a_time(repo: Repository) -> None:
    a, b = Transitions(repo), Transitions(Repository(repo.url))
    with a.exclusive() as first:
        with b.exclusive() as second:
            assert first is True
            assert second is False
    with b.exclusive() as later:
        assert later is True


def test_a_job_with_no_files_moves_through_every_phase(repo: Repository) -> None:
    job = repo.submit(["/empty"], [], JobOptions())
    t = Transitions(repo)
    assert t.step(job, "hash") is None  # no compare rows to make for zero files
    assert repo.progress(job).phase == "compare"
    kick = t.step(job, "compare")
    assert kick is not None and kick.phase == "cluster" and kick.tickets == 1
    # The cluster phase's first row finds no components in an empty pair graph, and makes no rows.
    claim = repo.claim(job, "cluster", 1, 60.0)
    empty = np.empty(0, dtype=np.int64)
    assert repo.finish_components(claim, claim.rows[0], empty, empty, [])
    # No groups to number: the finalize phase has no rows and the job completes in that transition.
    assert t.step(job, "cluster") is None
    assert repo.progress(job).status == "completed"


def test_the_monitor_chain_ends_when_idle_and_is_armed_again_by_new_work(repo: Repository) -> None:
    t = Transitions(repo)
    assert t.arm_due(only_active=True) is False  # no job active: the workers' watchdogs send nothing
    assert t.arm_due() is True  # a worker's boot arms all the same
    assert t.arm_due() is False  # armed a moment ago: chains must not multiply
    assert t.keep_ticking() is False  # no active job: the chain ends and says so
    job = repo.submit(["/x"], [NewFile("/x/a.jpg", 1, 0.0)], JobOptions())
    assert t.arm_due(only_active=True) is True  # the ended chain is armed again at once by new work
    assert t.keep_ticking() is True
    JobControl(repo).cancel(job)
    assert t.keep_ticking() is False


def test_a_transition_reports_exactly_the_rows_it_made_and_their_tickets(repo: Repository) -> None:
    rng = np.random.default_rng(4)
    files = [HashedFile(f"/y/{k:04d}.jpg", 1, 0.0, int(h), (), 10, 10, 0)
             for k, h in enumerate(rng.integers(0, 2**63, size=200, dtype=np.int64))]
    job = repo.submit_hashed(["/y"], files, JobOptions(block_size=25, fanout=3))
    kick = Transitions(repo).step(job, "hash")
    assert kick is not None and kick.phase == "compare"
    with repo.pool.connection() as conn:
        made = conn.execute("SELECT count(*) FROM work WHERE job_id = %s AND phase = 'compare'", (job,)).fetchone()[0]
    # 8 blocks of 25: 36 block pairs; the transition's statements are pipelined, and the count it
    # reports must still be the one PostgreSQL gives once the insert is in.
    assert kick.rows == made == 36
    assert kick.tickets == 3


@pytest.mark.parametrize(("algo", "rotations", "sign"), [("phash", True, True), ("phash", False, False),
                                                         ("dhash", True, False)])
def test_a_jobs_settings_say_whether_its_hashes_turn_with_the_image(
    repo: Repository, algo: str, rotations: bool, sign: bool
) -> None:
    job = repo.submit_hashed(["/z"], [HashedFile("/z/a.jpg", 1, 0.0, 5)],
                             JobOptions(hash_algo=algo, rotations=rotations))
    settings = repo.job_settings(job)
    assert settings is not None and settings.sign_hashes is sign
