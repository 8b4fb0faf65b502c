"""Rows as frozen dataclasses: what the repository hands out."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class JobSettings:
    id: int
    status: str
    phase: str
    threshold: int
    block_size: int
    fanout: int
    max_attempts: int
    lease_s: float
    sign_hashes: bool = False  # pHash with rotations: clustering compares them in all 8 orientations
    # Candidates past the threshold up to this many bits are kept when their thumbnails confirm
    # them (neardup.verify); the threshold itself when the job verifies nothing.
    verify_up_to: int = 0
    # A small job (neardup.hashspec.ALL_TURNS_UP_TO): compare rows also meet every image's hash in
    # its 7 other orientations, a little within the threshold, and verification gives near misses a
    # second look with one thumbnail zoomed (neardup.verify.ZOOM).
    all_turns: bool = False

    @property
    def candidates_up_to(self) -> int:
        return max(self.threshold, self.verify_up_to)


@dataclass(frozen=True)
class WorkRow:
    id: int
    job_id: int
    phase: str
    units: int
    block_a: int | None
    block_b: int | None
    attempts: int


@dataclass(frozen=True)
class Claim:
    """Rows claimed together under one claim token."""

    token: str
    rows: tuple[WorkRow, ...]


@dataclass(frozen=True)
class FileToHash:
    id: int
    path: str
    path_raw: bytes | None

    @property
    def os_path(self) -> str | bytes:
        return self.path_raw if self.path_raw is not None else self.path


@dataclass(frozen=True)
class HashResult:
    file_id: int
    hash: int | None
    width: int | None
    height: int | None
    error: str | None
    alternatives: tuple[int, ...] = ()
    digest: bytes | None = None
    # neardup.orientation.pack_ties. None (unknown) stores NULL: near every wall, the safe side.
    ties: int | None = None
    # Taken from a byte-identical file rather than decoded: counted as skipped work.
    copied: bool = False
    thumb: bytes | None = None  # neardup.verify's thumbnail

    @property
    def status(self) -> str:
        return "failed" if self.error else "skipped" if self.copied else "hashed"


@dataclass(frozen=True)
class KnownContent:
    """A stored outcome for some bytes: a hash (and alternatives), or the reason they failed."""

    status: str
    hash: int | None
    alternatives: tuple[int, ...]
    width: int | None
    height: int | None
    error: str | None
    ties: int | None = None  # as HashResult.ties
    thumb: bytes | None = None


@dataclass(frozen=True)
class SeenFile:
    """What verification reads of a file: its canonical hash and thumbnail (None: stored without)."""

    hash: int
    thumb: bytes | None


@dataclass(frozen=True)
class PhaseProgress:
    name: str
    status: str
    total: int
    done: int
    failed: int
    skipped: int
    cancelled: int
    fraction: float
    pending: int = 0
    running: int = 0
    rate: float | None = None  # units (files, image pairs, ...) per second
    eta_s: float | None = None

    @property
    def percent(self) -> float:
        # Floored, like the overall figure: 99.996 % of the work is not shown as 100.
        return int(round(10000 * self.fraction, 6)) / 100

    @property
    def finished_units(self) -> int:
        return self.done + self.failed + self.skipped


@dataclass(frozen=True)
class JobProgress:
    job: int
    status: str
    phase: str
    percent: float
    error: str | None
    phases: tuple[PhaseProgress, ...]
    elapsed_s: float | None = None
    eta_s: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class Event:
    id: int
    job: int
    at: datetime
    kind: str
    phase: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class Resumed:
    """What `resume` did: the job's phase, whether it was cancelled, units given back to pending."""

    job: int
    phase: str
    was_cancelled: bool
    requeued_units: int


@dataclass(frozen=True)
class Group:
    keeper: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class PairPaths:
    a: str
    b: str
    distance: int


@dataclass(frozen=True)
class FailedFile:
    path: str
    error: str


def job_progress_from_row(row: tuple[Any, ...]) -> JobProgress:
    """A row of the job_progress view (job_id, status, phase, percent, error, elapsed_s, eta_s, phases)."""
    job, status, phase, percent, error, elapsed_s, eta_s, phases = row
    return JobProgress(job, status, phase, float(percent), error, tuple(
        PhaseProgress(p["name"], p["status"], p["total"], p["done"], p["failed"], p["skipped"],
                      p["cancelled"], float(p["fraction"]), p["pending"], p["running"], p["rate"],
                      p["eta_s"])
        for p in phases or ()), elapsed_s, eta_s)


@dataclass(frozen=True)
class HashedFile:
    """A file that arrives already hashed: the stored form (canonical hash and alternatives)."""

    path: str
    size: int
    mtime: float
    hash: int
    alt_hashes: tuple[int, ...] = ()
    width: int | None = None
    height: int | None = None
    ties: int | None = None  # None: near every wall (as hashes stored before ties were)


@dataclass(frozen=True)
class BlockHashes:
    """One compare block, read from the hash chunks it spans."""

    block: int
    ids: np.ndarray  # int64 file ids, in chunk order (HashBlock sorts them)
    hashes: np.ndarray  # int64 canonical hashes, one per id
    alt_ids: np.ndarray  # int64 owner id of each alternative hash
    alt_hashes: np.ndarray  # int64
    ties: np.ndarray | None = None  # int64 ties word per id; None: packed before ties were


@dataclass(frozen=True)
class Member:
    """A file of a component, with what clustering and the keeper choice need."""

    component: int
    id: int
    hash: int
    alt_hashes: tuple[int, ...]
    pixels: int
    size: int
    mtime: float
    path: str


@dataclass(frozen=True)
class DecidedGroup:
    keeper: int
    members: tuple[int, ...]  # ascending, keeper included
    reason: str


@dataclass(frozen=True)
class JobOptions:
    threshold: int = 10
    # Most files in a compare block (neardup.cli.BLOCK_SIZE, the CLI's default, says why).
    block_size: int = 32768
    batch_size: int = 32  # neardup.cli.BATCH_SIZE
    fanout: int = 16
    max_attempts: int = 3
    lease_s: float = 120.0
    hash_algo: str = "phash"
    hash_size: int = 8
    rotations: bool = True
    # Names the algorithm, size, library versions and orientation mode: only stored hashes of
    # this very kind are reused. None: reuse nothing (neither does a job submitted with reuse off).
    hash_kind: str | None = None
    reuse: bool = True
    # Pairs past the threshold up to this many bits are kept when thumbnails confirm them.
    verify_up_to: int = 0
    # When given, verify_up_to instead comes from the job's size: the bits of the first (most files,
    # bits) tier that holds its file count, else the last (neardup.hashspec.VERIFY_BY_SIZE).
    verify_tiers: tuple[tuple[int, int], ...] = ()
    # A job of at most this many files compares every orientation at the threshold (JobSettings.all_turns).
    all_turns_up_to: int = 0

    def verify_bits(self, n_files: int) -> int:
        for most, bits in self.verify_tiers:
            if n_files <= most:
                return bits
        return self.verify_tiers[-1][1] if self.verify_tiers else self.verify_up_to


@dataclass(frozen=True)
class NewFile:
    path: str
    size: int
    mtime: float
    error: str | None = None
