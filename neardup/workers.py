"""Local `dramatiq actors` worker processes for one `neardup scan`, restarted if they die.

Each worker is its own `dramatiq` command with one process: when a child of a `dramatiq`
command dies the whole command exits, so one command per worker keeps a crash local and
lets the supervisor restart just that one.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# A worker that exits with this code refused to start (no schema, no database): restarting it
# would only fail again.
REFUSED = 3
STOP_POLL_MS = 250


class WorkerError(RuntimeError):
    pass


class LocalWorkers:
    def __init__(self, count: int, url: str, log_dir: Path, threads: int = 2) -> None:
        self.count = count
        self.url = url
        self.log_dir = log_dir
        self.threads = threads
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * count
        self.restarts = 0
        self.stopping: set[int] = set()  # pids already sent SIGTERM

    def command(self) -> list[str]:
        return [sys.executable, "-m", "dramatiq", "actors", "--processes", "1",
                "--threads", str(self.threads)]

    def _log_path(self, index: int) -> Path:
        return self.log_dir / f"worker-{index}.log"

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # dramatiq's threads look for a stop request once per worker timeout (1 s by default, as
        # each thread and each consumer waits it out in turn, 2-3 s at every scan's end). A
        # quarter second costs an idle local worker a few cheap polls a second.
        env = {"dramatiq_worker_timeout": str(STOP_POLL_MS), **os.environ,
               "DATABASE_URL": self.url, "PYTHONUNBUFFERED": "1"}
        with open(self._log_path(index), "ab") as log:
            return subprocess.Popen(self.command(), env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)

    def start(self) -> None:
        for i in range(self.count):
            self.procs[i] = self._spawn(i)

    def supervise(self) -> list[str]:
        """Restart any worker that died; returns a note per restart. Raises if one refused to start."""
        notes = []
        for i, proc in enumerate(self.procs):
            if proc is None or proc.poll() is None:
                continue
            if proc.returncode == REFUSED:
                raise WorkerError(self.last_error(i) or f"worker {i} refused to start")
            notes.append(f"worker {i} exited with code {proc.returncode}; restarting it")
            self.restarts += 1
            self.procs[i] = self._spawn(i)
        return notes

    def last_error(self, index: int) -> str:
        try:
            lines = self._log_path(index).read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        mine = [ln for ln in lines if ln.startswith("neardup worker:")]
        return (mine or lines or [""])[-1].removeprefix("neardup worker: ")

    def request_stop(self) -> None:
        """Ask every live worker to stop, without waiting: dramatiq takes a second or more to wind
        down, which the caller can spend on something else (printing results) before stop() waits."""
        for p in self.procs:
            if p is not None and p.poll() is None and p.pid not in self.stopping:
                # The dramatiq parent only, and only once: it forwards SIGTERM to its worker. A
                # second SIGTERM (or one to the whole group) is dramatiq's "kill now", which
                # abandons claimed rows until their lease expires.
                p.send_signal(signal.SIGTERM)
                self.stopping.add(p.pid)

    def stop(self, grace_s: float = 15.0) -> None:
        self.request_stop()
        live = [p for p in self.procs if p is not None and p.poll() is None]
        deadline = time.monotonic() + grace_s
        try:
            for p in live:
                try:
                    p.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _signal_group(p, signal.SIGKILL)
                    p.wait()
        except KeyboardInterrupt:
            # A second Ctrl-C: no more grace, but no worker left behind either.
            for p in live:
                _signal_group(p, signal.SIGKILL)
            for p in live:
                p.wait()
            raise

    def __enter__(self) -> LocalWorkers:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
