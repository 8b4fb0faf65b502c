"""A cluster row: connected components, chains split, groups and keepers decided.

The phase's first row finds the connected components of the job's pair graph. When they are few and
small it splits them and stores the numbered groups itself, and the phase (and finalize) has no
other row. Otherwise it makes the phase's other rows: a large component alone, small ones batched,
each row carrying its number of files. Those rows split chained components (neardup.clustering) and
pick each group's keeper. HDBSCAN on a big component can hold the GIL for seconds, so big
components are split in a child process while this thread waits (a worker's broker heartbeat goes
on) and keeps the row's lease alive.
"""
from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import groupby

import numpy as np

from db.models import Claim, DecidedGroup, JobSettings, Member, SeenFile, WorkRow
from db.repository import Repository
from neardup.clustering import batch_components, components, split_hashes
from neardup.grouping import keep
from neardup.orientation import dihedral_hashes
from neardup.verify import verified

log = logging.getLogger("neardup.worker")

# A component of this many files is a row of its own and is split in the child process.
ALONE_FROM = 256
# Small components are batched into rows of about this many files.
BATCH_FILES = 1024
# Up to this many files in components, none of them large, the first row decides every group.
WHOLE_UP_TO = 4 * BATCH_FILES
# Most thumbnail pairs a component's second look correlates (_second_look): ~11 us each.
SECOND_LOOK_PAIRS = 65_536
# The second look's reach in bits: a caption on a dark photo was 19-23 from its copies, where
# unrelated photos are mostly 24 and more apart (and the correlation floor was measured on
# candidates up to 20).
SECOND_LOOK_BITS = 24

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()  # a worker's threads share one child


def _child_pool() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            # spawn, not fork: this process has threads and open connections a fork would copy.
            _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return _pool


def _drop_child_pool(broken: ProcessPoolExecutor) -> None:
    global _pool
    with _pool_lock:
        if _pool is broken:
            _pool = None


def find_components(repo: Repository, claim: Claim, row: WorkRow, settings: JobSettings) -> int:
    """The phase's first row; returns how many rows it made.

    When every component is small and they hold WHOLE_UP_TO files in all, this row decides the
    groups itself: the rows it would make cost more in round trips and tickets than the work.
    """
    a, b, d = repo.job_pairs(row.job_id)
    ids, labels, sizes = components(a, b)
    if len(ids) <= WHOLE_UP_TO and (not len(sizes) or sizes.max() < ALONE_FROM):
        far = d > settings.threshold
        confirmed = set(zip(a[far].tolist(), b[far].tolist()))
        repo.finish_cluster_whole(claim, row, _decide_all(repo, claim, row, settings,
                                                          repo.file_members(ids, labels), confirmed))
        return 0
    batches = list(batch_components(sizes.tolist(), ALONE_FROM, BATCH_FILES))
    return len(batches) if repo.finish_components(claim, row, ids, labels, batches) else 0


def _wait_alive(repo: Repository, claim: Claim, row: WorkRow, settings: JobSettings,
                future: Future[list[list[int]]]) -> list[list[int]]:
    every = max(0.5, settings.lease_s / 3)
    while True:
        try:
            return future.result(timeout=every)
        except TimeoutError:
            if not repo.extend_lease(claim, row.id, settings.lease_s):
                future.cancel()
                raise RuntimeError("lease lost while clustering") from None


def _decide_all(repo: Repository, claim: Claim, row: WorkRow, settings: JobSettings,
                everyone: Iterable[Member], confirmed: set[tuple[int, int]]) -> list[DecidedGroup]:
    """The groups of every component of the row's members (ordered by component). Confirmed pairs
    are sorted to their components once, and the thumbnails of the components that have any are
    read once for all of them (_second_look)."""
    parts = [list(c) for _, c in groupby(everyone, key=lambda m: m.component)]
    at = {m.id: (p, k) for p, members in enumerate(parts) for k, m in enumerate(members)}
    linked: list[list[tuple[int, int]]] = [[] for _ in parts]
    for x, y in confirmed:
        if x in at and y in at and at[x][0] == at[y][0]:
            linked[at[x][0]].append((at[x][1], at[y][1]))
    looked = [m.id for p, members in enumerate(parts) if linked[p] and len(members) <= SECOND_LOOK_PAIRS
              for m in members]
    seen = repo.seen_files(looked) if looked else {}
    decided: list[DecidedGroup] = []
    for members, pairs in zip(parts, linked):
        if pairs:
            pairs = pairs + _second_look(members, pairs, seen, settings)
        decided.extend(decide(members, _split(repo, claim, row, settings, members, pairs)))
    return decided


