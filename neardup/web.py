"""The web view: JSON progress, the event log as Server-Sent Events, and a page with live bars.

GET /jobs                  the newest jobs (?active=1, ?limit=N), as `neardup jobs --json`
GET /jobs/{id}             the progress view as JSON, as `neardup status --json`
GET /jobs/{id}/events      Server-Sent Events: every event after Last-Event-ID (or ?after=),
                           then live ones; `id:` is the event id, `event:` its kind. Between
                           them, `event: progress` messages (no id) carry the progress view, and
                           `event: end` closes a stream whose job has ended.
GET /  and /watch/{id}     the HTML page
GET /healthz               {"listening": bool, "streams": n}
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from db.aio import Hub, Reader
from neardup.report import status_json

POLL_S = 0.5  # the stream's fallback read (and progress refresh) when no notification comes
KEEPALIVE_S = 15.0


def sse(data: Any, event: str | None = None, id: int | None = None) -> bytes:
    lines = ([f"id: {id}"] if id is not None else []) + ([f"event: {event}"] if event else [])
    lines.append(f"data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}")
    return ("\n".join(lines) + "\n\n").encode()


def event_data(e) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {"id": e.id, "job": e.job, "at": e.at.isoformat(), "kind": e.kind, "phase": e.phase,
            "data": e.data}


def not_found(job_id: int) -> JSONResponse:
    return JSONResponse({"error": f"job {job_id}: no such job"}, status_code=404)


def resume_point(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if value >= 0 else None


def make_app(url: str) -> Starlette:
    reader = Reader(url)
    hub = Hub(url)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await reader.open()
        hub.start()
        try:
            yield
        finally:
            await hub.stop()
            await reader.close()

    async def jobs(request: Request) -> Response:
        active = request.query_params.get("active", "") in ("1", "true", "yes")
        try:
            limit = max(1, min(int(request.query_params.get("limit", "50")), 1000))
        except ValueError:
            return JSONResponse({"error": "limit must be a number"}, status_code=400)
        return JSONResponse([status_json(p) for p in await reader.jobs(active, limit)])

    async def job(request: Request) -> Response:
        job_id = request.path_params["job"]
        progress = await reader.progress(job_id)
        return JSONResponse(status_json(progress)) if progress else not_found(job_id)

    async def events(request: Request) -> Response:
        job_id = request.path_params["job"]
        after = resume_point(request)
        if after is None:
            return JSONResponse({"error": "Last-Event-ID must be an event id"}, status_code=400)
        if await reader.progress(job_id) is None:
            return not_found(job_id)
        return StreamingResponse(stream(job_id, after), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def stream(job_id: int, after: int) -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        quiet = 0.0
        async with hub.subscribe(job_id) as woken:
            while True:
                woken.clear()
                # Progress first: if the job had ended, all of its events are already readable.
                progress = await reader.progress(job_id)
                while batch := await reader.events_after(job_id, after):
                    for e in batch:
                        yield sse(event_data(e), event=e.kind, id=e.id)
                        after = e.id
                if progress is None:
                    return
                yield sse(status_json(progress), event="progress")
                if progress.finished:
                    yield sse({"job": job_id, "status": progress.status}, event="end")
                    return
                try:
                    await asyncio.wait_for(woken.wait(), POLL_S)
                    quiet = 0.0
                except asyncio.TimeoutError:
                    quiet += POLL_S
                    if quiet >= KEEPALIVE_S:
                        quiet = 0.0
                        yield b": keepalive\n\n"

    async def page(request: Request) -> Response:
        return HTMLResponse(resources.files("neardup").joinpath("page.html").read_text(encoding="utf-8"))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"listening": hub.listening, "streams": hub.streams})

    return Starlette(lifespan=lifespan, routes=[
        Route("/", page),
        Route("/watch/{job:int}", page),
        Route("/jobs", jobs),
        Route("/jobs/{job:int}", job),
        Route("/jobs/{job:int}/events", events),
        Route("/healthz", healthz),
    ])
