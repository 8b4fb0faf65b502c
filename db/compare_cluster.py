"""Repository methods of the compare and cluster phases (mixed into db.repository.Repository).

Each method is one transaction. Finishing is conditional on the claim, and whatever a finish
writes is written in the same transaction, so a row delivered twice writes once.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from contextlib import AbstractContextManager

import numpy as np
import psycopg

from db.connect import retrying
from db.literals import bigint_array, copy_lines
from db.models import BlockHashes, Claim, DecidedGroup, Member, SeenFile, WorkRow
from db.queries import q


def _int64s(packed: bytes | None) -> np.ndarray:
    # Chunks hold int8send() output: big-endian.
    if not packed:
        return np.empty(0, dtype=np.int64)
    return np.frombuffer(packed, dtype=">i8").astype(np.int64)


_OWNER = np.dtype([("id", ">i8"), ("count", ">i4")])
_ARRAY_HEADER = 20  # array_send of a 1-D array: ndim, has-nulls flag, element type, length, lower bound
_ELEMENT = 12  # each element: its length (int4, always 8 here) and the int8


def _alternatives(owners: bytes | None, arrays: bytes | None) -> tuple[np.ndarray, np.ndarray]:
    """(owner id per alternative hash, alternative hashes) from pack_hash_chunks' layout."""
    if not owners:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    rec = np.frombuffer(owners, dtype=_OWNER)
    counts = rec["count"].astype(np.int64)
    sizes = _ARRAY_HEADER + _ELEMENT * counts
    starts = np.cumsum(sizes) - sizes
    raw = np.frombuffer(arrays or b"", dtype=np.uint8)
    if len(raw) != int(sizes.sum()):
        raise ValueError(f"packed alternatives hold {len(raw)} bytes, their counts say {int(sizes.sum())}")
    first = np.repeat(starts + _ARRAY_HEADER, counts)
    element = np.arange(len(first)) - np.repeat(np.cumsum(counts) - counts, counts)
    at = first + _ELEMENT * element
    lengths = raw[at[:, None] + np.arange(4)].view(">i4").ravel()
    if len(at) and (lengths != 8).any():
        raise ValueError("packed alternatives hold an element that is not one int8")
    hashes = raw[at[:, None] + np.arange(4, 12)].view(">i8").ravel().astype(np.int64)
    return np.repeat(rec["id"].astype(np.int64), counts), hashes


