"""Compare blocks: hashes packed into chunks as they are recorded, cut by position at the transition."""
from __future__ import annotations

import numpy as np
import psycopg

from db.models import HashedFile, HashResult
from db.repository import JobOptions, NewFile, Repository
from db.transitions import Transitions


def hashed_job(repo: Repository, files: int, block_size: int, fanout: int = 16) -> tuple[int, dict[int, HashResult]]:
    """A job whose hash phase is done: every seventh file failed, every fifth has two alternatives."""
    job = repo.submit(["/x"], [NewFile(f"/x/{i:04d}.jpg", 1, 0.0) for i in range(files)],
                      JobOptions(block_size=block_size, batch_size=16, fanout=fanout))
    results: dict[int, HashResult] = {}
    while rows := (claim := repo.claim(job, "hash", 10, 60.0)).rows:
        for row in rows:
            done = []
            for f in repo.files_of_work(row.id):
                if f.id % 7 == 0:
                    done.append(HashResult(f.id, None, None, None, "ValueError: broken"))
                else:
                    alts = (f.id * 31, f.id * 37) if f.id % 5 == 0 else ()
                    # Every third file's ties are unknown (stored before ties were).
                    ties = None if f.id % 3 == 0 else f.id % 8 | (0b1001 << 3 if alts else 0)
                    done.append(HashResult(f.id, f.id * 7919, 10, 10, None, alts, ties=ties))
            results.update((r.file_id, r) for r in done)
            assert repo.finish_hash_work(claim, row.id, done)
    assert Transitions(repo).step(job, "hash") is not None
    return job, results


def block_sizes(repo: Repository, job: int) -> list[int]:
    with repo.pool.connection() as conn:
        return [n for (n,) in conn.execute(
            "SELECT files FROM compare_block WHERE job_id = %s ORDER BY block", (job,))]


