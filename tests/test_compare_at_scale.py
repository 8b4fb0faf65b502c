"""The compare and cluster phases through real workers: many rows, several workers, a killed one."""
from __future__ import annotations

import os
import signal
import time

import numpy as np
from conftest import wait_for
from test_matching import flip_bits, random_hashes

from db.models import HashedFile
from db.repository import JobOptions, Repository
from neardup.bench_inprocess import group_in_process, reference_pairs
from neardup.clustering import LOOSE_FACTOR
from neardup.synthetic import make_set
from neardup.variants import HashBlock, block_pairs, distance_matrix

THRESHOLD = 10


def submit(repo: Repository, hashes: np.ndarray, alternatives: list[tuple[int, ...]], opts: JobOptions,
           ties: list[int] | None = None) -> int:
    files = [HashedFile(f"/synthetic/{k:07d}.jpg", 1000 + k % 7, float(k), int(h), alternatives[k], 64, 48,
                        None if ties is None else ties[k])
             for k, h in enumerate(hashes)]
    return repo.submit_hashed(["/synthetic"], files, opts)


def job_pairs(repo: Repository, job: int) -> set[tuple[int, int]]:
    a, b, _ = repo.job_pairs(job)
    return set(zip(a.tolist(), b.tolist()))


def assert_finalized_once(repo: Repository, job: int, attempts: dict[str, tuple[int, int, int, int]]) -> None:
    """Every cluster and finalize row worked once (a small job's first cluster row decides every
    group and finalize has no row), and the job completed by exactly one transition."""
    for phase in ("cluster", "finalize"):
        rows, tries, most, done = attempts.get(phase, (0, 0, 0, 0))
        assert done == rows == tries and most <= 1
    assert attempts["cluster"][0] >= 1
    with repo.pool.connection() as conn:
        completions = conn.execute("SELECT count(*) FROM event WHERE job_id = %s AND kind = 'job_completed'",
                                   (job,)).fetchone()[0]
    assert completions == 1


def finished(repo: Repository, job: int) -> bool:
    return repo.progress(job).finished


def test_hundreds_of_block_pair_rows_worked_by_several_workers_give_the_reference_pairs(
    start_workers, repo: Repository
) -> None:
    data = make_set(1500, seed=11, copy_share=0.05, rotated_share=0.5, max_noise=2.0)
    job = submit(repo, data.hashes, data.alternatives, JobOptions(block_size=50), data.ties)
    start_workers(3)
    wait_for(lambda: finished(repo, job), timeout=150)
    assert repo.progress(job).status == "completed"
    ids = repo.job_file_ids(job)
    found = job_pairs(repo, job)
    assert found == reference_pairs(data, ids, np.arange(len(data)), THRESHOLD)
    assert len(found) >= 60
    attempts = repo.work_attempts(job)
    rows, tries, most, done = attempts["compare"]
    assert rows == 30 * 31 // 2 and done == rows and tries == rows and most == 1
    assert_finalized_once(repo, job, attempts)
    # A small pair graph: the cluster phase's first row decided every group, as one process would.
    assert attempts["cluster"][0] == 1 and "finalize" not in attempts
    lo, hi, _ = repo.job_pairs(job)
    assert len(repo.groups(job)) == group_in_process(data, ids, lo, hi, THRESHOLD)
    # Every group holds only photos within the threshold of each other (chains were split).
    block = HashBlock.from_lists(ids.tolist(), data.hashes.tolist(), data.alternatives, data.ties)
    dist = distance_matrix(block)
    position = {int(i): k for k, i in enumerate(ids)}
    with repo.pool.connection() as conn:
        groups = conn.execute("SELECT member_ids FROM dup_group WHERE job_id = %s", (job,)).fetchall()
    assert len(groups) == len(repo.groups(job)) > 0
    for (members,) in groups:
        index = [position[m] for m in members]
        assert dist[np.ix_(index, index)].max() <= THRESHOLD


