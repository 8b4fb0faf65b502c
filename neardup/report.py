"""What the CLI shows: the live bar, the summary, and the --json / --csv shapes."""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

from db.models import FailedFile, Group, JobProgress, PairPaths


def status_json(p: JobProgress) -> dict[str, Any]:
    return {
        "job": p.job,
        "status": p.status,
        "phase": p.phase,
        "percent": p.percent,
        "elapsed_s": p.elapsed_s,
        "eta_s": p.eta_s,
        "phases": [
            {"name": ph.name, "status": ph.status, "total": ph.total, "done": ph.done,
             "failed": ph.failed, "skipped": ph.skipped, "cancelled": ph.cancelled,
             "percent": ph.percent, "rate": ph.rate, "eta_s": ph.eta_s}
            for ph in p.phases
        ],
        **({"error": p.error} if p.error else {}),
    }


def groups_json(groups: Sequence[Group], pairs: Sequence[PairPaths]) -> dict[str, Any]:
    return {
        "groups": [{"keeper": g.keeper, "members": list(g.members)} for g in groups],
        "pairs": [{"a": p.a, "b": p.b, "distance": p.distance} for p in pairs],
    }


def scan_json(p: JobProgress, files: int, failed: Sequence[FailedFile], groups: Sequence[Group],
              pairs: Sequence[PairPaths]) -> dict[str, Any]:
    return {
        "job": p.job,
        "status": p.status,
        "files": files,
        "failed": [{"path": f.path, "error": f.error} for f in failed],
        **groups_json(groups, pairs),
        **({"error": p.error} if p.error else {}),
    }


def groups_csv(groups: Sequence[Group]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["group", "keeper", "path"])
    for n, g in enumerate(groups, 1):
        for m in g.members:
            w.writerow([n, "yes" if m == g.keeper else "no", m])
    return out.getvalue()


def print_summary(console: Console, p: JobProgress, files: int, failed: Sequence[FailedFile],
                  groups: Sequence[Group]) -> None:
    for n, g in enumerate(groups, 1):
        console.print(f"[bold]group {n}[/bold] ({len(g.members)} files)")
        for m in g.members:
            mark = "[green]keep[/green]" if m == g.keeper else "    "
            console.print(f"  {mark} {m}", highlight=False, markup=True)
    for f in failed:
        console.print(f"[red]failed[/red] {f.path}: {f.error}", highlight=False)
    hashed = next((ph for ph in p.phases if ph.name == "hash"), None)
    done = hashed.done if hashed else 0
    reused = f", {hashed.skipped} reused (unchanged or byte-identical)" if hashed and hashed.skipped else ""
    console.print(
        f"job {p.job} {p.status}: {files} files, {done} hashed{reused}, {len(failed)} failed, "
        f"{len(groups)} groups of near-duplicates"
        + (f" — {p.error}" if p.error else "")
    )
