"""The workers `neardup scan` starts: restarted when they die, stopped with a reason when they refuse."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import admin, wait_for, with_db
from neardup.workers import LocalWorkers, WorkerError


@pytest.fixture
def empty_database(server_url: str) -> Iterator[str]:
    name = f"neardup_empty_{uuid.uuid4().hex[:10]}"
    with admin(server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield with_db(server_url, name)
    with admin(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_worker_refuses_a_database_without_the_schema_and_says_why(empty_database: str) -> None:
    done = subprocess.run([sys.executable, "-m", "dramatiq", "actors", "-p", "1", "-t", "1"],
                          env={**os.environ, "DATABASE_URL": empty_database},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert "run `neardup db upgrade` first" in done.stderr


def test_a_local_worker_that_dies_is_restarted(database_url: str, tmp_path: Path) -> None:
    workers = LocalWorkers(2, database_url, tmp_path / "logs", threads=1)
    with workers:
        victim = workers.procs[0]
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        notes = workers.supervise()
        assert notes == [f"worker 0 exited with code {victim.returncode}; restarting it"]
        assert workers.procs[0] is not victim and workers.procs[0].poll() is None
        assert workers.procs[1].poll() is None
    assert all(p.poll() is not None for p in workers.procs)


def test_a_local_worker_that_refuses_to_start_ends_the_scan_with_its_reason(
    empty_database: str, tmp_path: Path
) -> None:
    workers = LocalWorkers(1, empty_database, tmp_path / "logs", threads=1)
    with workers:
        wait_for(lambda: workers.procs[0].poll() is not None, timeout=60)
        with pytest.raises(WorkerError, match="run `neardup db upgrade` first"):
            workers.supervise()