def test_a_worker_killed_mid_row_has_its_row_reclaimed_and_the_pairs_are_unchanged(
    start_workers, repo: Repository
) -> None:
    rng = np.random.default_rng(21)
    hashes = random_hashes(80_000, rng)
    sources = rng.choice(len(hashes), size=300, replace=False)
    copies = np.array([flip_bits(int(hashes[i]), int(rng.integers(0, 11)), rng) for i in sources],
                      dtype=np.uint64).view(np.int64)
    hashes = np.concatenate([hashes, copies])
    none: list[tuple[int, ...]] = [()] * len(hashes)
    job = submit(repo, hashes, none, JobOptions(block_size=40_000, lease_s=2.0))
    [victim] = start_workers(1)

    def running() -> list[int]:
        with repo.pool.connection() as conn:
            rows = conn.execute("SELECT id FROM work WHERE job_id = %s AND phase = 'compare' "
                                "AND status = 'running'", (job,)).fetchall()
        return [r[0] for r in rows]

    def stopped_holding() -> list[int]:
        # Freeze the worker, then look: a row still running a moment later is one it holds (a
        # look before the freeze could see a row it finishes before the kill lands).
        if not running():
            return []
        os.killpg(victim.pid, signal.SIGSTOP)
        time.sleep(0.2)  # a COMMIT already sent is still carried out by the server
        rows = running()
        if not rows:
            os.killpg(victim.pid, signal.SIGCONT)
        return rows

    held = wait_for(stopped_holding, timeout=90, every=0.01)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    start_workers(2)
    # Well inside the broker's own requeue of a dead worker's messages (a minute or more): the
    # monitor chain the victim may have held is re-armed by the other workers' watchdogs.
    wait_for(lambda: finished(repo, job), timeout=45)
    assert repo.progress(job).status == "completed"
    with repo.pool.connection() as conn:
        again = conn.execute("SELECT attempts, status FROM work WHERE id = ANY(%s)", (held,)).fetchall()
    assert all(status == "done" for _, status in again)
    assert any(attempts >= 2 for attempts, _ in again), "the killed worker's row was not claimed again"
    ids = repo.job_file_ids(job)
    block = HashBlock.build(ids, hashes)
    lo, hi, _ = block_pairs(block, block, THRESHOLD, same=True, threads=2)
    assert job_pairs(repo, job) == set(zip(lo.tolist(), hi.tolist()))
    assert len(lo) >= 300
    assert_finalized_once(repo, job, repo.work_attempts(job))


def test_a_large_chained_component_is_split_in_the_child_process_without_losing_its_lease(
    start_workers, repo: Repository
) -> None:
    # A random walk in Hamming space, 4 bits a step: one component of 300, ends far apart.
    rng = np.random.default_rng(31)
    walk = [int(rng.integers(0, 1 << 63))]
    for _ in range(299):
        walk.append(walk[-1] ^ sum(1 << int(b) for b in rng.choice(64, size=4, replace=False)))
    hashes = np.concatenate([np.array(walk, dtype=np.uint64).view(np.int64), random_hashes(200, rng)])
    job = submit(repo, hashes, [()] * len(hashes), JobOptions(lease_s=2.0))
    start_workers(1)
    wait_for(lambda: finished(repo, job), timeout=150)
    assert repo.progress(job).status == "completed"
    attempts = repo.work_attempts(job)
    assert attempts["cluster"][2] == 1, "a cluster row was taken away mid-run"
    ids = repo.job_file_ids(job)
    dist = distance_matrix(HashBlock.build(ids, hashes))
    position = {int(i): k for k, i in enumerate(ids)}
    with repo.pool.connection() as conn:
        groups = [g for (g,) in conn.execute("SELECT member_ids FROM dup_group WHERE job_id = %s", (job,))]
        largest = conn.execute("SELECT max(units) FROM work WHERE job_id = %s AND phase = 'cluster'",
                               (job,)).fetchone()[0]
    assert largest >= 256  # the component was a row of its own, split in the child process
    assert len(groups) > 10
    for members in groups:
        index = [position[m] for m in members]
        sub = dist[np.ix_(index, index)]
        # Every member near more than half of its group's core: two members share a core member,
        # so a group spans at most twice the loose bound, however long the walk.
        assert sub.max() <= 2 * LOOSE_FACTOR * THRESHOLD
        close = sub <= THRESHOLD
        np.fill_diagonal(close, False)
        assert close.any(axis=1).all()
