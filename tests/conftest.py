"""Real PostgreSQL for every test: one database per test, cloned from a template migrated once.

The server is DATABASE_URL's when it answers; otherwise a private embedded cluster made for this
session (so the suite also passes on a machine with no PostgreSQL running).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from db.connect import DatabaseUnreachable, check_reachable
from db.migrate import upgrade
from db.repository import Repository

ROOT = Path(__file__).resolve().parents[1]
# shared/ sits beside the clone (CI) or beside the folder of worktrees (a developer's machine).
EVAL = next((d / "shared" / "eval" for d in ROOT.parents if (d / "shared" / "eval").is_dir()),
            ROOT.parent / "shared" / "eval")


def with_db(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def admin(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("DATABASE_URL", "")
    if url:
        try:
            check_reachable(url, timeout_s=3)
            yield with_db(url, "postgres")
            return
        except DatabaseUnreachable as e:
            print(f"\n{e}; the tests use an embedded cluster instead", file=sys.stderr)
    from db import embedded

    home = tmp_path_factory.mktemp("embedded-home")
    cluster = embedded.ensure_running(home)
    try:
        yield cluster.url("postgres")
    finally:
        embedded.destroy(home)


@pytest.fixture(scope="session")
def template_db(server_url: str) -> Iterator[str]:
    name = f"neardup_tpl_{uuid.uuid4().hex[:10]}"
    with admin(server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    upgrade(with_db(server_url, name))
    try:
        yield name
    finally:
        with admin(server_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(server_url: str, template_db: str) -> Iterator[str]:
    name = f"neardup_test_{uuid.uuid4().hex[:10]}"
    with admin(server_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    try:
        yield with_db(server_url, name)
    finally:
        with admin(server_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def repo(database_url: str) -> Iterator[Repository]:
    r = Repository(database_url)
    try:
        yield r
    finally:
        r.close()


def cli_env(database_url: str, home: Path) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "XDG_DATA_HOME": str(home),
            "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def run_cli(database_url: str, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real `neardup` command against this test's database."""

    def run(*args: str, timeout: float = 180, url: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "neardup", *args], capture_output=True, text=True,
                              env=cli_env(url or database_url, tmp_path / "home"), timeout=timeout)

    return run


@pytest.fixture
def start_workers(database_url: str, tmp_path: Path) -> Iterator[Callable[..., list[subprocess.Popen[bytes]]]]:
    """Start real `dramatiq actors` processes on this test's database; stopped at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(n: int = 1, url: str | None = None) -> list[subprocess.Popen[bytes]]:
        env = cli_env(url or database_url, tmp_path / "home")
        # Each worker's log beside the test's files: a failure in CI can be read there.
        logs = [open(tmp_path / f"worker-{len(procs) + i}.log", "ab") for i in range(n)]
        new = [subprocess.Popen([sys.executable, "-m", "dramatiq", "actors", "-p", "1", "-t", "2"],
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True) for log in logs]
        for log in logs:
            log.close()
        procs.extend(new)
        return new

    yield start
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, 15)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()


def wait_for(predicate: Callable[[], object], timeout: float = 60, every: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    if not EVAL.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{EVAL} is missing: CI must run with shared/ beside the clone")
        pytest.skip(f"{EVAL} is not here")
    return EVAL


def copy_tree(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst
