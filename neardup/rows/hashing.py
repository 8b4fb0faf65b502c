"""A hash row: its files read for their content digest, then decoded and hashed.

Contents already known (a byte-identical file of this job, or of an earlier job hashed the same
way) are copied, not decoded, and each remaining content is decoded once however many files hold
it. The hash_files actor runs these rows; the CLI runs a handful itself (neardup.inline).
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from db.models import Claim, FileToHash, HashResult, JobSettings, KnownContent, WorkRow
from db.repository import Repository
from neardup.hashspec import HashSpec
from neardup.rows.loop import one_line

if TYPE_CHECKING:
    from neardup.hashing import Content


class KindMismatch(RuntimeError):
    """This worker's libraries would hash differently from what the job was submitted for."""


@lru_cache(maxsize=64)
def job_spec(repo: Repository, job_id: int) -> tuple[HashSpec, bool]:
    """The job's hash spec, and whether other jobs' hashes may serve it; one query per job and process."""
    found = repo.job_hashing(job_id)
    algo, size, rotations, reuse, expected = found if found else ("phash", 8, True, True, None)
    spec = HashSpec(algo, size, rotations)
    if expected is not None and spec.kind != expected:
        # Released, the row goes to another worker; if none can, its files fail with this reason.
        raise KindMismatch(f"this worker hashes as {spec.kind}, the job wants {expected}: "
                           "install the same library versions on every worker")
    return spec, reuse


def guarded(call, *args):  # type: ignore[no-untyped-def]
    """(value, None) or (None, one-line reason): one file's failure is never the batch's."""
    # Imported here: the CLI imports this module for any rescan, and most rescans never decode.
    from neardup.hashing import HashError

    try:
        return call(*args), None
    except HashError as e:
        return None, str(e)
    except Exception as e:  # noqa: BLE001 - any decoder surprise is this file's failure, not the job's
        return None, f"unexpected error: {one_line(e)}"


def decode(f: FileToHash, content: Content, spec: HashSpec) -> KnownContent:
    from neardup.hashing import hash_content

    info, error = guarded(lambda: hash_content(f.os_path, content, spec, draft=True))
    if error is not None:
        return KnownContent("failed", None, (), None, None, error)
    return KnownContent("hashed", info.hash, info.alternatives, info.width, info.height, None, info.ties,
                        info.thumb)


def result(f: FileToHash, digest: bytes | None, content: KnownContent, copied: bool) -> HashResult:
    return HashResult(f.id, content.hash, content.width, content.height, content.error,
                      content.alternatives, digest, content.ties, copied and content.error is None,
                      content.thumb)


def hash_batch(repo: Repository, job_id: int, files: Sequence[FileToHash], spec: HashSpec,
               reuse: bool = True) -> list[HashResult]:
    from neardup.hashing import read_content

    contents = {f.id: guarded(read_content, f.os_path) for f in files}
    readable = {c.digest for c, error in contents.values() if error is None}
    known = repo.known_digests(job_id, spec.kind, sorted(readable), reuse) if readable else {}
    results = []
    for f in files:
        content, error = contents.pop(f.id)  # drop each file's bytes once it is done with
        if error is not None:
            results.append(HashResult(f.id, None, None, None, error))
            continue
        copied = content.digest in known
        if not copied:
            known[content.digest] = decode(f, content, spec)
        results.append(result(f, content.digest, known[content.digest], copied))
    return results


def hash_row(repo: Repository, claim: Claim, row: WorkRow, settings: JobSettings) -> None:
    spec, reuse = job_spec(repo, row.job_id)
    results = hash_batch(repo, row.job_id, repo.files_of_work(row.id), spec, reuse)
    repo.finish_hash_work(claim, row.id, results, spec.kind)
