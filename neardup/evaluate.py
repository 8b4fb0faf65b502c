"""`neardup eval`: scan a folder for real and score its groups against a ground truth.

The ground truth is a CSV of `file,group,transform` rows (file relative to the folder). A group of
one file is a distractor: a photo nothing else duplicates. Scores are pairwise over the ground
truth's files only: a pair is predicted when both files end in the same duplicate group.
"""
from __future__ import annotations

import argparse
import csv
import fnmatch
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from neardup.cli import (
    EXAMPLES,
    Exit,
    Fail,
    add_job_options,
    emit_json,
    env,
    flag,
    nonneg,
    stderr_console,
)

# Pairs listed by name (missed and false ones): enough to see what went wrong, bounded for big sets.
LISTED_PAIRS = 50


@dataclass(frozen=True)
class TruthRow:
    path: str
    group: str
    transform: str


@dataclass(frozen=True)
class Score:
    files: int
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="scan a folder and score the groups against a ground truth",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Pairwise precision, recall and F1 of a real scan against a "
                                   "ground truth CSV (file,group,transform; a group of one is a "
                                   "distractor; files not in it are ignored).")
    add_job_options(p)
    p.add_argument("--truth", metavar="CSV", default=env("TRUTH", None),
                   help="ground truth (default: PATH/ground_truth.csv)")
    p.add_argument("--ignore", action="append", default=[], metavar="GLOB",
                   help="leave ground-truth files matching GLOB out of the score (repeatable)")
    p.add_argument("--workers", type=nonneg, default=env("WORKERS", os.cpu_count() or 1, int),
                   help="local worker processes (default: CPUs)")
    p.add_argument("--json", action="store_true", default=flag("JSON"), help="print one JSON object")
    p.set_defaults(run=run)


def read_truth(csv_path: Path, folder: Path, ignore: Sequence[str] = ()) -> list[TruthRow]:
    try:
        with open(csv_path, newline="", encoding="utf-8") as table:
            reader = csv.DictReader(table)
            missing = {"file", "group"} - set(reader.fieldnames or ())
            if missing:
                raise Fail(f"{csv_path}: no {', '.join(sorted(missing))} column", Exit.USAGE)
            rows = [r for r in reader if not any(fnmatch.fnmatch(r["file"], g) for g in ignore)]
    except OSError as e:
        raise Fail(f"{csv_path}: {(e.strerror or str(e)).lower()}", Exit.USAGE) from None
    return [TruthRow(os.path.normpath(folder / r["file"]), r["group"], r.get("transform") or "")
            for r in rows]


def score(truth: Sequence[TruthRow], predicted_group: dict[str, int]) -> Score:
    """Pair counts from the contingency of truth groups and predicted groups (no pair lists)."""
    lone = _lone_ids(truth, predicted_group)
    cells = Counter((t.group, lone.get(t.path, predicted_group.get(t.path))) for t in truth)
    truth_sizes = Counter(t.group for t in truth)
    pred_sizes: Counter[object] = Counter()
    for (_, p), n in cells.items():
        pred_sizes[p] += n
    tp = sum(_pairs(n) for n in cells.values())
    return Score(len(truth), tp, sum(map(_pairs, pred_sizes.values())) - tp,
                 sum(map(_pairs, truth_sizes.values())) - tp)


def pair_lists(truth: Sequence[TruthRow], predicted_group: dict[str, int]) -> tuple[list[Any], list[Any]]:
    """Up to LISTED_PAIRS missed pairs and false pairs, with their transforms."""
    missed, false = [], []
    by_group: dict[str, list[TruthRow]] = {}
    for t in truth:
        by_group.setdefault(t.group, []).append(t)
    for rows in by_group.values():
        for x, y in combinations(rows, 2):
            if len(missed) < LISTED_PAIRS and not _together(x, y, predicted_group):
                missed.append(_pair(x, y))
    by_pred: dict[int, list[TruthRow]] = {}
    for t in truth:
        if t.path in predicted_group:
            by_pred.setdefault(predicted_group[t.path], []).append(t)
    for rows in by_pred.values():
        for x, y in combinations(rows, 2):
            if len(false) < LISTED_PAIRS and x.group != y.group:
                false.append(_pair(x, y))
    return missed, false


def run(args: argparse.Namespace) -> int:
    from neardup.commands import repository, run_job

    if len(args.paths) != 1:
        raise Fail("eval takes one folder (the ground truth's file names are relative to it)", Exit.USAGE)
    folder = Path(os.path.abspath(args.paths[0]))
    truth = read_truth(Path(args.truth) if args.truth else folder / "ground_truth.csv", folder, args.ignore)
    console = stderr_console()
    job_id, progress = run_job(args, console, live=False)
    if progress.status != "completed":
        raise Fail(f"job {job_id} {progress.status}: {progress.error}", Exit.JOB_FAILED)
    repo = repository()
    predicted = group_numbers(g.members for g in repo.groups(job_id))
    failed = {f.path: f.error for f in repo.failed_files(job_id)}
    result = report(job_id, truth, predicted, failed)
    if args.json:
        emit_json(result)
    else:
        print_report(result)
    return Exit.OK


def group_numbers(groups: Iterable[Sequence[str]]) -> dict[str, int]:
    return {path: n for n, members in enumerate(groups) for path in members}


def report(job_id: int, truth: Sequence[TruthRow], predicted: dict[str, int],
           failed: dict[str, str]) -> dict[str, Any]:
    s = score(truth, predicted)
    missed, false = pair_lists(truth, predicted)
    return {
        "job": job_id, "files": s.files,
        "groups": len({t.group for t in truth}),
        "precision": round(s.precision, 4), "recall": round(s.recall, 4), "f1": round(s.f1, 4),
        "true_positives": s.true_positives, "false_positives": s.false_positives,
        "false_negatives": s.false_negatives,
        "missed_pairs": missed, "false_pairs": false,
        "failed": [{"path": t.path, "error": failed[t.path]} for t in truth if t.path in failed],
    }


def print_report(r: dict[str, Any]) -> None:
    for kind, key in (("missed", "missed_pairs"), ("false", "false_pairs")):
        for p in r[key]:
            print(f"{kind}: {p['a']} ~ {p['b']}  ({p['transform_a']} / {p['transform_b']})")
    for f in r["failed"]:
        print(f"failed: {f['path']}: {f['error']}")
    print(f"job {r['job']}: {r['files']} files in {r['groups']} truth groups: precision {r['precision']:.4f}, "
          f"recall {r['recall']:.4f}, F1 {r['f1']:.4f} (TP {r['true_positives']}, "
          f"FP {r['false_positives']}, FN {r['false_negatives']})")


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _lone_ids(truth: Sequence[TruthRow], predicted_group: dict[str, int]) -> dict[str, object]:
    # A file in no predicted group is alone: give it a key nothing else shares.
    return {t.path: ("alone", t.path) for t in truth if t.path not in predicted_group}


def _together(x: TruthRow, y: TruthRow, predicted_group: dict[str, int]) -> bool:
    gx, gy = predicted_group.get(x.path), predicted_group.get(y.path)
    return gx is not None and gx == gy


def _pair(x: TruthRow, y: TruthRow) -> dict[str, str]:
    return {"a": x.path, "b": y.path, "transform_a": x.transform, "transform_b": y.transform}
