"""The subcommands behind `neardup`: each takes parsed args and returns an exit code."""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from neardup.cli import (INLINE_FILES, Exit, Fail, add_job_options, emit_json, env, flag, nonneg, stderr_console,
                         stdout_console)
from neardup.discovery import PathError, check_roots, iter_files
from neardup.live import ProgressDisplay, follow
from neardup.report import groups_csv, groups_json, print_summary, scan_json

if TYPE_CHECKING:
    from rich.console import Console

REFRESH_S = 0.5
REARM_S = 2.0


def register(sub: argparse._SubParsersAction) -> None:
    from neardup.cli import EXAMPLES

    p = sub.add_parser("scan", help="scan folders and print groups of near-duplicates",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_job_options(p)
    p.add_argument("--workers", type=nonneg, default=env("WORKERS", os.cpu_count() or 1, int),
                   help="local worker processes (default: CPUs; 0 = wait for a fleet)")
    p.add_argument("--inline-files", type=nonneg, default=env("INLINE_FILES", INLINE_FILES, int),
                   help=f"with at most this many files to decode, hash them in this process instead of "
                        f"starting workers (default {INLINE_FILES}; 0: workers decode every file)")
    p.add_argument("--json", action="store_true", default=flag("JSON"), help="print one JSON object")
    p.set_defaults(run=scan)

    p = sub.add_parser("submit", help="enqueue a scan and print its job id")
    add_job_options(p)
    p.set_defaults(run=submit)

    p = sub.add_parser("groups", help="the groups of a finished job")
    p.add_argument("job", type=int)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", default=flag("JSON"))
    fmt.add_argument("--csv", action="store_true", default=flag("CSV"))
    p.set_defaults(run=groups)


def connect() -> str:
    """Resolve and check the database, apply migrations, and make it the workers' DATABASE_URL."""
    from db.connect import DatabaseUnreachable, reachable, resolve_url
    from db.migrate import upgrade

    try:
        url = resolve_url()
        with reachable(url) as conn:
            upgrade(url, conn)  # one connection checks both: each costs a server process
    except DatabaseUnreachable as e:
        raise Fail(str(e), Exit.DATABASE) from None
    os.environ["DATABASE_URL"] = url
    return url


def repository():  # type: ignore[no-untyped-def]
    """The process's repository, without importing the broker (a rescan never needs it)."""
    from db.connect import shared_url
    from db.repository import shared_repository

    return shared_repository(shared_url())


def job_or_fail(job: int):  # type: ignore[no-untyped-def]
    progress = repository().progress(job)
    if progress is None:
        raise Fail(f"job {job}: no such job", Exit.USAGE)
    return progress


def hash_spec(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from neardup.hashspec import HashSpec

    try:
        return HashSpec(args.hash, args.hash_size, not args.no_rotations)
    except ValueError as e:
        raise Fail(f"--hash {args.hash} --hash-size {args.hash_size}: {e}", Exit.USAGE) from None


class Interrupted(KeyboardInterrupt):
    """A Ctrl-C already dealt with: the job was cancelled (or left to its fleet), the user told."""


def verify_options(bits: int | None) -> dict[str, Any]:
    """JobOptions for --verify-up-to (the bits given, else the tiers by job size) and for the
    orientations a job compares (every one when it is small)."""
    from neardup.hashspec import ALL_TURNS_UP_TO, VERIFY_BY_SIZE

    tiers = {"verify_up_to": bits} if bits is not None else {"verify_tiers": VERIFY_BY_SIZE}
    return {**tiers, "all_turns_up_to": ALL_TURNS_UP_TO}


def submit_job(args: argparse.Namespace, on_connected: Callable[[str], object] = lambda url: None,
               kick: bool = True, on_job: Callable[[int], object] = lambda job_id: None) -> int:
    """Check the arguments, connect, walk the roots and submit; on_connected(url) runs before the
    walk, on_job(id) as soon as the job's id is known (before its commit).

    kick=False leaves the tickets to see_through, which first tries to finish a rescan in this
    process: then the broker is never imported.
    """
    from db.repository import JobOptions, NewFile

    spec = hash_spec(args)
    try:
        roots = check_roots(args.paths)
    except PathError as e:
        raise Fail(str(e), Exit.USAGE) from None
    on_connected(connect())
    walk_errors: list[tuple[str, str]] = []

    def files() -> Iterator[NewFile]:
        for f in iter_files(roots, walk_errors):
            yield NewFile(f.path, f.size, f.mtime)
        for path, reason in walk_errors:
            yield NewFile(path, 0, 0.0, reason)

    opts = JobOptions(threshold=args.threshold, block_size=args.block_size,
                      batch_size=args.batch_size, lease_s=args.lease, max_attempts=args.max_attempts,
                      hash_algo=spec.algo, hash_size=spec.size, rotations=spec.rotations,
                      hash_kind=spec.kind, reuse=not args.rehash,
                      **verify_options(args.verify_up_to))
    job_id = repository().submit(roots, files(), opts, on_job=on_job)
    if kick:
        try:
            kick_job(job_id)
        except KeyboardInterrupt:
            # The job exists but its id was never shown: leave it cancelled and say how to go on.
            interrupted(job_id, 1, stderr_console())
            raise Interrupted from None
    return job_id


def kick_job(job_id: int) -> None:
    """Tickets for the job's phase (a hash phase with nothing to decode moves on first), and a
    ticking monitor."""
    import actors
    from actors.monitor_jobs import step_job

    settings = repository().job_settings(job_id)
    if settings is not None:
        step_job(job_id, settings.phase, force_kick=True)
    actors.arm_monitor()


def submit(args: argparse.Namespace) -> int:
    print(submit_job(args))
    return Exit.OK


def scan(args: argparse.Namespace) -> int:
    created: list[int] = []
    try:
        job_id = submit_job(args, kick=False, on_job=created.append)
        return run_local(job_id, args.workers, args.json, args.inline_files)
    except Interrupted:
        return Exit.INTERRUPTED
    except KeyboardInterrupt:
        # Between the submit's commit and run_local: the job exists, nobody has cancelled it yet.
        # Before the commit (the walk, say) it rolled back and there is nothing to cancel.
        if created and repository().progress(created[0]) is not None:
            interrupted(created[0], args.workers, stderr_console())
        return Exit.INTERRUPTED


def run_local(job_id: int, count: int, as_json: bool, inline_files: int = INLINE_FILES) -> int:
    """Work the job with `count` local workers (0: a fleet works it) while showing its progress."""
    try:
        # With --json nothing shows progress: the console is made only if there is something to say.
        console = None if as_json else stderr_console()
        return see_through(job_id, count, console, live=console is not None and console.is_terminal,
                           report=lambda progress: finish(job_id, progress, as_json), inline_files=inline_files)
    except Interrupted:
        return Exit.INTERRUPTED
    except KeyboardInterrupt:
        interrupted(job_id, count, stderr_console())  # before see_through could see to it
        return Exit.INTERRUPTED


def run_job(args: argparse.Namespace, console: Console, live: bool):  # type: ignore[no-untyped-def]
    """Submit a job and see it through; (job id, final progress). For eval and benchmarks."""
    job_id = submit_job(args, kick=False)
    return job_id, see_through(job_id, args.workers, console, live)


def see_through(job_id: int, count: int, console: Console | None, live: bool,
                report: Callable[[Any], Any] = lambda progress: progress,
                inline_files: int = INLINE_FILES) -> Any:
    """report(the job's final progress). A job with nothing or little to decode (a rescan, a small
    folder) is finished in this process: starting workers would cost more than the whole job.
    Otherwise its tickets are sent (submit_job left them) and workers see it through; report runs
    as soon as the job ends, while the workers wind down (a worker takes seconds to stop)."""
    from neardup.workers import WorkerError

    over = False
    try:
        # Imports inside: a Ctrl-C while they load must cancel the job like any other.
        from db.embedded import data_home
        from neardup.inline import finish_inline
        from neardup.workers import LocalWorkers

        if count and finish_inline(repository(), job_id, inline_files):
            progress = repository().progress(job_id)
            if progress.finished:
                over = True
                return report(progress)
        kick_job(job_id)
        console = stderr_console() if console is None else console
        with LocalWorkers(count, os.environ["DATABASE_URL"], data_home() / "logs") as workers:
            try:
                progress = wait(job_id, workers, console, live=live)
            except KeyboardInterrupt:
                # Cancel while the workers still run, so they stop claiming before they are stopped.
                interrupted(job_id, workers.count, console)
                raise Interrupted from None
            workers.request_stop()
            over = True  # a Ctrl-C from here on only cuts short the wait for the workers
            result = report(progress)
            sys.stdout.flush()  # the results show now, not when the workers are gone
            return result
    except Interrupted:
        raise
    except KeyboardInterrupt:
        # Ctrl-C before the workers were up (or while they started) must cancel all the same.
        if not over:
            interrupted(job_id, count, stderr_console() if console is None else console)
        raise Interrupted from None
    except WorkerError as e:
        raise Fail(f"local worker: {e}", Exit.DATABASE) from None


def interrupted(job_id: int, local_workers: int, console: Console) -> None:
    """Ctrl-C: with local workers the job is cancelled (its finished work kept) before they stop."""
    from db.control import JobControl

    if local_workers == 0:
        console.print(f"stopped watching; job {job_id} goes on with the fleet: "
                      f"`neardup watch {job_id}` shows it, `neardup cancel {job_id}` stops it")
        return
    if JobControl(repository()).cancel(job_id) is None:
        console.print(f"interrupted: job {job_id} had already ended (`neardup status {job_id}`)")
        return
    console.print(f"interrupted: job {job_id} is cancelled, its finished work kept; "
                  f"`neardup resume {job_id}` continues it where it stopped")


def wait(job_id: int, workers, console: Console, live: bool):  # type: ignore[no-untyped-def]
    from actors import arm_monitor

    repo = repository()
    rearm_at = 0.0
    if workers.count == 0:
        console.print(f"job {job_id}: waiting for workers (`DATABASE_URL=... dramatiq actors`)")

    def between() -> None:
        nonlocal rearm_at
        for note in workers.supervise():
            console.print(note)
        if time.monotonic() >= rearm_at:
            arm_monitor()
            rearm_at = time.monotonic() + REARM_S

    with ProgressDisplay(console, live) as display:
        return follow(lambda: repo.progress(job_id), os.environ["DATABASE_URL"], job_id,
                      display.update, refresh_s=REFRESH_S, between=between)


def finish(job_id: int, progress, as_json: bool) -> int:  # type: ignore[no-untyped-def]
    repo = repository()
    failed = repo.failed_files(job_id)
    groups = repo.groups(job_id)
    files = sum(ph.total for ph in progress.phases if ph.name == "hash")
    if as_json:
        emit_json(scan_json(progress, files, failed, groups, repo.pairs(job_id)))
    else:
        print_summary(stdout_console(), progress, files, failed, groups)
    return Exit.OK if progress.status == "completed" else Exit.JOB_FAILED


def groups(args: argparse.Namespace) -> int:
    connect()
    progress = job_or_fail(args.job)
    if progress.status != "completed":
        raise Fail(f"job {args.job}: not completed ({progress.status}); groups are made at the end",
                   Exit.JOB_FAILED)
    repo = repository()
    found = repo.groups(args.job)
    if args.json:
        emit_json(groups_json(found, repo.pairs(args.job)))
    elif args.csv:
        sys.stdout.write(groups_csv(found))
    else:
        print_summary(stdout_console(), progress,
                      sum(ph.total for ph in progress.phases if ph.name == "hash"),
                      repo.failed_files(args.job), found)
    return Exit.OK
