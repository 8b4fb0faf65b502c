"""A private PostgreSQL cluster neardup starts for itself when no DATABASE_URL is set.

Created once (initdb), started on demand and left running for the next run; everything about it
is recorded in ``<home>/cluster.json``. Calls on one home are serialised by a flock.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors, sql

from db import pg_server as pg
from db.pg_server import EmbeddedError

__all__ = ["Cluster", "EmbeddedError", "data_home", "destroy", "ensure_running", "restart", "status",
           "stop"]

STATE_FILE = "cluster.json"
_MAX_SOCKET_DIR = 90


@dataclass(frozen=True)
class Cluster:
    home: Path
    datadir: Path
    port: int
    socket_dir: Path

    def url(self, dbname: str = "neardup") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"


def data_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and os.path.isabs(xdg):  # the XDG spec says relative values must be ignored
        return Path(xdg) / "neardup"
    return (Path(env["HOME"]) if env.get("HOME") else Path.home()) / ".local" / "share" / "neardup"


def ensure_running(home: Path | None = None, dbname: str = "neardup") -> Cluster:
    home = _norm(home)
    with _locked(home):
        state = _read_state(home)
        if state is None or not state.get("initialised"):
            state = _initialise(home, state)
        cluster = _cluster(home, state)
        conn = _connect_if_running(cluster)
        if conn is None:
            cluster = _start(home, state)
            conn = _connect(cluster)
        with conn:
            _ensure_database(conn, dbname)
        return cluster


def status(home: Path | None = None) -> Cluster | None:
    state = _read_state(home := _norm(home))
    if state is None or not state.get("initialised"):
        return None
    if (conn := _connect_if_running(cluster := _cluster(home, state))) is None:
        return None
    conn.close()
    return cluster


def stop(home: Path | None = None) -> bool:
    if _read_state(home := _norm(home)) is None:
        return False  # never created here: don't leave a lock file behind either
    with _locked(home):
        state = _read_state(home)
        return state is not None and pg.stop_server(state)


def restart(home: Path | None = None) -> Cluster:
    with _locked(home := _norm(home)):
        state = _read_state(home)
        if state is None or not state.get("initialised"):
            raise EmbeddedError(f"no neardup cluster in {home}: call ensure_running() first")
        # Not `pg_ctl restart`: it takes no -l, and our start path re-checks the port is still ours.
        pg.stop_server(state)
        return _start(home, state)


def destroy(home: Path | None = None) -> None:
    """Stop the cluster and delete its data, socket dir, log and record (the lock file stays)."""
    home = _norm(home)
    datadir, socket_dir, logfile = _layout(home)
    if _read_state(home) is None and not datadir.exists():
        return
    with _locked(home):
        # Without a record, fall back to the default layout so an orphaned cluster can be cleared.
        state = _read_state(home) or {"datadir": datadir, "socket_dir": socket_dir, "logfile": logfile}
        pg.stop_server(state)
        for key in ("datadir", "socket_dir"):
            shutil.rmtree(state[key], ignore_errors=True)
        Path(state["logfile"]).unlink(missing_ok=True)
        if pg.as_root():
            shutil.rmtree(pg.ROOT_BASE / _digest(home), ignore_errors=True)
        (home / STATE_FILE).unlink(missing_ok=True)


def _norm(home: Path | None) -> Path:
    return (data_home() if home is None else Path(home)).expanduser().resolve()



def _digest(home: Path) -> str:
    return hashlib.sha256(str(home).encode()).hexdigest()[:12]


def _layout(home: Path) -> tuple[Path, Path, Path]:
    """(datadir, socket_dir, logfile) for a new cluster in `home`."""
    if pg.as_root():
        base = pg.ROOT_BASE / _digest(home)
        return base / "pgdata", base / "run", base / "logfile"
    socket_dir = home / "run"
    if len(str(socket_dir)) > _MAX_SOCKET_DIR:
        socket_dir = Path(tempfile.gettempdir()) / f"neardup-{os.getuid()}-{_digest(home)}"
    return home / "pgdata", socket_dir, home / "logfile"


def _read_state(home: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((home / STATE_FILE).read_text())
        return state
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise EmbeddedError(f"cannot read {home / STATE_FILE}: {exc}") from exc


def _write_state(home: Path, state: dict[str, Any]) -> None:
    # Write-then-rename so a lock-free status() never reads half a file.
    (tmp := home / f".{STATE_FILE}.tmp").write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, home / STATE_FILE)


def _cluster(home: Path, state: dict[str, Any]) -> Cluster:
    return Cluster(home, Path(state["datadir"]), int(state["port"]), Path(state["socket_dir"]))


@contextmanager
def _locked(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    # flock locks belong to the open file description, so this serialises threads too.
    with open(home / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _initialise(home: Path, old: dict[str, Any] | None) -> dict[str, Any]:
    datadir, socket_dir, logfile = _layout(home)
    if old is None and (datadir / "PG_VERSION").exists():
        raise EmbeddedError(f"{datadir} holds a cluster missing from {home / STATE_FILE}: destroy() it first")
    state: dict[str, Any] = {
        "initialised": False, "datadir": str(datadir), "socket_dir": str(socket_dir),
        "logfile": str(logfile), "port": pg.free_port(), "bindir": str(pg.find_bindir()),
    }
    # Recorded before initdb so that a crash half-way is recognised as ours and redone.
    _write_state(home, state)
    shutil.rmtree(datadir, ignore_errors=True)
    pg.prepare_dirs(state)
    done = pg.run_tool(state, "initdb", "-D", datadir, "-U", "postgres", "--auth=trust", "-E", "UTF8",
               "--locale=C", "--no-sync", timeout=300)
    if done.returncode != 0:
        raise EmbeddedError(f"initdb failed: {pg.tail(done.stderr + done.stdout)}")
    pg.write_conf(state)
    state["initialised"] = True
    _write_state(home, state)
    return state


def _connect(cluster: Cluster) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(cluster.url("postgres"), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise EmbeddedError(f"cannot connect to {cluster.url('postgres')}: {pg.tail(str(exc))}") from exc


def _connect_if_running(cluster: Cluster) -> psycopg.Connection[Any] | None:
    # A pid file can be stale (its pid reused after a reboot): only a connection settles it.
    if pg.running_port(cluster.datadir) != cluster.port:
        return None
    try:
        return _connect(cluster)
    except EmbeddedError:
        return None


def _start(home: Path, state: dict[str, Any]) -> Cluster:
    logfile = Path(state["logfile"])
    for attempt in range(2):
        if pg.bind(int(state["port"])) is None:
            state["port"] = pg.free_port()
            pg.write_conf(state)
            _write_state(home, state)
        pg.prepare_dirs(state)
        # Only this attempt's log lines explain this attempt's failure.
        offset = logfile.stat().st_size if logfile.exists() else 0
        done = pg.run_tool(state, "pg_ctl", "-D", state["datadir"], "-l", logfile, "-w", "-t", "30", "start")
        if done.returncode == 0:
            return _cluster(home, state)
        # Someone may have taken the port between our check and the server's bind: retry once.
        if attempt == 1 or pg.bind(int(state["port"])) is not None:
            break
    why = pg.tail(pg.read_log(logfile, offset), done.stderr)
    raise EmbeddedError(f"PostgreSQL failed to start (log {logfile}): {why}")


def _ensure_database(conn: psycopg.Connection[Any], dbname: str) -> None:
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
        return
    try:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    except (errors.DuplicateDatabase, errors.UniqueViolation):
        pass  # created meanwhile by a client that does not take our lock