def test_blocks_are_even_and_none_is_over_the_block_size(repo: Repository) -> None:
    job, results = hashed_job(repo, 250, block_size=20)
    hashed = sum(r.error is None for r in results.values())
    sizes = block_sizes(repo, job)
    assert sum(sizes) == hashed and max(sizes) <= 20
    assert len(sizes) == -(-hashed // 20) and max(sizes) - min(sizes) <= 1


def test_packed_blocks_hold_every_hashed_file_once_with_its_alternatives_and_ties(repo: Repository) -> None:
    job, results = hashed_job(repo, 250, block_size=20)
    blocks = repo.compare_blocks(job, range(len(block_sizes(repo, job))))
    ids = np.concatenate([b.ids for b in blocks.values()])
    assert sorted(ids.tolist()) == sorted(i for i, r in results.items() if r.error is None)
    for b in blocks.values():
        assert [int(h) for h in b.hashes] == [results[int(i)].hash for i in b.ids]
        alts = sorted(zip(b.alt_ids.tolist(), b.alt_hashes.tolist()))
        assert alts == sorted((int(i), a) for i in b.ids for a in results[int(i)].alternatives)
        # An unknown ties word packs as near every wall.
        assert b.ties is not None
        assert b.ties.tolist() == [7 if results[int(i)].ties is None else results[int(i)].ties for i in b.ids]
    assert any(len(b.alt_ids) for b in blocks.values())


def chunked_ids(repo: Repository, job: int) -> list[int]:
    """Every file id the job's chunks hold, with repeats."""
    with repo.pool.connection() as conn:
        packed = conn.execute("SELECT ids FROM hash_chunk WHERE job_id = %s ORDER BY chunk", (job,)).fetchall()
    return [int(i) for (ids,) in packed for i in np.frombuffer(ids, dtype=">i8")]


def chunk_numbers(repo: Repository, job: int) -> list[int]:
    with repo.pool.connection() as conn:
        return [c for (c,) in conn.execute("SELECT chunk FROM hash_chunk WHERE job_id = %s ORDER BY chunk", (job,))]


def test_a_hash_row_finished_twice_packs_its_files_into_one_chunk_once(repo: Repository) -> None:
    job = repo.submit(["/x"], [NewFile(f"/x/{i}.jpg", 1, 0.0) for i in range(40)], JobOptions(batch_size=16))
    claim = repo.claim(job, "hash", 1, 60.0)
    row = claim.rows[0]
    done = [HashResult(f.id, f.id * 3, 10, 10, None) for f in repo.files_of_work(row.id)]
    assert repo.finish_hash_work(claim, row.id, done)
    assert not repo.finish_hash_work(claim, row.id, done)  # a redelivery: the row is done already
    assert sorted(chunked_ids(repo, job)) == sorted(r.file_id for r in done)


def test_reused_and_newly_hashed_files_are_each_in_exactly_one_chunk(repo: Repository) -> None:
    first, _ = hashed_job(repo, 120, block_size=50)
    # The rescan finds the first 100 files unchanged (their hashes are reused, packed by the
    # submit) and 30 new ones (hashed by rows, packed by each row's finish).
    with repo.pool.connection() as conn:
        conn.execute("UPDATE file SET hash_kind = 'k' WHERE job_id = %s", (first,))
    again = [NewFile(f"/x/{i:04d}.jpg", 1, 0.0) for i in range(100)] + \
        [NewFile(f"/y/{i:04d}.jpg", 1, 0.0) for i in range(30)]
    job = repo.submit(["/x", "/y"], again, JobOptions(block_size=50, batch_size=16, hash_kind="k"))
    reused = chunked_ids(repo, job)
    with repo.pool.connection() as conn:
        unchanged = conn.execute("SELECT count(*) FROM file WHERE job_id = %s AND hash IS NOT NULL "
                                 "AND path < '/x/0100.jpg'", (first,)).fetchone()[0]
    assert len(reused) == unchanged > 0
    while rows := (claim := repo.claim(job, "hash", 10, 60.0)).rows:
        for row in rows:
            assert repo.finish_hash_work(claim, row.id, [HashResult(f.id, f.id, 10, 10, None)
                                                         for f in repo.files_of_work(row.id)])
    with repo.pool.connection() as conn:
        hashed = sorted(i for (i,) in conn.execute(
            "SELECT id FROM file WHERE job_id = %s AND hash IS NOT NULL", (job,)))
    assert sorted(chunked_ids(repo, job)) == hashed and len(hashed) == 130  # the rest hashed by rows
    packed = chunk_numbers(repo, job)
    assert Transitions(repo).step(job, "hash") is not None
    assert chunk_numbers(repo, job) == packed  # nothing was missing: no repacking
    blocks = repo.compare_blocks(job, range(len(block_sizes(repo, job))))
    assert sorted(np.concatenate([b.ids for b in blocks.values()]).tolist()) == hashed


def test_a_job_that_fits_one_block_is_still_shared_out_when_it_is_big_enough(repo: Repository) -> None:
    sizes = {}
    for n in (5000, 20000):
        files = [HashedFile(f"/s/{k:05d}.jpg", 1, 0.0, k * 7919, (), 10, 10) for k in range(n)]
        job = repo.submit_hashed(["/s"], files, JobOptions())  # the default block size: 32,768
        Transitions(repo).step(job, "hash")
        sizes[n] = block_sizes(repo, job)
    assert sizes[5000] == [5000]  # blocks of fewer than 4,096 files would not be worth their rows
    assert sizes[20000] == [5000] * 4  # 10 rows for the workers to share, not 1


def test_the_first_rows_one_per_ticket_share_no_block_and_every_block_pair_is_one_row(repo: Repository) -> None:
    job, _ = hashed_job(repo, 250, block_size=20, fanout=3)
    blocks = len(block_sizes(repo, job))
    with repo.pool.connection() as conn:
        rows = conn.execute("SELECT block_a, block_b FROM work WHERE job_id = %s AND phase = 'compare' "
                            "ORDER BY id", (job,)).fetchall()
    # The first three workers each pack blocks of their own...
    assert rows[:3] == [(0, 1), (2, 3), (4, 5)]
    # ...then one block's rows run together, and each block with itself (the short rows) comes last.
    assert rows[3:5] == [(0, 2), (0, 3)]
    assert all(a == b for a, b in rows[-blocks:])
    assert sorted(rows) == [(a, b) for a in range(blocks) for b in range(a, blocks)]


def test_alternatives_packed_by_postgres_read_back_exactly_at_the_int64_extremes(repo: Repository) -> None:
    from db.compare_cluster import _alternatives

    arrays = {7: [-(2**63), 2**63 - 1, -1], 9: [0], 12: [123456789012345678, -5, 6, 7, 8, 9, 10]}
    with repo.pool.connection() as conn:
        owners, packed = conn.execute(
            "SELECT string_agg(int8send(id) || int4send(cardinality(a)), ''::bytea ORDER BY id),"
            "       string_agg(array_send(a), ''::bytea ORDER BY id)"
            " FROM unnest(%s::bigint[], %s::text[]) AS v(id, t), LATERAL (SELECT t::bigint[] AS a) x",
            (list(arrays), ["{" + ",".join(map(str, v)) + "}" for v in arrays.values()])).fetchone()
    ids, hashes = _alternatives(owners, packed)
    assert list(zip(ids.tolist(), hashes.tolist())) == [(i, h) for i, v in arrays.items() for h in v]
    assert [len(x) for x in _alternatives(None, None)] == [0, 0]


def test_blocks_read_their_chunks_whatever_the_gaps_in_chunk_numbers(repo: Repository) -> None:
    # Two jobs hashed side by side interleave their chunk numbers, and a finish that rolls back
    # (a worker killed mid-commit) burns numbers: a block's chunks are a range with holes.
    jobs = [repo.submit([f"/{name}"], [NewFile(f"/{name}/{i:03d}.jpg", 1, 0.0) for i in range(90)],
                        JobOptions(block_size=20, batch_size=7)) for name in ("a", "b")]
    while any(rows := [(job, c) for job in jobs if (c := repo.claim(job, "hash", 1, 60.0)).rows]):
        for job, claim in rows:
            row = claim.rows[0]
            with repo.pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pack_hash_chunks(%s, 3)", (job,))
                raise psycopg.Rollback()
            assert repo.finish_hash_work(claim, row.id, [HashResult(f.id, f.id, 10, 10, None)
                                                         for f in repo.files_of_work(row.id)])
    for job in jobs:
        assert Transitions(repo).step(job, "hash") is not None
        blocks = repo.compare_blocks(job, range(len(block_sizes(repo, job))))
        with repo.pool.connection() as conn:
            hashed = sorted(i for (i,) in conn.execute("SELECT id FROM file WHERE job_id = %s", (job,)))
        assert sorted(np.concatenate([b.ids for b in blocks.values()]).tolist()) == hashed


def test_hashes_recorded_without_a_chunk_are_packed_at_the_transition_not_left_out(repo: Repository) -> None:
    job = repo.submit(["/x"], [NewFile(f"/x/{i:03d}.jpg", 1, 0.0) for i in range(60)], JobOptions(batch_size=8))
    while rows := (claim := repo.claim(job, "hash", 10, 60.0)).rows:
        for row in rows:
            assert repo.finish_hash_work(claim, row.id, [HashResult(f.id, f.id, 10, 10, None)
                                                         for f in repo.files_of_work(row.id)])
    # As a worker older than hash chunks would have left it: hashes recorded, one row's chunk missing.
    with repo.pool.connection() as conn:
        conn.execute("DELETE FROM hash_chunk WHERE chunk = (SELECT min(chunk) FROM hash_chunk WHERE job_id = %s)",
                     (job,))
        hashed = sorted(i for (i,) in conn.execute("SELECT id FROM file WHERE job_id = %s", (job,)))
    assert len(chunked_ids(repo, job)) < len(hashed)
    assert Transitions(repo).step(job, "hash") is not None
    assert sorted(chunked_ids(repo, job)) == hashed
    blocks = repo.compare_blocks(job, range(len(block_sizes(repo, job))))
    assert sorted(np.concatenate([b.ids for b in blocks.values()]).tolist()) == hashed
