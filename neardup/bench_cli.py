"""`neardup bench progress`: how fast the progress view answers, and what watching costs a job.

Runs in a scratch database made for the run on the same server (dropped at the end), so the
figures are not mixed with real jobs and nothing is left behind.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from neardup.cli import Exit, Fail, emit_json, flag, positive

EXAMPLES = """\
examples:
  neardup bench progress                the progress view on 100,000 work rows; watching overhead
  neardup bench progress --json         the same as one JSON object
  neardup bench progress --watch-hz 20      a watcher ten times as eager as the live bars
"""


def register_bench(kinds: argparse._SubParsersAction) -> None:
    b = kinds.add_parser("progress", help="progress view speed and monitor+views overhead",
                         epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("--rows", type=positive, default=100_000, help="work rows of the synthetic job (100000)")
    b.add_argument("--photos", type=positive, default=2000, help="photos of the real job (2000)")
    b.add_argument("--workers", type=positive, default=2, help="local worker processes (2)")
    b.add_argument("--watch-hz", type=float, default=2.0,
                   help="progress reads per second in the watched run (2, as `neardup watch`)")
    b.add_argument("--json", action="store_true", default=flag("JSON"), help="print one JSON object")
    b.set_defaults(run=bench_progress)


def scratch_url(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def bench_progress(args: argparse.Namespace) -> int:
    import psycopg

    from db.connect import DatabaseUnreachable, check_reachable, resolve_url
    from db.migrate import upgrade

    try:
        url = resolve_url()
        check_reachable(url)
    except DatabaseUnreachable as e:
        raise Fail(str(e), Exit.DATABASE) from None
    name = f"neardup_bench_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as e:
        raise Fail(f"cannot create a scratch database for the benchmark: {str(e).strip()}", Exit.DATABASE) from None
    scratch = scratch_url(url, name)
    try:
        upgrade(scratch)
        os.environ["DATABASE_URL"] = scratch  # the actors and local workers use it
        result = measure(scratch, args)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if args.json:
        emit_json(result)
    else:
        for key, value in result.items():
            print(f"{key:>28}: {value}")
    return Exit.OK


STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"bench [{time.monotonic() - STARTED:6.1f}s]: {message}", file=sys.stderr, flush=True)


def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    from db.bench import ProgressBench
    from db.repository import Repository

    repo = Repository(url)
    bench = ProgressBench(repo)
    log(f"progress view on a job of {args.rows:,} work rows")
    job = bench.synthetic_job(args.rows)
    # Shown for comparison, not the headline: submit and the monitor never leave a big phase so.
    unsettled = bench.time_reads(job)
    bench.settle(args.rows)
    states = {"fresh": bench.time_reads(job)}
    # Half the rows finished in one statement: harsher than workers finishing them one by one
    # (all those pages changed at once, nothing vacuumed since).
    bench.finish_rows(job, args.rows // 2)
    states["half_done"] = bench.time_reads(job)
    bench.vacuum()
    states["half_done_vacuumed"] = bench.time_reads(job)
    bench.finish_rows(job, args.rows)
    states["all_done"] = bench.time_reads(job)
    worst = max(states, key=lambda s: states[s]["median_ms"])
    log(f"a real job of {args.photos} photos, {args.workers} workers: unwatched, then watched at "
        f"{args.watch_hz:g} Hz")
    with tempfile.TemporaryDirectory(prefix="neardup-bench-") as tmp:
        folder = make_photos(Path(tmp) / "photos", args.photos)
        unwatched = run_job(repo, bench, folder, args.workers, watch_hz=0.0, logs=Path(tmp) / "logs")
        watched = run_job(repo, bench, folder, args.workers, watch_hz=args.watch_hz, logs=Path(tmp) / "logs")
    repo.close()
    overhead = (watched["monitor_busy_s"] + watched["watcher_busy_s"]) / watched["wall_s"]
    return {
        "work_rows": args.rows,
        "progress_query_ms": states[worst]["median_ms"],
        "progress_query_worst_state": worst,
        "progress_query_by_state": states,
        "progress_query_ms_before_settle": unsettled["median_ms"],
        "overhead_ratio": round(overhead, 4),
        "monitor_share": round(watched["monitor_busy_s"] / watched["wall_s"], 4),
        "views_share": round(watched["watcher_busy_s"] / watched["wall_s"], 4),
        "job_wall_s_unwatched": unwatched["wall_s"],
        "job_wall_s_watched": watched["wall_s"],
        "watched_vs_unwatched": round(watched["wall_s"] / unwatched["wall_s"], 3),
        "watcher_reads": watched["watcher_reads"],
        "monitor_ticks": watched["monitor_ticks"],
        "photos": args.photos,
        "workers": args.workers,
    }


def make_photos(folder: Path, n: int) -> Path:
    from neardup.demo import save_near_copy, save_photos

    photos = save_photos(folder, range(n))
    for i in range(0, n, 20):
        save_near_copy(photos[i], folder / f"copy-{i}.jpg")
    return folder


def run_job(repo, bench, folder: Path, workers: int, watch_hz: float, logs: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Submit the folder, work it with local workers, and time it from submit to completed."""
    import actors
    from actors.monitor_jobs import step_job
    from db.control import JobControl
    from db.events import Listener
    from db.repository import JobOptions, NewFile
    from neardup.discovery import iter_files
    from neardup.workers import LocalWorkers

    log(f"job: starting {workers} workers" + (f", watched at {watch_hz:g} Hz" if watch_hz else ", unwatched"))
    _, ticks_before = bench.monitor_totals()
    with LocalWorkers(workers, repo.url, logs) as local:
        # Ready once a worker has run the monitor it armed at boot. With no job active yet, that
        # tick ends its chain at once, so "armed" alone may already be gone when we look.
        deadline = time.monotonic() + 120
        while bench.monitor_totals()[1] == ticks_before and time.monotonic() < deadline:
            local.supervise()
            time.sleep(0.2)
        time.sleep(1.0)  # the other workers finish booting too
        busy0, ticks0 = bench.monitor_totals()
        stop = threading.Event()
        reads: list[float] = []
        began = time.monotonic()
        job = repo.submit([str(folder)], (NewFile(f.path, f.size, f.mtime) for f in iter_files([str(folder)])),
                          JobOptions(batch_size=4))
        step_job(job, "hash", force_kick=True)
        actors.arm_monitor()
        watcher = threading.Thread(target=watch, args=(repo, job, watch_hz, stop, reads), daemon=True)
        if watch_hz > 0:
            watcher.start()
        control = JobControl(repo)
        with Listener(repo.url).open() as listener:
            while (status := control.status(job)) and status[0] in ("pending", "running"):
                local.supervise()
                listener.wait(job, 1.0)
        wall = time.monotonic() - began
        log(f"job {job}: {status[0] if status else 'gone'} in {wall:.1f}s; stopping workers")
        stop.set()
        if watcher.is_alive():
            watcher.join()
        busy1, ticks1 = bench.monitor_totals()
    if status is None or status[0] != "completed":
        raise Fail(f"benchmark job {job} did not complete: {status}", Exit.JOB_FAILED)
    return {"wall_s": round(wall, 3), "monitor_busy_s": round(busy1 - busy0, 4),
            "monitor_ticks": ticks1 - ticks0, "watcher_busy_s": round(sum(reads), 4),
            "watcher_reads": len(reads)}


def watch(repo, job: int, hz: float, stop: threading.Event, reads: list[float]) -> None:  # type: ignore[no-untyped-def]
    """A watcher far more eager than any display: reads the progress view hz times a second."""
    while not stop.is_set():
        began = time.perf_counter()
        repo.progress(job)
        reads.append(time.perf_counter() - began)
        stop.wait(1.0 / hz)
