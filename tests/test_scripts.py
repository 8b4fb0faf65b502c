"""The admin scripts in scripts/: psql over the same views and statements, against a real database."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT
from db.control import JobControl
from db.events import EventLog
from db.repository import PHASES, JobOptions, NewFile, Repository
from test_progress_views import hash_rows

SCRIPTS = ["progress.sh", "jobs.sh", "failed-files.sh", "requeue-stale.sh", "cancel.sh"]


def script(name: str, *args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / "scripts" / name), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DATABASE_URL": url})


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_explains_itself_with_help(name: str, database_url: str) -> None:
    done = script(name, "--help", url=database_url)
    assert done.returncode == 0
    assert done.stdout.startswith(f"usage: scripts/{name}") and "example:" in done.stdout


@pytest.mark.parametrize("name", ["progress.sh", "failed-files.sh", "cancel.sh"])
def test_a_script_given_an_unknown_or_bad_job_says_so_in_one_line(name: str, database_url: str) -> None:
    done = script(name, "987654", url=database_url)
    assert (done.returncode, done.stderr) == (2, f"{name}: job 987654: no such job\n")
    bad = script(name, "x1", url=database_url)
    assert (bad.returncode, bad.stderr) == (2, f"{name}: job must be a number, got 'x1'\n")


def test_progress_and_jobs_show_the_views_and_the_recount_agrees(repo: Repository, database_url: str) -> None:
    job = repo.submit(["/x"], [NewFile(f"/x/{i}.jpg", 1, 0.0) for i in range(10)], JobOptions(batch_size=2))
    hash_rows(repo, job, 2, fail_every=3)
    done = script("progress.sh", str(job), "--recount", url=database_url)
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())  # psql pads its columns
    progress = repo.progress(job)
    assert f"{job} | running | hash | {progress.percent:.2f} |" in out
    hashed = progress.phases[0]
    assert f"hash | running | {hashed.total} | {hashed.done} | {hashed.failed} |" in out
    assert hashed.failed > 0
    assert out.count(" | t ") == len(PHASES) and " | f " not in out  # the recount matches, every phase
    listed = script("jobs.sh", "--active", url=database_url)
    assert listed.returncode == 0 and f"{job} | running | hash" in " ".join(listed.stdout.split())


def test_failed_files_lists_path_and_reason_as_csv(repo: Repository, database_url: str) -> None:
    job = repo.submit(["/x"], [NewFile("/x/a.jpg", 1, 0.0), NewFile("/x/b, c.jpg", 0, 0.0, "permission denied")],
                      JobOptions())
    done = script("failed-files.sh", str(job), url=database_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["path,error", '"/x/b, c.jpg",permission denied']


def test_requeue_stale_returns_expired_leases_at_once(repo: Repository, database_url: str) -> None:
    job = repo.submit(["/x"], [NewFile(f"/x/{i}.jpg", 1, 0.0) for i in range(4)], JobOptions(batch_size=2))
    live = repo.claim(job, "hash", 1, 3600.0).rows[0]
    lost = repo.claim(job, "hash", 1, 0.2).rows[0]
    time.sleep(0.4)
    done = script("requeue-stale.sh", url=database_url)
    assert (done.returncode, done.stdout) == (0, f"expired leases returned for job(s): {job}\n")
    with repo.pool.connection() as conn:
        status = dict(conn.execute("SELECT id, status FROM work WHERE id IN (%s, %s)", (live.id, lost.id)).fetchall())
    assert status == {live.id: "running", lost.id: "pending"}
    assert script("requeue-stale.sh", url=database_url).stdout == "no expired leases\n"


def test_cancel_script_runs_the_same_statement_as_the_cli(repo: Repository, database_url: str) -> None:
    job = repo.submit(["/x"], [NewFile(f"/x/{i}.jpg", 1, 0.0) for i in range(6)], JobOptions(batch_size=2))
    done = script("cancel.sh", str(job), url=database_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"job {job} cancelled (6 units of work not started); `neardup resume {job}` continues it\n"
    assert JobControl(repo).status(job) == ("cancelled", "hash")
    assert [e.kind for e in EventLog(repo).after(job)][-1] == "job_cancelled"
    again = script("cancel.sh", str(job), url=database_url)
    assert (again.returncode, again.stdout) == (0, f"job {job} was already cancelled\n")


def test_scripts_name_only_queries_that_exist(tmp_path: Path) -> None:
    from db.queries import queries

    named = set(queries())
    for name in SCRIPTS:
        text = (ROOT / "scripts" / name).read_text()
        for word in text.split("named_query ")[1:]:
            assert word.split(")")[0].strip() in named
