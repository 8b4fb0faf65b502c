"""Finalize: a row per range of components, granular progress, and a job completed exactly once."""
from __future__ import annotations

import numpy as np

from db.events import EventLog
from db.models import DecidedGroup
from db.repository import JobOptions, NewFile, Repository
from db.transitions import Transitions
from test_monitor import finish_hash_phase


def through_cluster(repo: Repository, job: int, pairs: list[tuple[int, int]],
                    batches: list[tuple[int, int, int]]) -> list[int]:
    """Work the job up to its finalize phase by hand: the given pairs, each pair one component and
    one group (keeper: its first file), cluster rows over the given component ranges."""
    t = Transitions(repo)
    finish_hash_phase(repo, job)
    t.step(job, "hash")
    ids = repo.job_file_ids(job).tolist()
    claim = repo.claim(job, "compare", 1000, 60.0)
    a = np.array([ids[i] for i, _ in pairs], dtype=np.int64)
    b = np.array([ids[j] for _, j in pairs], dtype=np.int64)
    work = np.full(len(pairs), claim.rows[0].id, dtype=np.int64)
    repo.finish_compare_claim(claim, job, [r.id for r in claim.rows], work, a, b, np.zeros(len(pairs), np.int64))
    t.step(job, "compare")
    start = repo.claim(job, "cluster", 1, 60.0)
    labels = np.repeat(np.arange(1, len(pairs) + 1), 2)
    members = np.array([x for pair in zip(a, b) for x in pair], dtype=np.int64)
    assert repo.finish_components(start, start.rows[0], members, labels, batches)
    while (claim := repo.claim(job, "cluster", 1, 60.0)).rows:
        row = claim.rows[0]
        groups = [DecidedGroup(int(a[c - 1]), (int(a[c - 1]), int(b[c - 1])), "most pixels")
                  for c in range(row.block_a, row.block_b + 1)]
        assert repo.finish_cluster_work(claim, row, groups)
    return ids


def completions(repo: Repository, job: int) -> int:
    return sum(e.kind == "job_completed" for e in EventLog(repo).all_after(job))


def test_finalize_moves_row_by_row_and_the_job_completes_once_when_no_row_is_left(repo: Repository) -> None:
    job = repo.submit(["/x"], [NewFile(f"/x/{i:02d}.jpg", 1, 0.0) for i in range(10)], JobOptions())
    ids = through_cluster(repo, job, [(0, 1), (2, 3), (4, 5)], [(2, 1, 1), (4, 2, 3)])
    t = Transitions(repo)
    kick = t.step(job, "cluster")
    assert kick is not None and kick.phase == "finalize" and kick.rows == 2

    claim = repo.claim(job, "finalize", 1, 60.0)
    assert repo.finish_finalize_work(claim, claim.rows[0])
    assert t.step(job, "finalize") is None
    middle = repo.progress(job)
    finalize = next(p for p in middle.phases if p.name == "finalize")
    # One row of two done: the phase shows it, and the job is not complete before its last row.
    assert (finalize.total, finalize.done) == (6, 2) and 0 < finalize.fraction < 1
    assert middle.status == "running" and middle.percent < 100 and completions(repo, job) == 0

    claim = repo.claim(job, "finalize", 1, 60.0)
    assert repo.finish_finalize_work(claim, claim.rows[0])
    # A redelivered row (its claim no longer holds it) changes nothing.
    assert repo.finish_finalize_work(claim, claim.rows[0]) is False
    t.step(job, "finalize")
    t.step(job, "finalize")  # a second monitor's look finds the job completed already
    end = repo.progress(job)
    assert (end.status, end.percent) == ("completed", 100.0) and completions(repo, job) == 1
    groups = sorted(sorted(g.members) for g in repo.groups(job))
    assert groups == [[f"/x/{i:02d}.jpg", f"/x/{i + 1:02d}.jpg"] for i in (0, 2, 4)]
    assert all(g.keeper == min(g.members) for g in repo.groups(job))
    assert len(ids) == 10


def test_a_job_whose_finalize_was_cancelled_midway_resumes_without_losing_or_doubling_a_group(
    repo: Repository,
) -> None:
    from db.control import JobControl

    job = repo.submit(["/x"], [NewFile(f"/x/{i:02d}.jpg", 1, 0.0) for i in range(8)], JobOptions())
    through_cluster(repo, job, [(0, 1), (2, 3), (4, 5), (6, 7)], [(2, 1, 1), (2, 2, 2), (4, 3, 4)])
    t = Transitions(repo)
    t.step(job, "cluster")
    claim = repo.claim(job, "finalize", 1, 60.0)
    assert repo.finish_finalize_work(claim, claim.rows[0])
    control = JobControl(repo)
    assert control.cancel(job) == 6
    t.step(job, "finalize")
    assert repo.progress(job).status == "cancelled" and completions(repo, job) == 0
    assert control.resume(job) is not None
    while (claim := repo.claim(job, "finalize", 1, 60.0)).rows:
        assert repo.finish_finalize_work(claim, claim.rows[0])
    t.step(job, "finalize")
    assert repo.progress(job).status == "completed" and completions(repo, job) == 1
    assert sorted(len(g.members) for g in repo.groups(job)) == [2, 2, 2, 2]


def test_deleting_a_job_deletes_its_files_pairs_components_and_groups_and_no_other_jobs(
    repo: Repository,
) -> None:
    import psycopg

    jobs = []
    for root in ("/x", "/y"):
        job = repo.submit([root], [NewFile(f"{root}/{i:02d}.jpg", 1, 0.0) for i in range(6)], JobOptions())
        through_cluster(repo, job, [(0, 1), (2, 3)], [(2, 1, 1), (2, 2, 2)])
        jobs.append(job)
    tables = ("file", "pair", "file_component", "cluster_group")
    with psycopg.connect(repo.url, autocommit=True) as conn:
        def counts(job: int) -> list[int]:
            return [conn.execute(f"SELECT count(*) FROM {t} WHERE job_id = %s", (job,)).fetchone()[0]
                    for t in tables]

        before = counts(jobs[1])
        assert counts(jobs[0]) == before == [6, 2, 4, 2]
        conn.execute("DELETE FROM job WHERE id = %s", (jobs[0],))
        assert counts(jobs[0]) == [0, 0, 0, 0]
        assert counts(jobs[1]) == before
