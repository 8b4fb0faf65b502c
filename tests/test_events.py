"""The event log: every state change has its event, in order, exactly once, and is NOTIFYed."""
from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg

from conftest import wait_for
from db.events import CHANNEL, EventLog
from db.models import Event
from db.repository import JobOptions, NewFile, Repository
from db.transitions import Transitions
from photos import save_near_copy, save_photos

LIFECYCLE = ["job_submitted", "phase_started", "job_started", "phase_completed", "phase_started",
             "phase_completed", "phase_started", "phase_completed", "phase_started", "phase_completed",
             "job_completed"]


def lifecycle(events: list[Event]) -> list[tuple[str, str | None]]:
    return [(e.kind, e.phase) for e in events if e.kind not in ("file_failed", "phase_progress")]


def test_every_state_change_of_a_real_job_has_its_event_in_order_exactly_once(
    start_workers, repo: Repository, tmp_path: Path
) -> None:
    pics = tmp_path / "pics"
    photos = save_photos(pics, range(40))
    save_near_copy(photos[3], pics / "copy-3.jpg")
    (pics / "notes.jpg").write_text("not a picture")
    (pics / "empty.jpg").write_bytes(b"")
    names = sorted(pics.iterdir())
    files = [NewFile(str(p), p.stat().st_size, p.stat().st_mtime) for p in names]
    files.append(NewFile(str(pics / "locked.jpg"), 0, 0.0, "permission denied"))
    with psycopg.connect(repo.url, autocommit=True) as listen:
        listen.execute(f"LISTEN {CHANNEL}")
        job = repo.submit([str(pics)], files, JobOptions(batch_size=3))
        start_workers(2)
        wait_for(lambda: repo.progress(job).finished, timeout=120)
        notes = [json.loads(n.payload) for n in listen.notifies(timeout=1.0)]
    events = EventLog(repo).after(job)
    assert [e.id for e in events] == sorted({e.id for e in events}), "ids must be increasing and unique"
    assert [k for k, _ in lifecycle(events)] == LIFECYCLE
    assert [p for k, p in lifecycle(events) if k.startswith("phase_")] == [
        "hash", "hash", "compare", "compare", "cluster", "cluster", "finalize", "finalize"]
    failed = [e.data["path"] for e in events if e.kind == "file_failed"]
    assert sorted(failed) == sorted(f.path for f in repo.failed_files(job))
    assert sorted(failed) == sorted([str(pics / "notes.jpg"), str(pics / "empty.jpg"), str(pics / "locked.jpg")])
    assert all(e.data["error"] for e in events if e.kind == "file_failed")
    completed = {e.phase: e.data for e in events if e.kind == "phase_completed"}
    for ph in repo.progress(job).phases:
        assert completed[ph.name] == {"total": ph.total, "done": ph.done, "failed": ph.failed,
                                      "skipped": ph.skipped, "fraction": 1.0}
    # Every event committed went out with NOTIFY; the newest id of each notification is an event.
    mine = [n for n in notes if n["job"] == job]
    assert mine and mine[-1]["event"] == events[-1].id
    assert {n["event"] for n in mine} <= {e.id for e in events}


def test_checkpoints_are_written_when_a_phase_moved_enough_and_enough_time_passed(repo: Repository) -> None:
    from test_progress_views import hash_rows

    job = repo.submit(["/x"], [NewFile(f"/x/{i}.jpg", 1, 0.0) for i in range(100)], JobOptions(batch_size=1))
    t = Transitions(repo)
    hash_rows(repo, job, 1)
    repo.claim(job, "hash", 1, 60.0)  # the job is running
    assert not t.checkpoint(job, min_step=0.05, min_s=0.0), "1 % is not enough"
    hash_rows(repo, job, 10)
    assert not t.checkpoint(job, min_step=0.05, min_s=3600.0), "not enough time since the phase started"
    assert t.checkpoint(job, min_step=0.05, min_s=0.0)
    assert not t.checkpoint(job, min_step=0.05, min_s=0.0), "nothing moved since the last checkpoint"
    [checkpoint] = [e for e in EventLog(repo).after(job) if e.kind == "phase_progress"]
    assert checkpoint.phase == "hash" and checkpoint.data["done"] == 11 and checkpoint.data["total"] == 100


def test_files_failed_by_lease_expiry_get_one_event_each(repo: Repository) -> None:
    files = [NewFile(f"/x/{i}.jpg", 1, 0.0) for i in range(4)]
    job = repo.submit(["/x"], files, JobOptions(batch_size=2, max_attempts=1, lease_s=0.2))
    held = repo.claim(job, "hash", 1, 0.2)
    expired = sorted(f.path for f in repo.files_of_work(held.rows[0].id))
    time.sleep(0.4)
    t = Transitions(repo)
    assert t.reclaim_expired() == [job]
    assert t.reclaim_expired() == []  # the sweep is idempotent
    failed = [e for e in EventLog(repo).after(job) if e.kind == "file_failed"]
    assert len(expired) == 2 and sorted(e.data["path"] for e in failed) == expired
    assert all("lease expired" in e.data["error"] for e in failed)
    assert repo.progress(job).phases[0].failed == 2
    assert held.rows[0].attempts == 1


def test_a_failing_row_released_for_the_last_time_fails_its_files_with_events(repo: Repository) -> None:
    job = repo.submit(["/x"], [NewFile(f"/x/{i}.jpg", 1, 0.0) for i in range(2)],
                      JobOptions(batch_size=2, max_attempts=1))
    claim = repo.claim(job, "hash", 1, 60.0)
    repo.release(claim, claim.rows[0].id, "RuntimeError: decoder crashed")
    repo.release(claim, claim.rows[0].id, "RuntimeError: decoder crashed")  # redelivered: no-op
    failed = [e.data for e in EventLog(repo).after(job) if e.kind == "file_failed"]
    assert [f["path"] for f in failed] == ["/x/0.jpg", "/x/1.jpg"]
    assert {f["error"] for f in failed} == {"RuntimeError: decoder crashed"}


def test_events_cli_prints_the_log_as_json_lines_and_refuses_an_unknown_job(run_cli, repo: Repository) -> None:
    job = repo.submit(["/empty"], [], JobOptions())
    done = run_cli("events", str(job), "--json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(e["kind"], e["phase"]) for e in lines] == [("job_submitted", None), ("phase_started", "hash")]
    assert lines[0]["data"] == {"roots": ["/empty"], "files": 0}
    after = run_cli("events", str(job), "--after", str(lines[0]["id"]))
    assert after.stdout.count("\n") == 1 and "phase_started" in after.stdout
    for command in (["events", "987654"], ["events", "987654", "--follow"]):
        missing = run_cli(*command)
        assert missing.returncode == 2 and missing.stderr.strip() == "neardup: job 987654: no such job"
