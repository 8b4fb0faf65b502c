"""Cancel and resume: a stopped job continues from its rows and ends with the same groups."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from conftest import cli_env, wait_for
from db.control import JobControl
from db.queries import q
from db.repository import JobOptions, Repository
from neardup.commands import verify_options
from photos import save_near_copy, save_photos
from test_workers import photo_files


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        os.killpg(w.pid, signal.SIGTERM)
    for w in workers:
        w.wait(timeout=60)


def group_sets(repo: Repository, job: int) -> list[list[str]]:
    return sorted(sorted(g.members) for g in repo.groups(job))


def finished_rows(repo: Repository, job: int) -> dict[int, tuple]:
    with repo.pool.connection() as conn:
        rows = conn.execute("SELECT id, attempts, finished_at FROM work "
                            "WHERE job_id = %s AND status = 'done'", (job,)).fetchall()
    return {r[0]: r[1:] for r in rows}


def test_cancel_then_resume_gives_the_same_groups_as_an_uninterrupted_run_without_redoing_work(
    start_workers, run_cli, repo: Repository, tmp_path: Path, database_url: str
) -> None:
    files = photo_files(tmp_path / "pics", 400, copies=4)
    opts = JobOptions(batch_size=2, block_size=32, **verify_options(None))  # as the CLI submits it
    reference = repo.submit([str(tmp_path / "pics")], files, opts)
    workers = start_workers(2)
    wait_for(lambda: repo.progress(reference).finished, timeout=180)
    assert repo.progress(reference).status == "completed"
    stop(workers)

    # Submitted as a user does: `neardup submit` arms the monitor. No worker runs yet, so every
    # hash row is still pending when a gate locks all but the first ten: the workers can finish
    # those and nothing else, so the cancel lands mid-phase however fast hashing is.
    done = run_cli("submit", str(tmp_path / "pics"), "--batch-size", "2", "--block-size", "32", "--rehash")
    assert done.returncode == 0, done.stderr
    job = int(done.stdout)
    with psycopg.connect(database_url) as gate:
        # (FOR UPDATE beside OFFSET would lock the skipped rows too: pick the rows first.)
        locked = gate.execute("SELECT id FROM work WHERE id IN (SELECT id FROM work WHERE job_id = %s "
                              "AND phase = 'hash' ORDER BY id OFFSET 10) FOR UPDATE", (job,)).fetchall()
        assert locked and repo.progress(job).phases[0].done == 0
        start_workers(2)
        wait_for(lambda: repo.progress(job).phases[0].done >= 4, timeout=120, every=0.01)
        # The cancel statement itself runs behind the gate (it would wait for the gate's locks).
        row = gate.execute(q("cancel_job"), {"job_id": job}).fetchone()
        assert row is not None and row[1] > 0
    assert JobControl(repo).cancel(job) is None, "a second cancel finds nothing to do"
    # Running rows finish (or are abandoned); nothing new is claimed once they have.
    wait_for(lambda: repo.progress(job).phases[0].running == 0, timeout=60)
    stopped = repo.progress(job)
    assert stopped.status == "cancelled" and stopped.phases[0].cancelled > 0
    kept = finished_rows(repo, job)
    assert kept and stopped.percent < 100

    # The monitor chain ended with no job left active: `resume` re-arms it and sends tickets.
    done = run_cli("resume", str(job), "--detach")
    assert done.returncode == 0, done.stderr
    assert f"job {job} was cancelled; resumed in its hash phase" in done.stderr
    wait_for(lambda: repo.progress(job).finished, timeout=180)
    assert repo.progress(job).status == "completed"
    after = finished_rows(repo, job)
    assert all(after[i] == kept[i] for i in kept), "a row finished before the cancel was worked again"
    assert group_sets(repo, job) == group_sets(repo, reference)
    assert len(group_sets(repo, job)) == 4


def test_ctrl_c_during_scan_leaves_a_cancelled_job_that_resume_finishes(
    run_cli, repo: Repository, tmp_path: Path, database_url: str
) -> None:
    pics = tmp_path / "pics"
    photos = save_photos(pics, range(300), size=(1024, 768))
    save_near_copy(photos[7], pics / "copy-7.jpg")
    scan = subprocess.Popen([sys.executable, "-m", "neardup", "scan", str(pics), "--workers", "2",
                             "--batch-size", "2", "--json"],
                            env=cli_env(database_url, tmp_path / "home"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    # Ctrl-C as soon as the job exists: before its workers are up, or while they start, it must
    # cancel all the same (waiting for some hashing instead races a fast machine to the end).
    wait_for(repo.jobs, timeout=120, every=0.01)
    scan.send_signal(signal.SIGINT)
    out, err = scan.communicate(timeout=120)
    job = repo.jobs()[0].job
    assert scan.returncode == 130, err
    assert f"neardup resume {job}" in err
    assert repo.progress(job).status == "cancelled"
    done = run_cli("resume", str(job), "--workers", "2", "--json", timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "completed" and result["files"] == 301
    assert [sorted(g["members"]) for g in result["groups"]] == [sorted([str(photos[7]), str(pics / "copy-7.jpg")])]


@pytest.mark.parametrize("command", [["cancel", "987654"], ["resume", "987654"], ["watch", "987654"],
                                     ["status", "987654"]])
def test_every_command_taking_a_job_refuses_an_unknown_one_in_one_line(run_cli, command: list[str]) -> None:
    done = run_cli(*command)
    assert done.returncode == 2
    assert done.stderr.strip() == "neardup: job 987654: no such job"


def test_a_finished_job_is_neither_cancelled_nor_resumed(run_cli, repo: Repository) -> None:
    job = repo.submit(["/empty"], [], JobOptions())
    with repo.pool.connection() as conn:
        conn.execute("UPDATE job SET status = 'completed', phase = 'done' WHERE id = %s", (job,))
    for command in ("cancel", "resume"):
        done = run_cli(command, str(job))
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and f"job {job}: completed" in done.stderr


CTRL_C_AT = """
import sys
from db.repository import Repository
name = sys.argv[2]
raw = Repository.__dict__[name]
real = raw.__func__ if isinstance(raw, staticmethod) else raw

def interrupted_call(*args, **kwargs):
    real(*args, **kwargs)
    raise KeyboardInterrupt  # a Ctrl-C landing right after it returns

setattr(Repository, name, staticmethod(interrupted_call) if isinstance(raw, staticmethod) else interrupted_call)
from neardup.cli import main
sys.exit(main(["scan", sys.argv[1], "--workers", "2", "--json"]))
"""


@pytest.mark.parametrize("after", ["submit", "_insert_job"])
def test_a_ctrl_c_on_either_side_of_the_submits_commit_leaves_no_job_running(
    after: str, repo: Repository, tmp_path: Path, database_url: str
) -> None:
    pics = tmp_path / "pics"
    save_photos(pics, range(3), size=(320, 240))
    done = subprocess.run([sys.executable, "-c", CTRL_C_AT, str(pics), after],
                          env=cli_env(database_url, tmp_path / "home"), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 130, done.stderr
    jobs = repo.jobs()
    if after == "submit":
        # Committed, then interrupted before anyone watched it: cancelled, and the user told how to go on.
        assert [j.status for j in jobs] == ["cancelled"]
        assert f"neardup resume {jobs[0].job}" in done.stderr
    else:
        # Interrupted inside the submit's transaction: it rolled back, there is no job to cancel.
        assert jobs == []
