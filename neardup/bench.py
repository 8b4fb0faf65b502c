"""`neardup bench compare`: the compare and cluster phases at scale, against in-process baselines.

One run makes N synthetic images in the stored hash form (neardup.synthetic), submits them as a
job whose hash phase is already done, and lets real `dramatiq actors` workers take it through
compare, cluster and finalize over PostgreSQL. The same hashes are matched and grouped in this
process, alternating with the job for a few rounds (phase_s and the correctness checks read the
last round's job); the JSON sets the best of each side by side, with the kernel against numpy,
the cost of rotation-proof matching against single-hash matching, and the job's pairs against
brute force.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from neardup.cli import Exit, Fail, emit_json, env, flag, positive, threshold

EXAMPLES = """\
examples:
  neardup bench compare --n 100000 --json        the issue's run: 2 workers, default blocks
  neardup bench compare --n 20000                a quicker run, one figure per line
  neardup bench compare --n 100000 --block-size 224 --json
                                                 100,000+ block-pair rows (tiny blocks): none lost
                                                 or repeated, the job completed once
"""

WAIT_S = 0.25  # longest wait for an event before the job row is read anyway
WARMUP_N = 400


def register_bench(kinds: argparse._SubParsersAction) -> None:
    c = kinds.add_parser("compare", help="compare + cluster phases through PostgreSQL vs in-process",
                         epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("--n", type=positive, default=env("N", 100_000, int), help="images (default 100000)")
    c.add_argument("--block-size", type=positive, default=env("BLOCK_SIZE", None, int),
                   help="images per compare block (default: the job default)")
    c.add_argument("--threshold", type=threshold, default=env("THRESHOLD", 10, int),
                   help="max Hamming distance (default 10)")
    c.add_argument("--workers", type=positive, default=env("BENCH_WORKERS", 2, int),
                   help="worker processes (default 2)")
    c.add_argument("--worker-threads", type=positive, default=env("WORKER_THREADS", 1, int),
                   help="threads per worker process (default 1: the kernel is the work, and one "
                        "process per core already fills the machine)")
    c.add_argument("--threads", type=positive, default=env("BENCH_THREADS", 2, int),
                   help="threads of the in-process kernel and numpy baselines (default 2)")
    c.add_argument("--sample", type=positive, default=env("SAMPLE", 20_000, int),
                   help="images checked against the brute-force reference (default 20000)")
    c.add_argument("--margin", type=_margin, default=env("MARGIN", None, float),
                   help="near-tie margin of the canonical orientation (default: neardup.orientation's)")
    c.add_argument("--reach", type=_margin, default=env("REACH", None, float),
                   help="near-wall reach of the canonical orientation (default: neardup.orientation's)")
    c.add_argument("--noise", choices=["real", "uniform"], default=env("NOISE", "real"),
                   help="planted copies' noise: 'real' (calibrated on the eval set's copies, "
                        "default) or 'uniform' (mostly heavy edits; see neardup/synthetic.py)")
    c.add_argument("--seed", type=int, default=env("SEED", 0, int), help="synthetic data seed (default 0)")
    c.add_argument("--rounds", type=positive, default=env("BENCH_ROUNDS", 3, int),
                   help="alternating rounds of the job and the in-process baseline; the best round of "
                        "each counts, as in `bench hash` (default 3)")
    c.add_argument("--json", action="store_true", default=flag("JSON"), help="print one JSON object")
    c.set_defaults(run=bench_compare)


def _margin(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def bench_compare(args: argparse.Namespace) -> int:
    from db.events import EventLog
    from db.repository import JobOptions
    from neardup import bench_inprocess as inproc
    from neardup.commands import connect, repository
    from neardup.orientation import DEFAULT_MARGIN, DEFAULT_REACH
    from neardup.synthetic import make_set

    opts = JobOptions(threshold=args.threshold, lease_s=60.0,
                      **({"block_size": args.block_size} if args.block_size else {}))
    margin = DEFAULT_MARGIN if args.margin is None else args.margin
    reach = DEFAULT_REACH if args.reach is None else args.reach
    t0 = time.perf_counter()
    data = make_set(args.n, seed=args.seed, margin=margin, reach=reach, noise=args.noise)
    _say(f"{args.n:,} synthetic images ({data.stored_hashes - args.n:,} alternative hashes, "
         f"{len(data.planted):,} planted copies) in {time.perf_counter() - t0:.1f}s")
    url = connect()
    repo = repository()
    walls: list[float] = []
    bases: list[dict[str, Any]] = []
    # The job and the baseline alternate, so that a shared machine's slow minutes (its speed has
    # drifted by a third within a session) fall on both sides; each side's best round counts.
    with _workers(args.workers, url, args.worker_threads) as workers:
        _run_job(repo, data, JobOptions(threshold=args.threshold, block_size=64), WARMUP_N, workers)
        for r in range(args.rounds):
            job, wall = _run_job(repo, data, opts, args.n, workers)
            walls.append(wall)
            ids = repo.job_file_ids(job)
            bases.append(inproc.in_process(data, ids, args.threshold, args.threads))
            _say(f"round {r + 1}: job {job} {wall:.2f}s, in-process {bases[-1]['in_process_s']:.2f}s")
        peak_rss = workers_peak_rss_mb(workers)
    wall = min(walls)
    # Timings from the best baseline round (its kernel and grouping add up to it); pairs from the
    # last one, which used the file ids of the last job.
    best, last = min(bases, key=lambda b: b["in_process_s"]), bases[-1]
    base = best["in_process_s"]
    pair_a, pair_b, _ = repo.job_pairs(job)
    found = set(zip(pair_a.tolist(), pair_b.tolist()))
    rotation = inproc.rotation_cost(data, ids, args.threshold, args.threads)
    speed = inproc.kernel_vs_numpy(data.hashes, args.threshold, args.threads)
    sample = _sample(data, args.sample, args.seed)
    member = set(ids[sample].tolist())
    reference = inproc.reference_pairs(data, ids, sample, args.threshold)
    attempts = repo.work_attempts(job)
    rows, tries, most, done = attempts.get("compare", (0, 0, 0, 0))
    progress = repo.progress(job)
    out: dict[str, Any] = {
        "n": args.n, "block_size": opts.block_size, "workers": args.workers,
        "worker_threads": args.worker_threads, "threads": args.threads,
        "margin": margin, "reach": reach, "noise": args.noise, "stored_hashes_per_image": data.stored_hashes / args.n,
        "status": progress.status,
        "block_pair_rows": rows, "rows_lost": rows - done, "rows_repeated": tries - rows,
        "most_attempts": most, "finalize_rows": attempts.get("finalize", (0, 0, 0, 0))[0],
        "finalize_attempts": attempts.get("finalize", (0, 0, 0, 0))[1],
        "completions": sum(e.kind == "job_completed" for e in EventLog(repo).all_after(job)),
        "cluster_rows": attempts.get("cluster", (0, 0, 0, 0))[0],
        "job_wall_s": wall, "phase_s": repo.phase_seconds(job), "in_process_s": base,
        "in_process_kernel_s": best["kernel_s"], "in_process_grouping_s": best["grouping_s"],
        "overhead_ratio": wall / base, "rounds": args.rounds,
        "job_wall_rounds_s": [round(w, 3) for w in walls],
        "in_process_rounds_s": [round(b["in_process_s"], 3) for b in bases],
        "job_pairs_per_s": (args.n * (args.n - 1) // 2) / wall,
        **{k: speed[k] for k in ("kernel_pairs_per_s", "numpy_pairs_per_s", "kernel_vs_numpy")},
        "kernel_equals_numpy": speed["kernel_equals_numpy"],
        **rotation,
        "pairs": len(found), "groups": len(repo.groups(job)), "in_process_groups": last["groups"],
        "pairs_match_in_process": found == last["pairs"],
        "reference_sample": len(sample),
        "pairs_match_reference": {p for p in found if p[0] in member and p[1] in member} == reference,
        **inproc.planted_recall(data, ids, found, args.threshold),
        "worker_peak_rss_mb": peak_rss,
        "note": "timings from one run on a shared machine; ratios are within the run",
    }
    if args.json:
        emit_json(out)
    else:
        for key, value in out.items():
            print(f"{key:>28}: {value:.4g}" if isinstance(value, float) else f"{key:>28}: {value}")
    return Exit.OK if progress.status == "completed" else Exit.JOB_FAILED


def _sample(data: Any, size: int, seed: int) -> np.ndarray:
    """Every planted image plus random others, up to size."""
    n = len(data)
    if size >= n:
        return np.arange(n)
    planted = {i for p in data.planted for i in (p.original, p.copy)}
    rng = np.random.default_rng(seed + 1)
    others = rng.permutation(np.setdiff1d(np.arange(n), np.fromiter(planted, dtype=np.int64)))
    return np.sort(np.concatenate([np.fromiter(planted, dtype=np.int64),
                                   others[: max(0, size - len(planted))]]))


def _run_job(repo: Any, data: Any, opts: Any, n: int, workers: Any) -> tuple[int, float]:
    from actors import arm_monitor
    from actors.monitor_jobs import step_job
    from db.events import Listener
    from db.models import HashedFile

    rng = np.random.default_rng(7)
    files = (HashedFile(f"synthetic/{k:07d}.jpg", int(rng.integers(1e5, 1e7)), float(k),
                        int(data.hashes[k]), data.alternatives[k], 640, 480, data.ties[k]) for k in range(n))
    job = repo.submit_hashed(["synthetic"], files, opts)
    # The job's end is heard (its job_completed event's NOTIFY), not polled for: a poll every
    # 20 ms added 10 ms to the wall time on average, and more often would load the database the
    # workers use. Between events the job row alone is read, never the progress views.
    with Listener(repo.url).open() as listener:
        start = time.perf_counter()
        step_job(job, "hash", force_kick=True)
        arm_monitor()
        rearm = start + 2.0
        while repo.job_settings(job).status in ("pending", "running"):
            for note in workers.supervise():
                _say(note)
            if time.perf_counter() > rearm:
                arm_monitor()
                rearm = time.perf_counter() + 2.0
            listener.wait(job, WAIT_S)
        wall = time.perf_counter() - start
    progress = repo.progress(job)
    if progress.status != "completed":
        raise Fail(f"bench job {job} {progress.status}: {progress.error}", Exit.JOB_FAILED)
    return job, wall


def _workers(count: int, url: str, threads: int) -> Any:
    from neardup.workers import LocalWorkers

    return LocalWorkers(count, url, Path(tempfile.mkdtemp(prefix="neardup-bench-")), threads=threads)


def workers_peak_rss_mb(workers: Any) -> list[float]:
    """Peak resident memory (VmHWM) of each worker's processes, the largest of its tree."""
    peaks = []
    for proc in workers.procs:
        if proc is not None:
            peaks.append(max((_hwm_mb(p) for p in _tree(proc.pid)), default=0.0))
    return peaks


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            kids = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(k) for k in kids)
    return found


def _hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0