def _merged(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Inclusive ranges with overlaps joined: a chunk two blocks share is read once."""
    out: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def _block(block: int, skip: int, files: int, chunks: Sequence[tuple]) -> BlockHashes:
    """Positions skip .. skip + files - 1 of these chunks, back to back: a block may start or end
    inside a chunk, and an alternative belongs to it when its owner does."""
    joined = [b"".join(bytes(c[k] or b"") for c in chunks) for k in range(1, 6)]
    ids, hashes = _int64s(joined[0]), _int64s(joined[1])
    ties = np.frombuffer(joined[2], dtype=">i4").astype(np.int64)
    alt_ids, alt_hashes = _alternatives(joined[3], joined[4])
    if len(ids) != sum(c[0] for c in chunks) or len(hashes) != len(ids) or len(ties) != len(ids):
        raise ValueError(f"compare block {block}: its chunks' ids, hashes and ties do not line up")
    if skip == 0 and files == len(ids):
        return BlockHashes(block, ids, hashes, alt_ids, alt_hashes, ties)
    cut = slice(skip, skip + files)
    ids, hashes, ties = ids[cut], hashes[cut], ties[cut]
    if len(ids) != files:
        raise ValueError(f"compare block {block}: {files} files expected, its chunks hold {len(ids)}")
    mine = np.isin(alt_ids, ids)
    return BlockHashes(block, ids, hashes, alt_ids[mine], alt_hashes[mine], ties)


class CompareClusterMethods:
    """Needs the host class's _tx(): a cursor inside one transaction."""

    def _tx(self) -> AbstractContextManager[psycopg.Cursor]:  # pragma: no cover - provided by host
        raise NotImplementedError

    # -- compare --------------------------------------------------------------------------

    @retrying()
    def compare_blocks(self, job_id: int, blocks: Sequence[int]) -> dict[int, BlockHashes]:
        """The files of these blocks, read from the chunks they span (each chunk read once)."""
        args = {"job_id": job_id, "blocks": sorted(set(blocks))}
        with self._tx() as cur:
            cur.execute(q("compare_block_spans"), args)
            spans = cur.fetchall()
            ranges = _merged([(first, last) for *_, first, last, _ in spans])
            # Binary results: bytea arrives as it is, not as hex text to decode.
            cur.execute(q("hash_chunks"), {"job_id": job_id, "firsts": [r[0] for r in ranges],
                                           "lasts": [r[1] for r in ranges]}, binary=True)
            chunks = sorted(cur.fetchall())
        numbers = [c[0] for c in chunks]
        return {block: _block(block, lo - start, files,
                              [c[1:] for c in chunks[bisect_left(numbers, first):bisect_right(numbers, last)]])
                for block, lo, files, first, last, start in spans}

    @retrying()
    def finish_compare_claim(
        self, claim: Claim, job_id: int, work_ids: Sequence[int],
        pair_work: np.ndarray, a: np.ndarray, b: np.ndarray, d: np.ndarray,
    ) -> list[int]:
        """Finish the rows this claim still holds and store their pairs; returns the rows finished.

        pair_work[k] is the work row pair k came from: pairs of a row whose lease was lost (and
        that someone else now owns) are left to that owner.
        """
        with self._tx() as cur:
            cur.execute(q("finish_works"), {"work_ids": list(work_ids), "claim": claim.token})
            held = [r[0] for r in cur.fetchall()]
            keep = np.isin(pair_work, np.array(held, dtype=np.int64))
            if keep.any():
                with cur.copy(q("copy_pairs")) as copy:
                    copy.write(copy_lines((job_id, *row) for row in zip(
                        a[keep].tolist(), b[keep].tolist(), d[keep].tolist())))
        return held

    @retrying()
    def seen_files(self, ids: Sequence[int]) -> dict[int, SeenFile]:
        """Canonical hash and thumbnail of each of these files (neardup.verify reads them)."""
        with self._tx() as cur:
            cur.execute(q("seen_files"), {"ids": bigint_array(sorted(set(ids)))}, binary=True)
            return {i: SeenFile(h, None if t is None else bytes(t)) for i, h, t in cur.fetchall()}

    @retrying()
    def extend_lease(self, claim: Claim, work_id: int, lease_s: float) -> bool:
        with self._tx() as cur:
            cur.execute(q("extend_lease"), {"work_id": work_id, "claim": claim.token, "lease_s": lease_s})
            return cur.fetchone() is not None

    # -- cluster --------------------------------------------------------------------------

    @retrying()
    def job_pairs(self, job_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The job's pairs: (lower ids, higher ids, distances)."""
        with self._tx() as cur:
            cur.execute(q("job_pairs"), {"job_id": job_id})
            rows = cur.fetchall()
        return tuple(np.fromiter((r[k] for r in rows), dtype=np.int64, count=len(rows))  # type: ignore[return-value]
                     for k in range(3))

    @retrying()
    def verified_pairs(self, job_id: int, first: int, last: int, threshold: int) -> list[tuple[int, int]]:
        """Pairs of components first..last kept by verification (past the threshold), as (id, id)."""
        with self._tx() as cur:
            cur.execute(q("verified_pairs"), {"job_id": job_id, "first": first, "last": last,
                                              "threshold": threshold})
            return [(a, b) for a, b in cur.fetchall()]

    @retrying()
    def finish_components(
        self, claim: Claim, row: WorkRow, ids: np.ndarray, components: np.ndarray,
        batches: Sequence[tuple[int, int, int]],
    ) -> bool:
        """Label files with their component and make the phase's rows: (units, first, last)."""
        with self._tx() as cur:
            cur.execute(q("finish_work"), {"work_id": row.id, "claim": claim.token})
            if cur.fetchone() is None:
                return False
            job = {"job_id": row.job_id}
            if len(ids):
                cur.execute(q("set_components"), {
                    **job, "ids": ids.tolist(), "components": components.tolist()})
            if batches:
                units, firsts, lasts = zip(*batches)
                cur.execute(q("make_cluster_work"), {
                    **job, "units": list(units), "firsts": list(firsts), "lasts": list(lasts)})
        return True

    @retrying()
    def component_members(self, job_id: int, first: int, last: int) -> list[Member]:
        with self._tx() as cur:
            cur.execute(q("component_members"), {"job_id": job_id, "first": first, "last": last})
            return [Member(c, i, h, tuple(alts or ()), px, size, mtime, path)
                    for c, i, h, alts, px, size, mtime, path in cur.fetchall()]

    @retrying()
    def file_members(self, ids: np.ndarray, components: np.ndarray) -> list[Member]:
        """The files of these ids as members of their components, ordered as component_members."""
        by_id = np.argsort(ids, kind="stable")
        with self._tx() as cur:
            cur.execute(q("probes_only"))
            cur.execute(q("file_members"), {"ids": bigint_array(ids[by_id].tolist())}, binary=True)
            rows = cur.fetchall()  # in id order
        if len(rows) != len(ids):
            raise LookupError(f"{len(ids) - len(rows)} of {len(ids)} paired files are missing")
        order = np.lexsort((ids[by_id], components[by_id])).tolist()
        labels = components[by_id].tolist()
        return [Member(labels[k], i, h, tuple(alts or ()), px, size, mtime, path)
                for k, (i, h, alts, px, size, mtime, path) in ((k, rows[k]) for k in order)]

    @retrying()
    def finish_cluster_work(self, claim: Claim, row: WorkRow, groups: Sequence[DecidedGroup]) -> bool:
        """Store the groups decided in the row's range of components, for finalize to number."""
        return self._finish_with_groups(
            claim, row, [(row.job_id, g.keeper, list(g.members), g.reason) for g in groups],
            "copy_cluster_groups")

    @retrying()
    def finish_cluster_whole(self, claim: Claim, row: WorkRow, groups: Sequence[DecidedGroup]) -> bool:
        """The first row decided every group itself: they go straight to dup_group, numbered, and
        the phase makes no other row (so finalize has none either)."""
        return self._finish_with_groups(
            claim, row, [(row.job_id, min(g.members), g.keeper, len(g.members), sorted(g.members), g.reason)
                         for g in groups], "copy_groups")

    def _finish_with_groups(self, claim: Claim, row: WorkRow, records: Sequence[Sequence[object]],
                            query: str) -> bool:
        with self._tx() as cur:
            cur.execute(q("finish_work"), {"work_id": row.id, "claim": claim.token})
            if cur.fetchone() is None:
                return False
            if records:
                with cur.copy(q(query)) as copy:
                    copy.write(copy_lines(records))
        return True

    @retrying()
    def job_file_ids(self, job_id: int) -> np.ndarray:
        """The job's file ids in path order."""
        with self._tx() as cur:
            cur.execute(q("job_file_ids"), {"job_id": job_id})
            return np.array([r[0] for r in cur.fetchall()], dtype=np.int64)

    # -- checking -------------------------------------------------------------------------

    @retrying()
    def phase_seconds(self, job_id: int) -> dict[str, float | None]:
        with self._tx() as cur:
            cur.execute(q("job_phase_seconds"), {"job_id": job_id})
            return {phase: seconds for phase, seconds in cur.fetchall()}

    @retrying()
    def work_attempts(self, job_id: int) -> dict[str, tuple[int, int, int, int]]:
        """phase -> (rows, attempts in all, most attempts of one row, rows done)."""
        with self._tx() as cur:
            cur.execute(q("work_attempts"), {"job_id": job_id})
            return {phase: (rows, int(att), most, done) for phase, rows, att, most, done in cur.fetchall()}

