"""The progress views: exact, cheap to read, right for empty, cancelled and resumed jobs."""
from __future__ import annotations

import numpy as np
import psycopg
import pytest

from db.control import JobControl
from db.events import EventLog
from db.models import HashResult
from db.repository import PHASES, JobOptions, NewFile, Repository
from db.transitions import Transitions


def files(n: int) -> list[NewFile]:
    return [NewFile(f"/x/{i:03d}.jpg", 1, 0.0) for i in range(n)]


def hash_rows(repo: Repository, job: int, rows: int, fail_every: int = 0) -> None:
    """Work `rows` hash rows as a worker would, failing every fail_every-th file."""
    claim = repo.claim(job, "hash", rows, 60.0)
    for row in claim.rows:
        results = [HashResult(f.id, f.id, 8, 8, "broken" if fail_every and f.id % fail_every == 0 else None)
                   for f in repo.files_of_work(row.id)]
        assert repo.finish_hash_work(claim, row.id, results)


def recount(repo: Repository, job: int) -> dict[str, tuple[int, ...]]:
    with repo.pool.connection() as conn:
        rows = conn.execute(
            "SELECT phase, total, done, failed, skipped, cancelled, pending, running "
            "FROM phase_recount WHERE job_id = %s", (job,)).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def view_counts(repo: Repository, job: int) -> dict[str, tuple[int, ...]]:
    return {ph.name: (ph.total, ph.done, ph.failed, ph.skipped, ph.cancelled, ph.pending, ph.running)
            for ph in repo.progress(job).phases}


def test_a_job_of_no_files_is_zero_of_zero_then_complete_at_exactly_100(repo: Repository) -> None:
    job = repo.submit(["/empty"], [], JobOptions())
    start = repo.progress(job)
    assert start.percent == 0.0 and start.status == "pending"
    assert [(ph.total, ph.fraction) for ph in start.phases] == [(0, 0.0)] * len(PHASES)
    t = Transitions(repo)
    t.step(job, "hash")
    assert t.step(job, "compare") is not None  # the cluster phase starts with one row
    claim = repo.claim(job, "cluster", 1, 60.0)
    empty = np.array([], dtype=np.int64)
    assert repo.finish_components(claim, claim.rows[0], empty, empty, [])
    assert t.step(job, "cluster") is None  # no finalize rows: completed in the same transition
    end = repo.progress(job)
    assert (end.status, end.percent) == ("completed", 100.0)
    assert all(ph.fraction == 1.0 and ph.status == "completed" for ph in end.phases)
    kinds = [e.kind for e in EventLog(repo).after(job)]
    assert kinds == ["job_submitted", "phase_started", "phase_completed", "phase_started",
                     "phase_completed", "phase_started", "job_started", "phase_completed",
                     "phase_started", "phase_completed", "job_completed"]


def test_the_fast_view_equals_a_recount_of_every_row_through_failures_and_cancel(repo: Repository) -> None:
    job = repo.submit(["/x"], files(40) + [NewFile("/x/unreadable.jpg", 0, 0.0, "permission denied")],
                      JobOptions(batch_size=4))
    assert view_counts(repo, job) == recount(repo, job)
    hash_rows(repo, job, 3, fail_every=5)
    held = repo.claim(job, "hash", 2, 60.0)
    assert held.rows
    assert view_counts(repo, job) == recount(repo, job)
    hashed = next(ph for ph in repo.progress(job).phases if ph.name == "hash")
    # 12 files worked (every 5th by id failed), the walk's failure settled at submit, 8 running.
    assert hashed.total == 41 and hashed.running == 8 and hashed.failed >= 1
    assert hashed.done + hashed.failed + hashed.skipped + hashed.pending + hashed.running == 41
    assert JobControl(repo).cancel(job) is not None
    assert view_counts(repo, job) == recount(repo, job)


