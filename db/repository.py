"""The repository: the only code that names queries. Methods are transactions."""
from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool

from db.compare_cluster import CompareClusterMethods
from db.connect import make_pool, retrying
from db.events import emit, phase_event
from db.literals import bigint_array
from db.maintenance import settle_work
from db.models import (  # JobOptions and NewFile are this module's arguments: imported from here too
    JobOptions,
    NewFile,
    Claim,
    FileToHash,
    HashedFile,
    HashResult,
    JobSettings,
    KnownContent,
    WorkRow,
)
from db.queries import q
from db.results import ResultMethods

PHASES: tuple[str, ...] = ("hash", "compare", "cluster", "finalize")


def phase_weights(n_files: int) -> dict[str, float]:
    """Expected seconds per phase, fixed at submit: the overall bar's scale."""
    n = max(n_files, 1)
    return {
        "hash": n * 1e-2,
        "compare": max(n * (n - 1) / 2 / 2e9, 1e-3),
        "cluster": n * 1e-5,
        "finalize": n * 2e-6,
    }


def chunk_files(block_size: int) -> int:
    """Files per hash chunk a submit packs: a block spans whole chunks but for its two ends, which
    it reads whole, so chunks stay well under the block size."""
    return max(32, min(1024, block_size // 8))


def _storable_path(path: str) -> tuple[str, bytes | None]:
    # A name that is not valid UTF-8 carries surrogate escapes; text columns cannot hold them,
    # so the exact bytes go to path_raw and a readable form to path.
    try:
        path.encode("utf-8")
        return path, None
    except UnicodeEncodeError:
        raw = os.fsencode(path)
        return raw.decode("utf-8", "backslashreplace"), raw


class Repository(CompareClusterMethods, ResultMethods):
    def __init__(self, url: str, pool: ConnectionPool | None = None) -> None:
        self.url = url
        self.pool = pool or make_pool(url)

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    # -- submit ---------------------------------------------------------------------------

    def submit(self, roots: Sequence[str], files: Iterable[NewFile], opts: JobOptions,
               on_job: Callable[[int], object] = lambda job_id: None) -> int:
        """One transaction: the job, its phases, its files and its hash work rows. on_job(id) runs
        as soon as the id is known, before the commit (a Ctrl-C may land on either side of it)."""
        with self._tx() as cur:
            job_id = self._insert_job(cur, roots, opts)
            on_job(job_id)
            cur.execute(q("create_walk"))
            walked = 0
            with cur.copy(q("copy_walk")) as copy:
                for f in files:
                    path, raw = _storable_path(f.path)
                    copy.write_row((path, raw, f.size, f.mtime, f.error))
                    walked += 1
            # Phases before rows: inserting work rows sizes their phase (a trigger), and refuses
            # rows for a phase the job does not have.
            n_files, first_phase = self._insert_phases(cur, job_id, walked)
            self._set_hashing(cur, job_id, opts, n_files)
            cur.execute(q("plan_for_lookups"))
            cur.execute(q("insert_walked_files"), {
                "job_id": job_id, "kind": opts.hash_kind if opts.reuse else None})
            cur.execute(q("plan_default"))
            cur.execute(q("pack_submitted_chunks"), {"job_id": job_id, "chunk_files": chunk_files(opts.block_size)})
            cur.execute(q("make_hash_work"), {"job_id": job_id, "batch_size": opts.batch_size})
            rows = -(-cur.rowcount // opts.batch_size)
            cur.execute(q("settled_work"), {"job_id": job_id})
            settled = [r[0] for r in cur.fetchall()]
            emit(cur, job_id, "job_submitted", None, roots=list(roots), files=n_files)
            phase_event(cur, job_id, "phase_started", first_phase)
            if settled:
                cur.execute(q("file_failed_events"), {"job_id": job_id, "work_ids": settled[:1]})
        settle_work(self.url, rows)
        return job_id

    def submit_hashed(self, roots: Sequence[str], files: Iterable[HashedFile], opts: JobOptions) -> int:
        """A job whose files arrive hashed (benchmarks, imports): its hash phase has no rows, so
        the monitor's first step moves it straight to compare. opts says what the hashes are."""
        with self._tx() as cur:
            job_id = self._insert_job(cur, roots, opts)
            with cur.copy(q("copy_hashed_files")) as copy:
                for f in files:
                    copy.write_row((job_id, f.path, f.size, f.mtime, "hashed", f.hash,
                                    list(f.alt_hashes) or None, f.width, f.height, f.ties))
            cur.execute(q("pack_submitted_chunks"), {"job_id": job_id, "chunk_files": chunk_files(opts.block_size)})
            n_files, first_phase = self._insert_phases(cur, job_id)
            self._set_hashing(cur, job_id, opts, n_files)
            emit(cur, job_id, "job_submitted", None, roots=list(roots), files=n_files)
            phase_event(cur, job_id, "phase_started", first_phase)
        return job_id

    @staticmethod
    def _insert_job(cur: psycopg.Cursor, roots: Sequence[str], opts: JobOptions) -> int:
        cur.execute(q("insert_job"), {
            "roots": list(roots), "threshold": opts.threshold, "block_size": opts.block_size,
            "fanout": opts.fanout, "max_attempts": opts.max_attempts, "lease_s": opts.lease_s,
        })
        return cur.fetchone()[0]

    @staticmethod
    def _set_hashing(cur: psycopg.Cursor, job_id: int, opts: JobOptions, n_files: int) -> None:
        cur.execute(q("set_job_hashing"), {"job_id": job_id, "algo": opts.hash_algo, "size": opts.hash_size,
                                           "rotations": opts.rotations, "reuse": opts.reuse, "kind": opts.hash_kind,
                                           "verify_up_to": opts.verify_bits(n_files),
                                           "all_turns": n_files <= opts.all_turns_up_to})

    @staticmethod
    def _insert_phases(cur: psycopg.Cursor, job_id: int, n_files: int | None = None) -> tuple[int, str]:
        """The job's phases with their fixed weights; (files, first phase)."""
        if n_files is None:
            cur.execute(q("count_job_files"), {"job_id": job_id})
            n_files = cur.fetchone()[0]
        weights = phase_weights(n_files)
        for ordinal, (phase, weight) in enumerate(weights.items()):
            cur.execute(q("insert_job_phase"), {
                "job_id": job_id, "phase": phase, "ordinal": ordinal, "weight": weight})
        return n_files, next(iter(weights))

    # -- claiming and finishing work ------------------------------------------------------

    @retrying()
    def job_settings(self, job_id: int) -> JobSettings | None:
        with self._tx() as cur:
            cur.execute(q("job_settings"), {"job_id": job_id})
            row = cur.fetchone()
        return JobSettings(*row) if row else None

    @retrying()
    def claim(self, job_id: int, phase: str, limit: int, lease_s: float) -> Claim:
        token = str(uuid.uuid4())
        with self._tx() as cur:
            cur.execute(q("claim_work"), {
                "job_id": job_id, "phase": phase, "limit": limit, "claim": token, "lease_s": lease_s})
            rows = tuple(sorted((WorkRow(*r) for r in cur.fetchall()), key=lambda r: r.id))
            if rows:
                cur.execute(q("mark_job_running"), {"job_id": job_id})
                if cur.fetchone() is not None:
                    emit(cur, job_id, "job_started", phase)
        return Claim(token, rows)

    @retrying()
    def files_of_work(self, work_id: int) -> list[FileToHash]:
        with self._tx() as cur:
            cur.execute(q("files_of_work"), {"work_id": work_id})
            return [FileToHash(i, p, bytes(r) if r is not None else None) for i, p, r in cur.fetchall()]

    @retrying()
    def job_hashing(self, job_id: int) -> tuple[str, int, bool, bool, str | None] | None:
        """(algorithm, hash size, rotations, reuse of other jobs' hashes, expected kind) of a job."""
        with self._tx() as cur:
            cur.execute(q("job_hashing"), {"job_id": job_id})
            row = cur.fetchone()
        return tuple(row) if row else None  # type: ignore[return-value]

    @retrying()
    def known_digests(
        self, job_id: int, kind: str, digests: Sequence[bytes], other_jobs: bool = True
    ) -> dict[bytes, KnownContent]:
        """What this job (or another, for hashes of this kind) already learnt about these contents."""
        with self._tx() as cur:
            cur.execute(q("known_digests"), {"job_id": job_id, "kind": kind, "digests": list(digests),
                                             "other_jobs": other_jobs})
            rows = cur.fetchall()
        return {bytes(r[0]): KnownContent(r[1], r[2], tuple(r[3] or ()), r[4], r[5], r[6], r[7],
                                          None if r[8] is None else bytes(r[8]))
                for r in rows}

    @retrying()
    def finish_hash_work(
        self, claim: Claim, work_id: int, results: Sequence[HashResult], kind: str | None = None
    ) -> bool:
        with self._tx() as cur:
            cur.execute(q("finish_work"), {"work_id": work_id, "claim": claim.token})
            if cur.fetchone() is None:
                return False
            cur.execute(q("record_hashes"), {
                "kind": kind,
                "ids": [r.file_id for r in results],
                "statuses": [r.status for r in results],
                "hashes": [r.hash for r in results],
                "alts": [bigint_array(r.alternatives) if r.alternatives else None for r in results],
                "ties": [r.ties if r.hash is not None else None for r in results],
                "digests": [r.digest for r in results],
                "widths": [r.width for r in results],
                "heights": [r.height for r in results],
                "errors": [r.error for r in results],
                "thumbs": [r.thumb for r in results],
            })
            cur.execute(q("pack_work_chunk"), {"job_id": claim.rows[0].job_id, "work_id": work_id})
            cur.execute(q("tally_work_files"), {"work_id": work_id})
            if any(r.error for r in results):
                cur.execute(q("file_failed_events"), {"job_id": claim.rows[0].job_id,
                                                      "work_ids": [work_id]})
        return True

    @retrying()
    def release(self, claim: Claim, work_id: int, error: str) -> None:
        with self._tx() as cur:
            cur.execute(q("release_work"), {"work_id": work_id, "claim": claim.token, "error": error})

    # -- finalize -------------------------------------------------------------------------

    @retrying()
    def finish_finalize_work(self, claim: Claim, row: WorkRow) -> bool:
        """Number the groups decided in the row's range of components; the monitor completes the
        job once no finalize row is left."""
        with self._tx() as cur:
            cur.execute(q("finish_work"), {"work_id": row.id, "claim": claim.token})
            if cur.fetchone() is None:
                return False
            cur.execute(q("assemble_groups"), {"job_id": row.job_id, "first": row.block_a, "last": row.block_b})
            return True

    @retrying()
    def schema_ready(self) -> bool:
        with self._tx() as cur:
            cur.execute(q("broker_schema_exists"))
            return bool(cur.fetchone()[0])


_shared: dict[str, Repository] = {}
_shared_lock = threading.Lock()


def shared_repository(url: str) -> Repository:
    """One repository (one connection pool) per database and process: the CLI and the actors it
    runs in-process share it."""
    with _shared_lock:
        if url not in _shared:
            _shared[url] = Repository(url)
        return _shared[url]


def close_shared() -> None:
    """Close the shared repositories' pools (a process about to exit)."""
    with _shared_lock:
        while _shared:
            _shared.popitem()[1].pool.close()
