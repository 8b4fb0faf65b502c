"""`neardup watch | events | jobs | cancel | resume`: following and steering jobs already submitted."""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from neardup.cli import Exit, Fail, emit_json, env, flag, nonneg, positive, stderr_console
from neardup.commands import connect, job_or_fail, kick_job, repository, run_local
from neardup.live import ProgressDisplay, follow, one_line, rate_eta, timing
from neardup.report import status_json

EXAMPLES = """\
examples:
  neardup watch 12                  live bars until job 12 ends; exits 0 if it completed
  neardup watch 12 --json           one JSON progress object per line, as it changes
  neardup events 12                 the job's event log (submitted, phases, failed files, ...)
  neardup events 12 --follow --json new events as JSON lines until the job ends
  neardup jobs --active             jobs still pending or running
  neardup cancel 12                 stop job 12: pending work cancelled, finished work kept
  neardup resume 12                 continue it with local workers where it stopped
  neardup resume 12 --detach        only give it back to the fleet
"""


def register(sub: argparse._SubParsersAction) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser("status", help="progress of a job")
    p.add_argument("job", type=int)
    p.add_argument("--json", action="store_true", default=flag("JSON"))
    p.set_defaults(run=status)

    p = sub.add_parser("watch", help="live progress of a job until it ends (exit code: the job's)",
                       epilog=EXAMPLES, formatter_class=fmt)
    p.add_argument("job", type=int)
    p.add_argument("--json", action="store_true", default=flag("JSON"),
                   help="print the progress as JSON lines instead of bars")
    p.set_defaults(run=watch)

    p = sub.add_parser("events", help="a job's event log", epilog=EXAMPLES, formatter_class=fmt)
    p.add_argument("job", type=int)
    p.add_argument("--follow", "-f", action="store_true", default=flag("FOLLOW"),
                   help="keep printing new events until the job ends")
    p.add_argument("--after", type=nonneg, default=0, metavar="ID", help="only events after this id")
    p.add_argument("--json", action="store_true", default=flag("JSON"), help="JSON lines, one per event")
    p.set_defaults(run=events)

    p = sub.add_parser("jobs", help="list jobs with their progress", epilog=EXAMPLES, formatter_class=fmt)
    p.add_argument("--active", action="store_true", default=flag("ACTIVE"),
                   help="only pending or running jobs")
    p.add_argument("--limit", type=positive, default=env("LIMIT", 20, int), help="at most this many (20)")
    p.add_argument("--json", action="store_true", default=flag("JSON"))
    p.set_defaults(run=jobs)

    p = sub.add_parser("cancel", help="stop a job, keeping its finished work", epilog=EXAMPLES,
                       formatter_class=fmt)
    p.add_argument("job", type=int)
    p.set_defaults(run=cancel)

    p = sub.add_parser("resume", help="continue a cancelled or interrupted job from its rows",
                       epilog=EXAMPLES, formatter_class=fmt)
    p.add_argument("job", type=int)
    p.add_argument("--workers", type=nonneg, default=env("WORKERS", os.cpu_count() or 1, int),
                   help="local worker processes (default: CPUs; 0 = wait for a fleet)")
    p.add_argument("--detach", action="store_true", default=flag("DETACH"),
                   help="give the job back to the workers and return at once")
    p.add_argument("--json", action="store_true", default=flag("JSON"), help="print one JSON object")
    p.set_defaults(run=resume)


def job_exit(status: str) -> int:
    return Exit.OK if status == "completed" else Exit.JOB_FAILED


def status(args: argparse.Namespace) -> int:
    connect()
    progress = job_or_fail(args.job)
    if args.json:
        emit_json(status_json(progress))
    else:
        print(f"job {progress.job}: {progress.status}, {progress.percent:.2f}%  {timing(progress)}"
              + (f" — {progress.error}" if progress.error else ""))
        for ph in progress.phases:
            print(f"  {ph.name:<9} {ph.status:<10} {ph.percent:6.2f}%  done {ph.done:,}  "
                  f"failed {ph.failed:,}  skipped {ph.skipped:,}  of {ph.total:,}  {rate_eta(ph)}".rstrip())
    return Exit.OK


