"""Driving PostgreSQL's own tools for the embedded cluster: binaries, pg_ctl, ports, config, logs.

As root every tool runs as the `postgres` user (PostgreSQL refuses root).
"""
from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any


def as_root() -> bool:
    return os.geteuid() == 0


# As root the data must live where the `postgres` user can reach it: /root is mode 700.
ROOT_BASE = Path("/var/lib/neardup")
PG_USER = "postgres"
CONF_MARK = "# --- neardup embedded cluster: managed block, rewritten by neardup ---"
# sun_path holds 107 bytes and PostgreSQL appends "/.s.PGSQL.NNNNN" to the directory.
class EmbeddedError(RuntimeError):
    """The private cluster could not be set up or driven; the message is one human line."""


def has_tools(bindir: Path) -> bool:
    return all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres"))


def find_bindir(recorded: str | None = None) -> Path:
    # The recorded bindir wins: a data directory only runs under its own major version.
    if recorded and has_tools(Path(recorded)):
        return Path(recorded)
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True,
                         key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)])
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    if found := next((c for c in candidates if has_tools(c)), None):
        return found
    if as_root():  # pgserver would add a system user when run as root: ask for a real install
        raise EmbeddedError("no PostgreSQL binaries found: install PostgreSQL (apt-get install postgresql)")
    try:
        from pgserver._commands import POSTGRES_BIN_PATH  # optional wheel shipping the binaries
    except ImportError as exc:
        raise EmbeddedError(
            "no PostgreSQL binaries found: install PostgreSQL or `pip install pgserver`") from exc
    return Path(POSTGRES_BIN_PATH)


def run_tool(state: dict[str, Any], tool: str, *args: str | Path,
        timeout: float = 90) -> subprocess.CompletedProcess[str]:
    cmd = [str(find_bindir(state.get("bindir")) / tool), *map(str, args)]
    if as_root():  # PostgreSQL refuses to run as root
        cmd = ["runuser", "-u", PG_USER, "--", *cmd]
    # PG* variables (PGDATA, PGPORT, ...) from the user's shell must not steer our cluster.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    try:
        # cwd=/ because the postgres user may not be able to enter our cwd (e.g. under /root).
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd="/",
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise EmbeddedError(f"cannot run {cmd[0]}: not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise EmbeddedError(f"{tool} {args[-1]} gave no answer within {timeout:.0f} s") from exc


def prepare_dirs(state: dict[str, Any]) -> None:
    """Create what the server needs before it starts; tmp cleaners may remove the socket dir."""
    socket_dir = Path(state["socket_dir"])
    if not as_root():
        socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if socket_dir.stat().st_uid != os.getuid():
            raise EmbeddedError(f"socket directory {socket_dir} belongs to another user")
        return
    try:
        pw = pwd.getpwnam(PG_USER)
    except KeyError as exc:
        raise EmbeddedError("running as root needs a `postgres` system user to own the cluster") from exc
    ROOT_BASE.mkdir(mode=0o755, parents=True, exist_ok=True)
    for path in (Path(state["datadir"]).parent, socket_dir):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(path, 0o700)


def bind(port: int = 0) -> int | None:
    """Bind 127.0.0.1:port for a moment; the port bound, or None when something else holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR ignores TIME_WAIT leftovers of our own server but still fails on a listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return None
        return int(sock.getsockname()[1])


def free_port() -> int:
    while True:
        port = bind()
        if port is not None and port != 5432:  # never the conventional port, even when free
            return port


def write_conf(state: dict[str, Any]) -> None:
    conf = Path(state["datadir"]) / "postgresql.conf"
    text = conf.read_text().split(CONF_MARK)[0].rstrip("\n")
    socket_dir = str(state["socket_dir"]).replace("'", "''")
    # Writing in place (not replacing) keeps the file owned by postgres when we are root.
    conf.write_text(f"""{text}

{CONF_MARK}
listen_addresses = '127.0.0.1'
port = {int(state["port"])}
unix_socket_directories = '{socket_dir}'
max_connections = 200
shared_buffers = 128MB
# A private, re-creatable dev cluster: trading crash-safety for speed is acceptable here.
fsync = off
synchronous_commit = off
""")


def running_port(datadir: Path) -> int | None:
    """The port in postmaster.pid if its process is alive, else None."""
    try:
        lines = (datadir / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, merely owned by another user
    return port


def stop_server(state: dict[str, Any]) -> bool:
    datadir = Path(state["datadir"])
    if running_port(datadir) is None:
        return False
    done = run_tool(state, "pg_ctl", "-D", datadir, "-m", "fast", "-w", "-t", "60", "stop")
    if done.returncode != 0 and running_port(datadir) is not None:
        raise EmbeddedError(f"PostgreSQL did not stop: {tail(done.stderr + done.stdout)}")
    return True


def read_log(logfile: Path, offset: int) -> str:
    try:
        with open(logfile, "rb") as fh:
            fh.seek(max(offset, fh.seek(0, os.SEEK_END) - 8192))
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def tail(*texts: str) -> str:
    """The most telling single line: the last FATAL/PANIC/ERROR line, else the last line."""
    for text in texts:
        if lines := [line.strip() for line in text.splitlines() if line.strip()]:
            severe = [line for line in lines if re.search(r"\b(FATAL|PANIC|ERROR):", line)]
            return (severe or lines)[-1]
    return "no output"
