"""The `neardup` command."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from enum import IntEnum
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from rich.console import Console

EXAMPLES = """\
examples:
  neardup demo                                 scan generated photos with planted duplicates
  neardup scan ~/Pictures                      find near-duplicates, live progress, print groups
  neardup scan ~/Pictures --json > dups.json   the same, as one JSON object
  neardup scan /photos --threshold 6           stricter matching (Hamming distance <= 6 of 64 bits)
  neardup scan /photos --hash dhash --no-rotations   another hash; rotated copies are not matches
  neardup scan /photos --verify-up-to 10      no thumbnail check of near misses past the threshold
  neardup eval /sets/a --truth truth.csv       precision and recall against a ground truth
  neardup bench hash --json                    hash throughput against imagehash, same run
  neardup submit /photos                       enqueue only; a fleet of `dramatiq actors` works it
  neardup status 12 --json                     progress of job 12
  neardup groups 12 --csv                      the groups of a finished job
  psql "$(neardup db url)"                     look at the rows yourself

Every option can also come from the environment: NEARDUP_THRESHOLD, NEARDUP_WORKERS, ...
(the option name in capitals). DATABASE_URL selects the database; without it neardup runs
its own private PostgreSQL under $XDG_DATA_HOME/neardup.

exit codes: 0 completed, 1 job failed or cancelled, 2 bad argument or unknown job,
            3 database unreachable, 130 interrupted
"""


class Exit(IntEnum):
    OK = 0
    JOB_FAILED = 1
    USAGE = 2
    DATABASE = 3
    INTERRUPTED = 130


class Fail(Exception):
    def __init__(self, message: str, code: Exit) -> None:
        super().__init__(message)
        self.code = code


def env(name: str, default: Any, kind: Callable[[str], Any] = str) -> Any:
    raw = os.environ.get(f"NEARDUP_{name}")
    if raw is None:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise Fail(f"NEARDUP_{name}={raw!r}: expected {kind.__name__}", Exit.USAGE) from None


def flag(name: str) -> bool:
    return os.environ.get(f"NEARDUP_{name}", "").lower() in ("1", "true", "yes", "on")


def nonneg(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def threshold(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be between 0 and 64, got {value}")
    return value


# Most images in a compare block: a block pair is ~10^9 image pairs, 0.1-0.3 s of compiled kernel
# on one core, long enough that the claim and the block fetch (a few ms) are noise.
BLOCK_SIZE = 32768
# Files in a hash work row: a row's claim, lookup of known contents and finish cost ~7 ms of round
# trips whatever its size; at 16 files that was 0.45 ms of every ~5 ms image, at 32 about half that.
BATCH_SIZE = 32
# Files to decode that `scan` hashes in its own process rather than start workers (about 3 s): a
# rescan that meets a few changed or unreadable files, a first scan of a small folder.
INLINE_FILES = 64


def add_job_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="folders or files to scan")
    p.add_argument("--threshold", type=threshold, default=env("THRESHOLD", 10, int),
                   help="max Hamming distance between 64-bit hashes (default 10)")
    p.add_argument("--block-size", type=positive, default=env("BLOCK_SIZE", BLOCK_SIZE, int),
                   help=f"most images per compare block; blocks are made even (default {BLOCK_SIZE})")
    p.add_argument("--batch-size", type=positive, default=env("BATCH_SIZE", BATCH_SIZE, int),
                   help=f"files per hash work row (default {BATCH_SIZE})")
    p.add_argument("--lease", type=float, default=env("LEASE", 120.0, float), metavar="SECONDS",
                   help="how long a claimed row is a worker's before it is given back (default 120)")
    p.add_argument("--max-attempts", type=positive, default=env("MAX_ATTEMPTS", 3, int),
                   help="claims of a row before it is failed (default 3)")
    p.add_argument("--hash", default=env("HASH", "phash"), choices=("phash", "dhash", "ahash", "whash"),
                   help="perceptual hash (default phash)")
    p.add_argument("--hash-size", type=int, default=env("HASH_SIZE", 8, int), metavar="N",
                   help="hash side: N*N bits; only 8 (64-bit hashes) is supported")
    p.add_argument("--no-rotations", action="store_true", default=flag("NO_ROTATIONS"),
                   help="do not match rotated or mirrored copies (default: all 8 orientations match)")
    p.add_argument("--verify-up-to", type=threshold, default=env("VERIFY_UP_TO", None, int), metavar="BITS",
                   help="also keep pairs up to BITS apart whose thumbnails correlate (a crop of a few "
                        "percent, a caption on a dark photo); at the threshold or below, none (default by "
                        "job size: 20 up to 20,000 files, 18 up to 200,000, 16 up to 2 million, then 14; pHash with "
                        "rotations only)")
    p.add_argument("--rehash", action="store_true", default=flag("REHASH"),
                   help="decode every file again instead of reusing hashes stored by earlier scans")


def parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole CLI; the benchmark kinds (and numpy) are loaded only when argv asks for `bench`."""
    top = argparse.ArgumentParser(prog="neardup", description="Find near-duplicate photos.",
                                  epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules():
        module.register(sub)
    bench = sub.add_parser("bench", help="benchmarks: JSON figures beside a baseline measured in the same run")
    kinds = bench.add_subparsers(dest="bench", required=True, metavar="KIND")
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["bench"]:
        for module in bench_modules():
            module.register_bench(kinds)
    return top


def command_modules() -> list[ModuleType]:
    # Each module adds its subcommands with register(sub) and sets `run` on them.
    from neardup import admin_cli, commands, evaluate, jobs_cli, serve_cli

    return [commands, admin_cli, jobs_cli, serve_cli, evaluate]


def bench_modules() -> list[ModuleType]:
    # Each adds one benchmark kind under `neardup bench` with register_bench(kinds).
    from neardup import bench, bench_cli, bench_hash, bench_rescan, bench_verify

    return [bench_hash, bench_rescan, bench_verify, bench_cli, bench]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser(argv).parse_args(argv)
        return int(args.run(args))
    except Fail as e:
        print(f"neardup: {e}", file=sys.stderr)
        return int(e.code)
    except KeyboardInterrupt:
        return int(Exit.INTERRUPTED)
    except BrokenPipeError:
        # The reader left early (`neardup groups 12 --json | head`): it wanted no more, which is
        # no failure of ours, and a traceback on its terminal would say otherwise. Further
        # writes (run()'s flush) go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(Exit.OK)


def run() -> NoReturn:
    """The console entry point: main(), then exit without tearing the interpreter down.

    Unloading psycopg, numpy and their threads' state took 40-70 ms at every exit, a seventh of
    a rescan of an unchanged tree, for nothing: the process ends anyway. Local workers were already
    stopped by their owners; the shared connection pools are closed, logging shut down and output
    flushed here first.
    """
    code = main()
    if "db.repository" in sys.modules:
        from db.repository import close_shared

        close_shared()  # each server connection ends with a goodbye, not a dropped socket
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a reader that left early (`| head`) wanted no more
    os._exit(code)


def emit_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def stderr_console() -> Console:
    # rich is imported here: a `scan --json` that finishes without a word to say never loads it.
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def stdout_console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def sleep_until(deadline: float) -> None:
    time.sleep(max(0.0, deadline - time.monotonic()))
