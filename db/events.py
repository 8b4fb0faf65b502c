"""The event log: writing an event inside a transaction, reading a job's events after an id.

Every state change writes its event in its own transaction (so an event exists exactly when its
change committed); the event table's trigger sends NOTIFY on channel CHANNEL at commit.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg

from db.connect import retrying
from db.models import Event
from db.queries import q

CHANNEL = "neardup_events"
TERMINAL = frozenset({"job_completed", "job_failed", "job_cancelled"})


def emit(cur: psycopg.Cursor, job_id: int, kind: str, phase: str | None, **data: Any) -> None:
    cur.execute(q("add_event"), {"job_id": job_id, "kind": kind, "phase": phase,
                                 "data": json.dumps(data)})


def phase_event(cur: psycopg.Cursor, job_id: int, kind: str, phase: str) -> None:
    """phase_started / phase_completed with the phase's counts as the views have them."""
    cur.execute(q("phase_event"), {"job_id": job_id, "kind": kind, "phase": phase})


class EventLog:
    def __init__(self, repo) -> None:  # type: ignore[no-untyped-def] - a db.repository.Repository
        self.repo = repo

    @retrying()
    def after(self, job_id: int, after_id: int = 0, limit: int = 1000) -> list[Event]:
        with self.repo._tx() as cur:
            cur.execute(q("events_after"), {"job_id": job_id, "after": after_id, "limit": limit})
            return [Event(*r) for r in cur.fetchall()]

    def all_after(self, job_id: int, after_id: int = 0) -> Iterator[Event]:
        while batch := self.after(job_id, after_id):
            yield from batch
            after_id = batch[-1].id


class Listener:
    """A LISTEN on the events channel, on its own connection: wait() returns when an event for
    the job may have arrived, or at the timeout (the caller reads the table either way, so a
    notification lost to a reconnect costs at most one timeout)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: psycopg.Connection | None = None

    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5,
                               application_name="neardup-listen")
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def open(self) -> Listener:
        """Start listening now (else on the first wait); a database that is down is not an error."""
        try:
            if self.conn is None or self.conn.closed:
                self.conn = self._connect()
        except psycopg.Error:
            self.close()
        return self

    def wait(self, job_id: int, timeout_s: float) -> bool:
        """True if a notification for job_id arrived within timeout_s."""
        deadline = time.monotonic() + timeout_s
        try:
            if self.conn is None or self.conn.closed:
                self.conn = self._connect()
            while (left := deadline - time.monotonic()) > 0:
                for note in self.conn.notifies(timeout=left, stop_after=1):
                    if payload_job(note.payload) == job_id:
                        return True
            return False
        except psycopg.Error:
            # The database went away: poll until it is back (the caller reads the table anyway).
            self.close()
            time.sleep(max(0.0, deadline - time.monotonic()))
            return False

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def payload_job(payload: str) -> int | None:
    try:
        return int(json.loads(payload)["job"])
    except (ValueError, KeyError, TypeError):
        return None
