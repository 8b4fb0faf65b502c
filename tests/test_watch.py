"""`neardup watch`, `jobs` and the live display; `neardup bench progress` prints its contract."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from conftest import cli_env
from db.control import JobControl
from db.models import JobProgress, PhaseProgress
from db.repository import JobOptions, Repository
from neardup.live import ProgressDisplay, one_line
from test_workers import photo_files


def test_watch_follows_a_job_to_the_end_and_exits_with_its_code(
    start_workers, repo: Repository, tmp_path: Path, database_url: str
) -> None:
    files = photo_files(tmp_path / "pics", 80, copies=2)
    job = repo.submit([str(tmp_path / "pics")], files, JobOptions(batch_size=2))
    watch = subprocess.Popen([sys.executable, "-m", "neardup", "watch", str(job), "--json"],
                             env=cli_env(database_url, tmp_path / "home"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    start_workers(2)
    out, err = watch.communicate(timeout=180)
    assert watch.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    percents = [line["percent"] for line in lines]
    assert lines[0]["status"] in ("pending", "running") and lines[-1]["status"] == "completed"
    assert percents[-1] == 100 and all(b >= a for a, b in zip(percents, percents[1:]))
    assert len(lines) >= 3


def test_watching_a_cancelled_job_ends_at_once_with_exit_code_1(run_cli, repo: Repository) -> None:
    job = repo.submit(["/x"], [], JobOptions())
    JobControl(repo).cancel(job)
    done = run_cli("watch", str(job))
    assert done.returncode == 1
    assert done.stdout.startswith(f"job {job} cancelled 0.00%")


def test_jobs_lists_the_newest_first_and_can_show_only_active_ones(run_cli, repo: Repository) -> None:
    first = repo.submit(["/a"], [], JobOptions())
    second = repo.submit(["/b"], [], JobOptions())
    JobControl(repo).cancel(first)
    listed = json.loads(run_cli("jobs", "--json").stdout)
    assert [j["job"] for j in listed] == [second, first]
    active = json.loads(run_cli("jobs", "--active", "--json").stdout)
    assert [j["job"] for j in active] == [second]


def test_the_live_display_shows_a_bar_per_phase_with_rate_and_eta() -> None:
    phases = (PhaseProgress("hash", "completed", 100, 98, 1, 1, 0, 1.0),
              PhaseProgress("compare", "running", 5000, 2000, 0, 0, 0, 0.4, 2900, 100, 250.0, 12.0),
              PhaseProgress("cluster", "pending", 0, 0, 0, 0, 0, 0.0))
    progress = JobProgress(7, "running", "compare", 61.5, None, phases, elapsed_s=30.0, eta_s=19.0)
    console = Console(record=True, force_terminal=True, width=140)
    with ProgressDisplay(console, enabled=True) as display:
        display.update(progress)
    text = console.export_text()
    assert "overall" in text and "61.50%" in text and "eta 0:19" in text
    assert "100/100 files  1 failed  1 skipped" in text
    assert "2,000/5,000 pairs  250 pairs/s  eta 0:12" in text
    assert "0/0 groups  pending" in text
    assert one_line(progress) == "job 7 running 61.50% | compare 2,000/5,000 pairs  250 pairs/s  eta 0:12"


def test_bench_progress_prints_its_figures_as_json(run_cli) -> None:
    done = run_cli("bench", "progress", "--json", "--rows", "3000", "--photos", "20", "--workers", "1",
                   timeout=400)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"work_rows", "progress_query_ms", "overhead_ratio"} <= set(result)
    assert result["work_rows"] == 3000
    assert result["progress_query_ms"] > 0 and 0 <= result["overhead_ratio"] < 1
    assert set(result["progress_query_by_state"]) == {"fresh", "half_done", "half_done_vacuumed", "all_done"}
