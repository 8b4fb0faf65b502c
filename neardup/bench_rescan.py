"""`neardup bench rescan`: a rescan of an unchanged tree against the first scan of it, same run.

Both are whole `neardup scan --json` commands, timed from outside as a user meets them: start-up,
database, walk, hashing (the first) or reuse of stored hashes (the rescan), grouping and report.
The first scan runs with `--rehash`, so it decodes every file even when an earlier run of the
benchmark stored their hashes. The photos are `neardup bench hash`'s (1-3 megapixels).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from neardup.cli import Exit, Fail, emit_json, env, flag, positive, stderr_console


def register_bench(kinds: argparse._SubParsersAction) -> None:
    r = kinds.add_parser("rescan", help="rescan of an unchanged tree against its first scan",
                         epilog="example:\n  neardup bench rescan --images 2000 --json",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--images", type=positive, default=env("BENCH_IMAGES", 2000, int),
                   help="photo-sized JPEGs to generate, once (default 2000)")
    r.add_argument("--dir", default=env("BENCH_DIR", None), help="scan this folder instead")
    r.add_argument("--workers", type=positive, default=env("WORKERS", os.cpu_count() or 1, int),
                   help="local workers of the first scan (default: CPUs)")
    r.add_argument("--rounds", type=positive, default=env("BENCH_ROUNDS", 3, int),
                   help="rescans; the median counts (default 3)")
    r.add_argument("--json", action="store_true", default=flag("JSON"), help="print one JSON object")
    r.set_defaults(run=run)


def timed_scan(folder: Path, workers: int, *extra: str) -> tuple[float, dict[str, Any]]:
    # Bytecode is cached as an installed neardup's is (pip compiles at install): with
    # PYTHONDONTWRITEBYTECODE a source checkout would time the compiler at every start.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "neardup", "scan", str(folder), "--json",
                           "--workers", str(workers), *extra], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise Fail(f"scan of {folder} ended with {done.returncode}: {done.stderr.strip()}", Exit.JOB_FAILED)
    return seconds, json.loads(done.stdout)


def groups_of(result: dict[str, Any]) -> list[list[str]]:
    return sorted(sorted(g["members"]) for g in result["groups"])


def run(args: argparse.Namespace) -> int:
    from db.embedded import data_home
    from neardup.bench_hash import PHOTOS_VERSION, make_photos
    from neardup.commands import connect, repository

    if args.dir:
        folder = Path(args.dir)
        if not folder.is_dir():
            raise Fail(f"--dir {folder}: not a directory", Exit.USAGE)
    else:
        folder = data_home() / "bench" / f"photos-v{PHOTOS_VERSION}-{args.images}"
        stderr_console().print(f"bench: {args.images} photos in {folder} (made once)")
        make_photos(folder, args.images)
    connect()  # the embedded cluster is up before the clock starts, as on any second run
    first_s, first = timed_scan(folder, args.workers, "--rehash")
    rescans = [timed_scan(folder, args.workers) for _ in range(args.rounds)]
    rescan_s = sorted(s for s, _ in rescans)[len(rescans) // 2]
    last = rescans[-1][1]
    result = {
        "images": first["files"], "workers": args.workers,
        "first_scan_s": round(first_s, 3), "rescan_s": round(rescan_s, 3),
        "rescan_rounds_s": [round(s, 3) for s, _ in rescans],
        "ratio": round(rescan_s / first_s, 4),
        # Files the rescan took from stored hashes (skipped work): all of them when nothing changed.
        "rescan_reused": repository().progress(last["job"]).phases[0].skipped,
        "same_groups": all(groups_of(r) == groups_of(first) for _, r in rescans),
        "folder": str(folder),
    }
    if args.json:
        emit_json(result)
    else:
        print(f"{result['images']} files: first scan {first_s:.2f}s, rescan {rescan_s:.2f}s "
              f"({100 * result['ratio']:.1f}%), same groups: {result['same_groups']}")
    return Exit.OK
