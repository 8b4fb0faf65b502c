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


# Stands for a dramatiq command: counts the SIGTERMs it gets (dramatiq takes a second one as "kill
# now") and takes half a second to wind down after the first, as a worker finishing its row would.
SIGTERM_COUNTER = """
import os, signal, sys, time
seen = []
signal.signal(signal.SIGTERM, lambda *_: seen.append(time.monotonic()))
open(sys.argv[1] + ".ready", "w").close()
while not seen:
    time.sleep(0.01)
time.sleep(0.5)
with open(sys.argv[1], "w") as out:
    out.write(str(len(seen)))
"""


class CountingWorkers(LocalWorkers):
    def __init__(self, count: int, log_dir: Path) -> None:
        super().__init__(count, "postgresql://unused", log_dir)
        self.started: list[subprocess.Popen[bytes]] = []

    def command(self) -> list[str]:
        return [sys.executable, "-c", SIGTERM_COUNTER, str(self.log_dir / f"sigterms-{len(self.started)}")]

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        proc = super()._spawn(index)
        self.started.append(proc)
        return proc


def test_workers_asked_to_stop_early_get_one_sigterm_however_stop_is_called_after(tmp_path: Path) -> None:
    workers = CountingWorkers(2, tmp_path)
    with workers:
        wait_for(lambda: all((tmp_path / f"sigterms-{k}.ready").exists() for k in range(2)), timeout=30)
        workers.request_stop()
        workers.request_stop()  # asking twice changes nothing
    # __exit__ (stop) waited for both, and sent neither a second SIGTERM.
    assert all(p.returncode == 0 for p in workers.started)
    assert [(tmp_path / f"sigterms-{k}").read_text() for k in range(2)] == ["1", "1"]
