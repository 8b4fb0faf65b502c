"""PostgreSQL restarted in the middle of a job: workers, monitor and CLI carry on."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from conftest import cli_env, wait_for
from db import embedded
from db.migrate import upgrade
from photos import save_near_copy, save_photos


@pytest.fixture
def private_cluster(tmp_path: Path):
    home = tmp_path / "cluster-home"
    cluster = embedded.ensure_running(home, dbname="restart")
    upgrade(cluster.url("restart"))
    try:
        yield home, cluster
    finally:
        embedded.destroy(home)


def hashed_count(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute("SELECT count(*) FROM file WHERE status = 'hashed'").fetchone()[0]
    except psycopg.OperationalError:
        return 0


def test_a_postgresql_restart_mid_job_does_not_stop_the_job_or_change_its_groups(
    private_cluster, tmp_path: Path
) -> None:
    home, cluster = private_cluster
    url = cluster.url("restart")
    pics = tmp_path / "pics"
    photos = save_photos(pics, range(240), size=(1280, 960))
    for i in (3, 50, 120):
        save_near_copy(photos[i], pics / f"copy-{i}.jpg")
    scan = subprocess.Popen(
        [sys.executable, "-m", "neardup", "scan", str(pics), "--workers", "2", "--json",
         "--batch-size", "2"],
        env=cli_env(url, tmp_path / "home"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # A gate holds all but the first rows (it dies with the restart), so the restart lands
    # mid-job however fast hashing is.
    gate = psycopg.connect(url)
    try:
        rows = wait_for(lambda: gate.execute("SELECT count(*) FROM work WHERE phase = 'hash'").fetchone()[0],
                        timeout=120, every=0.01)
        locked = gate.execute("SELECT id FROM work WHERE id IN (SELECT id FROM work WHERE phase = 'hash' "
                              "ORDER BY id OFFSET 10) FOR UPDATE SKIP LOCKED").fetchall()
        assert len(locked) >= rows - 20
        wait_for(lambda: hashed_count(url) >= 10, timeout=120, every=0.05)
        embedded.restart(home)
    finally:
        gate.close()
    assert hashed_count(url) < 243
    out, err = scan.communicate(timeout=300)
    assert scan.returncode == 0, err
    result = json.loads(out)
    assert result["status"] == "completed" and result["failed"] == []
    assert result["files"] == 243
    expected = sorted(sorted([str(photos[i]), str(pics / f"copy-{i}.jpg")]) for i in (3, 50, 120))
    assert sorted(g["members"] for g in result["groups"]) == expected


def test_a_pooled_connection_the_server_ended_is_replaced_at_checkout(database_url: str) -> None:
    from db.connect import make_pool

    with make_pool(database_url, max_size=1) as pool:
        with pool.connection() as conn:
            ended = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        with psycopg.connect(database_url, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (ended,))
        wait_for(lambda: _backend_gone(database_url, ended), timeout=10)
        with pool.connection() as conn:
            assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] != ended


def test_checking_out_a_quiet_pooled_connection_sends_the_server_nothing(database_url: str) -> None:
    from db.connect import make_pool

    with make_pool(database_url, max_size=1) as pool:
        with pool.connection() as conn:
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        with pool.connection():
            pass
        with psycopg.connect(database_url, autocommit=True) as other:
            last = other.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]
    assert last == "COMMIT"  # the first checkout's end: the second sent nothing, not even a ping


def _backend_gone(url: str, pid: int) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0] == 0