def _second_look(members: Sequence[Member], linked: list[tuple[int, int]], seen: Mapping[int, SeenFile],
                 settings: JobSettings) -> list[tuple[int, int]]:
    """More confirmed pairs (member indices): each member of a confirmed pair against the other
    members of its component its hash is past the threshold from but within SECOND_LOOK_BITS of.
    An edit can move a hash far though the picture stays (a caption on a dark photo, whose low
    frequencies are weak: 19-23 bits from each of its photo's copies, all of whose thumbnails it
    matches at 0.97-0.99); confirmed with the few within verify_up_to, it was close to too few of
    them to stay in their group."""
    flagged = sorted({k for pair in linked for k in pair})
    if len(flagged) * len(members) > SECOND_LOOK_PAIRS:
        flagged = flagged[:SECOND_LOOK_PAIRS // len(members)]
    if not flagged:
        return []
    hashes = np.array([m.hash for m in members], dtype=np.int64)
    # Distances in every orientation, as clustering reads them (sign hashes only reach here).
    turned = dihedral_hashes(hashes)
    dist = np.bitwise_count(turned[:, :, None] ^ turned[0][None, None, flagged]).min(axis=0)  # (members, flagged)
    far = (dist > settings.threshold) & (dist <= SECOND_LOOK_BITS)
    ys, ks = np.nonzero(far)
    pairs = sorted({(min(x, y), max(x, y)) for y, k in zip(ys.tolist(), ks.tolist()) for x in [flagged[k]]
                    if x != y} - set(linked))
    if not pairs:
        return []
    ids = np.array([m.id for m in members], dtype=np.int64)
    at = np.array(pairs, dtype=np.int64)
    # The component's own thumbnails only: verified() stacks all it is given.
    ok = verified(ids[at[:, 0]], ids[at[:, 1]], {m.id: seen[m.id] for m in members if m.id in seen},
                  zoom=settings.all_turns)
    return [pairs[k] for k in np.flatnonzero(ok).tolist()]


def _split(repo: Repository, claim: Claim, row: WorkRow, settings: JobSettings, members: Sequence[Member],
           linked: list[tuple[int, int]]) -> list[list[int]]:
    """split_hashes on a component; linked: its confirmed pairs, as member indices."""
    ids = [m.id for m in members]
    hashes = [m.hash for m in members]
    alts = [m.alt_hashes for m in members]
    if len(members) < ALONE_FROM:
        return split_hashes(ids, hashes, alts, settings.threshold, settings.sign_hashes, linked)
    pool = _child_pool()
    try:
        future = pool.submit(split_hashes, ids, hashes, alts, settings.threshold, settings.sign_hashes, linked)
        return _wait_alive(repo, claim, row, settings, future)
    except BrokenProcessPool:
        _drop_child_pool(pool)  # the child died: a fresh one next time, and this row is retried
        raise


def decide(members: Sequence[Member], groups: Sequence[Sequence[int]]) -> list[DecidedGroup]:
    decided = []
    for group in groups:
        chosen = [members[i] for i in group]
        keeper, reason = keep(chosen)
        decided.append(DecidedGroup(keeper.id, tuple(sorted(m.id for m in chosen)), reason))
    return decided


def cluster_row(repo: Repository, claim: Claim, row: WorkRow, settings: JobSettings) -> int:
    """Work one cluster row; returns the rows it made (the first row only), for tickets to cover."""
    if row.block_a is None:
        return find_components(repo, claim, row, settings)
    everyone = repo.component_members(row.job_id, row.block_a, row.block_b)
    confirmed: set[tuple[int, int]] = set()
    if settings.verify_up_to > settings.threshold:
        confirmed = set(repo.verified_pairs(row.job_id, row.block_a, row.block_b, settings.threshold))
    repo.finish_cluster_work(claim, row, _decide_all(repo, claim, row, settings, everyone, confirmed))
    return 0
