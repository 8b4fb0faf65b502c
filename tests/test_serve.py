"""`neardup serve`: JSON progress, SSE that resumes exactly, nothing kept for a dropped client."""
from __future__ import annotations

import socket
import time
from pathlib import Path

from conftest import wait_for
from db.events import EventLog
from db.repository import PHASES, JobOptions, NewFile, Repository
from served import SSE, Server, server  # noqa: F401 - the fixture
from test_workers import photo_files


def serve_connections(repo: Repository) -> dict[str, int]:
    with repo.pool.connection() as conn:
        rows = conn.execute("SELECT application_name, count(*) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND application_name LIKE 'neardup-serve%%' "
                            "GROUP BY 1").fetchall()
    return dict(rows)


def test_the_json_endpoints_read_the_progress_view(server: Server, repo: Repository) -> None:
    job = repo.submit(["/x"], [NewFile("/x/a.jpg", 1, 0.0)], JobOptions())
    status, body = server.get(f"/jobs/{job}")
    assert status == 200 and body["job"] == job and body["status"] == "pending"
    assert [p["name"] for p in body["phases"]] == list(PHASES)
    assert body["phases"][0]["total"] == 1
    status, listing = server.get("/jobs")
    assert status == 200 and [j["job"] for j in listing] == [job]
    assert server.get("/jobs/987654") == (404, {"error": "job 987654: no such job"})
    status, page = server.get(f"/watch/{job}")
    assert status == 200 and "EventSource" in page


def test_a_dropped_sse_connection_resumes_with_exactly_the_missed_events(
    server: Server, start_workers, repo: Repository, tmp_path: Path
) -> None:
    files = photo_files(tmp_path / "pics", 60, copies=2)
    files.append(NewFile(str(tmp_path / "gone.jpg"), 1, 0.0))
    job = repo.submit([str(tmp_path)], files, JobOptions(batch_size=2, block_size=16))
    first = SSE(server, f"/jobs/{job}/events")
    seen: list[int] = []
    start_workers(2)
    for m in first.messages():
        if "id" in m:
            seen.append(m["id"])
            assert m["data"]["id"] == m["id"] and m["event"] == m["data"]["kind"]
        if len(seen) == 3:
            break
    first.close()
    wait_for(lambda: server.get("/healthz")[1]["streams"] == 0, timeout=10)
    wait_for(lambda: repo.progress(job).finished, timeout=120)
    second = SSE(server, f"/jobs/{job}/events", last_event_id=seen[-1])
    rest, end = [], None
    for m in second.messages():
        if "id" in m:
            rest.append(m["id"])
        elif m.get("event") == "end":
            end = m["data"]
            break
    second.close()
    every = [e.id for e in EventLog(repo).after(job)]
    assert len(every) > 8
    assert seen + rest == every, "events were lost or repeated across the reconnect"
    assert end == {"job": job, "status": "completed"}


def test_clients_that_disconnect_mid_job_cost_the_server_nothing_that_lasts(
    server: Server, repo: Repository
) -> None:
    job = repo.submit(["/x"], [NewFile("/x/a.jpg", 1, 0.0)], JobOptions())
    wait_for(lambda: serve_connections(repo).get("neardup-serve-listen") == 1, timeout=20)
    for _ in range(3):
        clients = [SSE(server, f"/jobs/{job}/events") for _ in range(12)]
        for c in clients:
            next(m for m in c.messages() if m.get("event") == "progress")
        assert server.get("/healthz")[1]["streams"] == 12
        for c in clients:
            c.close()
        wait_for(lambda: server.get("/healthz")[1]["streams"] == 0, timeout=20)
    time.sleep(0.5)
    held = serve_connections(repo)
    # One listening connection for the whole server, and no more pooled ones than the pool holds.
    assert held.get("neardup-serve-listen") == 1 and held.get("neardup-serve", 0) <= 4, held
    assert server.proc.poll() is None


def test_serve_on_a_taken_port_is_a_clear_one_line_error(run_cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = run_cli("serve", "--port", str(port), timeout=60)
    assert done.returncode == 2
    assert done.stderr == f"neardup: cannot listen on 127.0.0.1:{port}: address already in use\n"