def watch(args: argparse.Namespace) -> int:
    url = connect()
    job_or_fail(args.job)
    repo = repository()
    console = stderr_console()
    last: list[Any] = [None]

    def show_line(p) -> None:  # type: ignore[no-untyped-def]
        shown = json.dumps(status_json(p), ensure_ascii=False) if args.json else one_line(p)
        # Elapsed time and ETA change every read: print a line only when the work moved.
        key = (p.status, p.percent, tuple((ph.status, ph.finished_units) for ph in p.phases))
        if key != last[0]:
            last[0] = key
            print(shown, flush=True)

    live = not args.json and console.is_terminal
    try:
        with ProgressDisplay(console, live) as display:
            final = follow(lambda: repo.progress(args.job), url, args.job,
                           display.update if live else show_line, refresh_s=0.5 if live else 1.0)
    except KeyboardInterrupt:
        console.print(f"stopped watching; job {args.job} goes on (`neardup cancel {args.job}` stops it)")
        return Exit.INTERRUPTED
    if live:
        console.print(f"job {final.job} {final.status}  {timing(final)}"
                      + (f" — {final.error}" if final.error else ""))
    return job_exit(final.status)


def event_json(e) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {"id": e.id, "job": e.job, "at": e.at.isoformat(), "kind": e.kind, "phase": e.phase,
            "data": e.data}


def event_line(e) -> str:  # type: ignore[no-untyped-def]
    details = " ".join(f"{k}={v}" for k, v in e.data.items())
    return f"{e.id:>8}  {e.at:%Y-%m-%d %H:%M:%S}  {e.kind:<15} {e.phase or '-':<9} {details}".rstrip()


def events(args: argparse.Namespace) -> int:
    from db.events import EventLog, Listener

    url = connect()
    job_or_fail(args.job)
    log = EventLog(repository())
    after = args.after

    def drain() -> None:
        nonlocal after
        for e in log.all_after(args.job, after):
            print(json.dumps(event_json(e), ensure_ascii=False) if args.json else event_line(e), flush=True)
            after = e.id

    if not args.follow:
        drain()
        return Exit.OK
    try:
        with Listener(url).open() as listener:
            while True:
                # Status first: if the job had ended, every one of its events is already there.
                status = job_or_fail(args.job).status
                drain()
                if status in ("completed", "failed", "cancelled"):
                    return job_exit(status)
                listener.wait(args.job, 2.0)
    except KeyboardInterrupt:
        return Exit.INTERRUPTED


def jobs(args: argparse.Namespace) -> int:
    connect()
    found = repository().jobs(active_only=args.active, limit=args.limit)
    if args.json:
        emit_json([status_json(p) for p in found])
        return Exit.OK
    for p in found:
        print(one_line(p) if p.status == "running" else
              f"job {p.job} {p.status} {p.percent:.2f}%  {timing(p)}" + (f" — {p.error}" if p.error else ""))
    if not found:
        print("no active jobs" if args.active else "no jobs", file=sys.stderr)
    return Exit.OK


def cancel(args: argparse.Namespace) -> int:
    from db.control import JobControl

    connect()
    progress = job_or_fail(args.job)
    cancelled = JobControl(repository()).cancel(args.job)
    if cancelled is not None:
        print(f"job {args.job} cancelled at {progress.percent:.2f}% ({cancelled:,} units of work "
              f"not started); `neardup resume {args.job}` continues it")
        return Exit.OK
    status = JobControl(repository()).status(args.job)
    if status is not None and status[0] == "cancelled":
        print(f"job {args.job} was already cancelled")
        return Exit.OK
    raise Fail(f"job {args.job}: {status[0] if status else 'gone'}; there is nothing to cancel", Exit.USAGE)


def resume(args: argparse.Namespace) -> int:
    from db.control import JobControl

    connect()
    job_or_fail(args.job)
    resumed = JobControl(repository()).resume(args.job)
    if resumed is None:
        progress = job_or_fail(args.job)
        raise Fail(f"job {args.job}: {progress.status}; only a cancelled or interrupted job can be resumed",
                   Exit.USAGE)
    how = "was cancelled" if resumed.was_cancelled else "was interrupted"
    print(f"job {args.job} {how}; resumed in its {resumed.phase} phase "
          f"({resumed.requeued_units:,} units of work back to pending)", file=sys.stderr)
    if args.detach:
        kick_job(args.job)
        return Exit.OK
    return run_local(args.job, args.workers, args.json)  # which sends the tickets
