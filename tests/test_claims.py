"""Claiming work rows: SKIP LOCKED, leases, attempts."""
from __future__ import annotations

import threading
import time

import psycopg

from db.repository import JobOptions, NewFile, Repository
from db.transitions import Transitions


def fake_files(n: int) -> list[NewFile]:
    return [NewFile(f"/nowhere/{i:05d}.jpg", 1, 0.0) for i in range(n)]


def test_two_connections_claiming_concurrently_never_get_the_same_row(database_url: str) -> None:
    setup = Repository(database_url)
    job = setup.submit(["/nowhere"], fake_files(600), JobOptions(batch_size=2))
    claimed: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def claimer(slot: int) -> None:
        repo = Repository(database_url)
        start.wait()
        while rows := repo.claim(job, "hash", 3, 60.0).rows:
            claimed[slot].extend(r.id for r in rows)
        repo.close()

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    setup.close()
    first, second = set(claimed[0]), set(claimed[1])
    assert first and second, "both connections should have claimed something"
    assert not first & second
    assert len(claimed[0]) + len(claimed[1]) == 300


def test_a_claim_takes_several_rows_in_one_round_trip_and_marks_the_job_running(repo: Repository) -> None:
    job = repo.submit(["/nowhere"], fake_files(10), JobOptions(batch_size=2))
    assert repo.progress(job).status == "pending"
    claim = repo.claim(job, "hash", 4, 60.0)
    assert len(claim.rows) == 4
    assert all(r.attempts == 1 for r in claim.rows)
    assert repo.progress(job).status == "running"


def test_a_row_whose_lease_expired_goes_back_to_pending(repo: Repository) -> None:
    job = repo.submit(["/nowhere"], fake_files(4), JobOptions(batch_size=4, max_attempts=3))
    claim = repo.claim(job, "hash", 1, 0.2)
    assert len(claim.rows) == 1
    t = Transitions(repo)
    assert t.reclaim_expired() == []
    time.sleep(0.4)
    assert t.reclaim_expired() == [job]
    again = repo.claim(job, "hash", 1, 60.0)
    assert [r.id for r in again.rows] == [claim.rows[0].id]
    assert again.rows[0].attempts == 2
    # The worker that lost its lease cannot finish the row any more.
    assert repo.finish_hash_work(claim, claim.rows[0].id, []) is False


def test_a_row_that_exhausts_its_attempts_fails_with_its_files_and_the_counts_add_up(repo: Repository) -> None:
    job = repo.submit(["/nowhere"], fake_files(3), JobOptions(batch_size=3, max_attempts=1))
    repo.claim(job, "hash", 1, 0.1)
    time.sleep(0.3)
    Transitions(repo).reclaim_expired()
    failed = repo.failed_files(job)
    assert len(failed) == 3
    assert all("lease expired" in f.error for f in failed)
    hash_phase = repo.progress(job).phases[0]
    assert hash_phase.failed + hash_phase.done + hash_phase.skipped == hash_phase.total == 3


def test_every_named_query_is_valid_sql(database_url: str) -> None:
    from db.queries import queries

    with psycopg.connect(database_url) as conn:
        # The submit's staging table, which later statements name (DDL itself cannot be prepared).
        conn.execute(queries()["create_walk"])
        for name, sql in queries().items():
            if "FROM STDIN" in sql or any(f"\n{word} " in "\n" + sql for word in ("VACUUM", "CREATE")):
                continue  # COPY, VACUUM and DDL cannot be prepared
            # Parse and plan without running: PREPARE checks names, types and syntax.
            params = sorted(set(__import__("re").findall(r"%\((\w+)\)s", sql)))
            text = sql
            for i, p in enumerate(params, 1):
                text = text.replace(f"%({p})s", f"${i}")
            text = text.replace("%%", "%")  # psycopg's escape of a literal %
            conn.execute(f"PREPARE check_{name} AS {text}")