def test_cancelled_work_is_not_counted_done_and_resuming_never_moves_the_bar_back(repo: Repository) -> None:
    job = repo.submit(["/x"], files(40), JobOptions(batch_size=4))
    hash_rows(repo, job, 4)
    before = repo.progress(job)
    control = JobControl(repo)
    assert control.cancel(job) == 24  # 6 pending rows of 4 files
    cancelled = repo.progress(job)
    assert cancelled.status == "cancelled" and cancelled.percent == before.percent
    assert cancelled.phases[0].status == "cancelled" and cancelled.phases[0].cancelled == 24
    assert control.cancel(job) is None  # idempotent: nothing left to cancel
    resumed = control.resume(job)
    assert resumed is not None and resumed.was_cancelled and resumed.requeued_units == 24
    after = repo.progress(job)
    assert after.status == "running" and after.percent == before.percent
    assert after.phases[0].cancelled == 0 and after.phases[0].pending == 24
    kinds = [e.kind for e in EventLog(repo).after(job)]
    assert kinds[-2:] == ["job_cancelled", "job_resumed"]


def test_a_finished_job_cannot_be_cancelled_or_resumed(repo: Repository) -> None:
    job = repo.submit(["/empty"], [], JobOptions())
    with repo.pool.connection() as conn:
        conn.execute("UPDATE job SET status = 'completed' WHERE id = %s", (job,))
    control = JobControl(repo)
    assert control.cancel(job) is None and control.resume(job) is None
    assert control.status(job) == ("completed", "hash")
    assert control.status(987654) is None


def test_work_rows_for_a_phase_the_job_does_not_have_are_refused(repo: Repository) -> None:
    job = repo.submit(["/x"], files(2), JobOptions())
    with pytest.raises(psycopg.errors.RaiseException, match="no job_phase row"):
        with repo.pool.connection() as conn:
            conn.execute("INSERT INTO work (job_id, phase, units) VALUES (%s, 'nonesuch', 5)", (job,))
    with pytest.raises(psycopg.errors.RaiseException, match="fixed"):
        with repo.pool.connection() as conn:
            conn.execute("UPDATE work SET units = units + 1 WHERE job_id = %s", (job,))


def test_a_phase_added_later_reports_granular_progress_like_the_others(repo: Repository) -> None:
    # The views are driven by job_phase rows: a new phase needs a row and work rows with units.
    job = repo.submit(["/x"], files(4), JobOptions())
    with repo.pool.connection() as conn:
        conn.execute("INSERT INTO job_phase (job_id, phase, ordinal, weight, started_at) "
                     "VALUES (%s, 'review', 9, 1.0, now())", (job,))
        conn.execute("INSERT INTO work (job_id, phase, units) SELECT %s, 'review', 10 "
                     "FROM generate_series(1, 4)", (job,))
        conn.execute("UPDATE work SET status = 'done', finished_at = now() WHERE id IN "
                     "(SELECT id FROM work WHERE job_id = %s AND phase = 'review' LIMIT 1)", (job,))
    review = next(ph for ph in repo.progress(job).phases if ph.name == "review")
    assert (review.total, review.done, review.pending, review.fraction) == (40, 10, 30, 0.25)


def buffers_read(conn: psycopg.Connection, job: int) -> int:
    plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM job_progress WHERE job_id = %s",
                        (job,)).fetchone()[0][0]["Plan"]
    return plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]


def test_reading_progress_touches_only_the_unfinished_rows_not_the_whole_table(repo: Repository) -> None:
    big = repo.submit(["/big"], [], JobOptions())
    small = repo.submit(["/small"], files(50), JobOptions(batch_size=1))
    with repo.pool.connection() as conn:
        conn.autocommit = True
        conn.execute("INSERT INTO work (job_id, phase, units, status, attempts, finished_at) "
                     "SELECT %s, 'hash', 1, 'done', 1, now() FROM generate_series(1, 20000)", (big,))
        conn.execute("VACUUM ANALYZE work")
        pages = conn.execute("SELECT relpages FROM pg_class WHERE relname = 'work'").fetchone()[0]
        finished_big, small_read = buffers_read(conn, big), buffers_read(conn, small)
    assert repo.progress(big).phases[0].done == 20000
    # A finished phase of 20,000 rows and a fresh job of 50 each cost a few index pages, where
    # counting every row would read the whole table.
    assert pages > 100
    assert finished_big < pages / 4 and small_read < pages / 4, (finished_big, small_read, pages)
