"""Async reads for the web server: the same named queries and views, on an async pool.

Hub keeps ONE listening connection for the whole server and wakes the streams that follow the
job a notification names; a stream holds no connection of its own between reads, so a client
that goes away leaves nothing behind but its entry in a set, removed when its stream ends.
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg_pool import AsyncConnectionPool

from db.events import CHANNEL, payload_job
from db.models import Event, JobProgress, job_progress_from_row
from db.queries import q

log = logging.getLogger("neardup.serve")


class Reader:
    def __init__(self, url: str, max_size: int = 4) -> None:
        self.url = url
        self.pool = AsyncConnectionPool(url, min_size=0, max_size=max_size, open=False,
                                        check=AsyncConnectionPool.check_connection,
                                        kwargs={"connect_timeout": 5, "application_name": "neardup-serve",
                                                "autocommit": True})

    async def open(self) -> None:
        await self.pool.open()

    async def close(self) -> None:
        await self.pool.close()

    async def progress(self, job_id: int) -> JobProgress | None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(q("job_progress"), {"job_id": job_id})
            row = await cur.fetchone()
        return job_progress_from_row(row) if row else None

    async def jobs(self, active_only: bool, limit: int) -> list[JobProgress]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(q("list_jobs"), {"active_only": active_only, "limit": limit})
            return [job_progress_from_row(r) for r in await cur.fetchall()]

    async def events_after(self, job_id: int, after_id: int, limit: int = 500) -> list[Event]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(q("events_after"), {"job_id": job_id, "after": after_id, "limit": limit})
            return [Event(*r) for r in await cur.fetchall()]


class Hub:
    """One LISTEN for the server; subscribers wait on an asyncio.Event per stream."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.waiting: dict[int, set[asyncio.Event]] = defaultdict(set)
        self.listening = False
        self._task: asyncio.Task[None] | None = None

    @property
    def streams(self) -> int:
        return sum(len(s) for s in self.waiting.values())

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, connect_timeout=5,
                        application_name="neardup-serve-listen") as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening, delay = True, 0.5
                    self._wake_all()  # whatever happened while not listening: read it now
                    async for note in conn.notifies():
                        job = payload_job(note.payload)
                        for flag in self.waiting.get(job, ()) if job is not None else ():
                            flag.set()
            except (psycopg.Error, OSError) as e:
                log.warning("event listener lost its connection (%s); streams poll meanwhile", e)
            self.listening = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _wake_all(self) -> None:
        for flags in self.waiting.values():
            for flag in flags:
                flag.set()

    @asynccontextmanager
    async def subscribe(self, job_id: int) -> AsyncIterator[asyncio.Event]:
        flag = asyncio.Event()
        self.waiting[job_id].add(flag)
        try:
            yield flag
        finally:
            self.waiting[job_id].discard(flag)
            if not self.waiting[job_id]:
                del self.waiting[job_id]
