"""Live progress: rich bars (one per phase plus overall) fed by the progress view, woken by NOTIFY.

`neardup watch`, `neardup scan` and `neardup resume` all use follow() and ProgressDisplay.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

from db.events import Listener
from db.models import JobProgress, PhaseProgress

# What one unit of a phase's work is, for the rate; a phase not named here shows "units".
UNITS: dict[str, str] = {"hash": "files", "compare": "pairs", "finalize": "files", "cluster": "groups"}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-:--"
    s = int(seconds + 0.5)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def quantity(n: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= limit:
            return f"{n / limit:.1f}{suffix}"
    return f"{n:.0f}" if n >= 10 or n == int(n) else f"{n:.1f}"


def rate_eta(ph: PhaseProgress) -> str:
    """'120 files/s  eta 0:42' while the phase runs and has a rate, else ''."""
    if ph.status != "running" or ph.rate is None:
        return ""
    return f"{quantity(ph.rate)} {UNITS.get(ph.name, 'units')}/s  eta {duration(ph.eta_s)}"


def timing(p: JobProgress) -> str:
    text = f"elapsed {duration(p.elapsed_s)}"
    return text + (f"  eta {duration(p.eta_s)}" if p.status == "running" else "")


def phase_detail(ph: PhaseProgress) -> str:
    parts = [f"{ph.finished_units:,}/{ph.total:,} {UNITS.get(ph.name, 'units')}"]
    if ph.failed:
        parts.append(f"{ph.failed:,} failed")
    if ph.skipped:
        parts.append(f"{ph.skipped:,} skipped")
    if ph.status not in ("running", "completed"):
        parts.append(ph.status)
    if extra := rate_eta(ph):
        parts.append(extra)
    return "  ".join(parts)


def overall_detail(p: JobProgress) -> str:
    return "  ".join([p.status, timing(p)] + ([p.error] if p.error else []))


def one_line(p: JobProgress) -> str:
    """The whole picture on one line, for logs and pipes."""
    current = next((ph for ph in p.phases if ph.status == "running"), None)
    line = f"job {p.job} {p.status} {p.percent:.2f}%"
    if current is not None:
        line += f" | {current.name} {phase_detail(current)}"
    return line + (f" — {p.error}" if p.error else "")


class ProgressDisplay:
    """One bar per phase plus an overall bar, all read from the progress view."""

    def __init__(self, console: Console, enabled: bool) -> None:
        from rich.progress import BarColumn, Progress, TextColumn

        self.enabled = enabled
        self.progress = Progress(TextColumn("{task.description:>9}"), BarColumn(),
                                 TextColumn("{task.fields[percent]:>7}"),
                                 TextColumn("{task.fields[detail]}"),
                                 console=console, transient=False, auto_refresh=False)
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressDisplay:
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()

    def update(self, p: JobProgress) -> None:
        if not self.enabled:
            return
        rows = [("overall", p.percent, overall_detail(p))] + [
            (ph.name, ph.percent, phase_detail(ph)) for ph in p.phases]
        for name, percent, detail in rows:
            fields: dict[str, Any] = {"percent": f"{percent:.2f}%", "detail": detail}
            if name not in self.tasks:
                self.tasks[name] = self.progress.add_task(name, total=100.0, **fields)
            self.progress.update(self.tasks[name], completed=percent, **fields)
        self.progress.refresh()


def follow(
    read: Callable[[], JobProgress],
    url: str,
    job_id: int,
    on_progress: Callable[[JobProgress], None],
    *,
    refresh_s: float = 0.5,
    between: Callable[[], None] | None = None,
) -> JobProgress:
    """Read the job's progress until it is finished; returns the final reading.

    An event for the job (NOTIFY) wakes the loop at once, so a phase change or the end shows
    without delay; between events the bars are refreshed every refresh_s (the polling fallback
    that also covers a lost connection).
    """
    with Listener(url).open() as listener:
        while True:
            progress = read()
            on_progress(progress)
            if progress.finished:
                return progress
            if between is not None:
                between()
            listener.wait(job_id, refresh_s)
