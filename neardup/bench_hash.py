"""`neardup bench hash`: hash throughput of the real hash phase against imagehash.phash, same run.

neardup's figure is the hash phase of a real job: local `dramatiq actors` workers claiming rows
from PostgreSQL, all 8 orientations on, stored hashes not reused. The baseline is what most
deduplicators do, `imagehash.phash(Image.open(path))`, in a process pool of the same size over the
same files. Both run warm: workers booted by a small job first, pool processes by a first task.
Rounds alternate between the two, and each side's best round counts: on a shared machine that
is the round least disturbed by other work.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from neardup.cli import Exit, Fail, emit_json, env, flag, positive, stderr_console

if TYPE_CHECKING:
    from PIL import Image

# Bump when the generator changes, so a cached folder is not mistaken for the new one.
PHOTOS_VERSION = 2
WARMUP_IMAGES = 8


def register_bench(kinds: argparse._SubParsersAction) -> None:
    h = kinds.add_parser("hash", help="hash phase images/s against imagehash.phash, same processes",
                        epilog="example:\n  neardup bench hash --json",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    h.add_argument("--images", type=positive, default=env("BENCH_IMAGES", 1000, int),
                   help="photo-sized JPEGs (1-3 megapixels) to generate, once (default 1000)")
    h.add_argument("--dir", default=env("BENCH_DIR", None),
                   help="benchmark these JPEGs instead of generated ones")
    h.add_argument("--processes", type=positive, default=env("PROCESSES", os.cpu_count() or 1, int),
                   help="worker processes for neardup and for the baseline pool (default: CPUs)")
    h.add_argument("--rounds", type=positive, default=env("BENCH_ROUNDS", 2, int),
                   help="alternating rounds of each; the best round of each counts (default 2)")
    h.add_argument("--json", action="store_true", default=flag("JSON"), help="print one JSON object")
    h.set_defaults(run=run)


def camera_photo(seed: int) -> Image.Image:
    """A 1-3 megapixel photo-like image: smooth shapes, texture and sensor noise.

    Saved at quality 90 it takes about 0.2 bytes per pixel, like a camera JPEG scaled to this
    size. The ratio to imagehash depends on that: decoding at 1/8 scale saves the IDCT and the
    resampling but not the entropy decoding, so noisier (bigger) files gain less.
    """
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    megapixels = rng.uniform(1.0, 3.0) * 1e6
    aspect = float(rng.choice([4 / 3, 3 / 2, 16 / 9]))
    w = int((megapixels * aspect) ** 0.5)
    h = int(megapixels / w)
    if rng.random() < 0.3:
        w, h = h, w  # portrait
    shapes = Image.fromarray((rng.random((6, 8, 3)) * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    texture = Image.fromarray((rng.random((60, 80, 3)) * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BILINEAR)
    pixels = np.asarray(Image.blend(shapes, texture, 0.25)).astype(np.int16)
    pixels += rng.normal(0, 3, (h, w, 1)).astype(np.int16)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_photos(folder: Path, count: int, first_seed: int = 0) -> list[Path]:
    """count generated JPEGs in folder, made once and reused by later runs."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(first_seed, first_seed + count):
        path = folder / f"photo-{seed:05d}.jpg"
        if not path.exists():
            camera_photo(seed).save(path.with_suffix(".tmp"), format="JPEG", quality=90)
            path.with_suffix(".tmp").rename(path)
        paths.append(path)
    return paths


def imagehash_phash(path: str) -> str:
    import imagehash
    from PIL import Image

    with Image.open(path) as image:
        return str(imagehash.phash(image))


def baseline_round(pool, paths: list[str]) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    pool.map(imagehash_phash, paths, chunksize=4)
    return len(paths) / (time.perf_counter() - start)


def neardup_round(args: argparse.Namespace, workers, console) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    """Hashed files per second of one job's hash phase (its start to its last row), and the kind."""
    from neardup.commands import repository, submit_job, wait

    job = submit_job(args)
    progress = wait(job, workers, console, live=False)
    if progress.status != "completed":
        raise Fail(f"benchmark job {job} {progress.status}: {progress.error}", Exit.JOB_FAILED)
    seconds, hashed, kind = repository().hash_phase_timing(job)
    if not hashed:
        raise Fail(f"benchmark job {job} hashed nothing", Exit.JOB_FAILED)
    return hashed / seconds, kind or ""


def measure(folder: Path, warmup: Path, paths: list[str], processes: int, rounds: int) -> dict[str, object]:
    """Alternate baseline and neardup rounds; each side's best round (least disturbed by others)."""
    from db.embedded import data_home
    from neardup.cli import parser
    from neardup.commands import submit_job, wait
    from neardup.workers import LocalWorkers

    console = stderr_console()
    args = parser().parse_args(["scan", str(warmup), "--workers", str(processes), "--rehash"])
    workers = LocalWorkers(processes, "", data_home() / "logs")

    def start_workers(url: str) -> None:
        workers.url = url
        workers.start()

    theirs, ours, kind = [], [], ""
    # spawn, not fork: this process holds database connections and their threads.
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(imagehash_phash, paths[:processes], chunksize=1)  # imports done before the clock
        try:
            wait(submit_job(args, start_workers), workers, console, live=False)  # boots the workers
            args.paths = [str(folder)]
            for _ in range(rounds):
                theirs.append(baseline_round(pool, paths))
                rate, kind = neardup_round(args, workers, console)
                ours.append(rate)
        finally:
            workers.stop()
    return {"neardup_images_per_s": round(max(ours), 1), "imagehash_images_per_s": round(max(theirs), 1),
            "ratio": round(max(ours) / max(theirs), 2), "rounds": rounds, "hash_kind": kind,
            "neardup_rounds": [round(x, 1) for x in ours], "imagehash_rounds": [round(x, 1) for x in theirs]}


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from db.embedded import data_home

    home = data_home() / "bench"
    if args.dir:
        folder = Path(args.dir)
        photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
        if not photos:
            raise Fail(f"{folder}: no .jpg files", Exit.USAGE)
    else:
        folder = home / f"photos-v{PHOTOS_VERSION}-{args.images}"
        photos = make_photos(folder, args.images)
    warmup = home / "warmup"
    make_photos(warmup, WARMUP_IMAGES, first_seed=10**6)
    paths = [str(p) for p in photos]
    for p in paths:  # both contestants read from the page cache
        Path(p).read_bytes()
    measured = measure(folder, warmup, paths, args.processes, args.rounds)
    megapixels = [_megapixels(p) for p in paths]
    result = {
        "images": len(paths),
        "megapixels_mean": round(float(np.mean(megapixels)), 3),
        "processes": args.processes,
        **measured,
        "folder": str(folder),
    }
    if args.json:
        emit_json(result)
    else:
        print(f"{result['images']} JPEGs, {result['megapixels_mean']} MP mean, {args.processes} processes: "
              f"neardup {result['neardup_images_per_s']} images/s, imagehash.phash "
              f"{result['imagehash_images_per_s']} images/s, ratio {result['ratio']}x")
    return Exit.OK


def _megapixels(path: str) -> float:
    from PIL import Image

    with Image.open(path) as image:
        return image.width * image.height / 1e6
