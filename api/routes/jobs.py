"""Jobs: every queued unit of work, whatever its kind (searches, latency-table builds, ...): list, get,
cancel and live events. `/searches` is the view of the jobs of kind `search`, with their results."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import DB, MAX_INT, CurrentUser, EventCursor, SessionDep, owned_job
from api.errors import InvalidField, error_responses
from api.models import JobList, JobOut, Status
from api.streams import StreamSlots
from nas.store import Database, repo
from nas.store.models import FINISHED, User
from workers.kinds import JOB_KINDS

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
EVENT_STREAM: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {}}}}


def job_page(s, user: User, status: str | None, kind: str | None, limit: int, offset: int) -> JobList:
    rows, total = repo.list_jobs(s, owner=user, status=status, kind=kind, limit=limit, offset=offset)
    return JobList(items=[JobOut.of(r) for r in rows], total=total, limit=limit, offset=offset)


def event_stream(db: Database, job_id: str, start: int, request: Request, user: User) -> StreamingResponse:
    """Server-sent events of a job from event id `start` on; the stream ends once the job has finished.
    It counts against the user's open streams (a 429 at NAS_MAX_STREAMS_PER_USER) until it closes."""
    slots: StreamSlots = request.app.state.streams
    slots.take(user.id)

    def poll(cursor: int) -> tuple[list, bool]:
        with db.session(readonly=True) as s:
            batch = repo.events_after(s, job_id, cursor)
            job = repo.get_job(s, job_id)
            return batch, job is None or job.status in FINISHED

    async def stream() -> AsyncIterator[str]:
        try:
            async for chunk in follow():
                yield chunk
        finally:
            slots.give_back(user.id)

    async def follow() -> AsyncIterator[str]:
        cursor, idle = start, 0.0
        while True:
            batch, done = await run_in_threadpool(poll, cursor)  # database work never runs on the event loop
            for e in batch:
                cursor = e.id
                yield f"id: {e.id}\nevent: {e.kind}\ndata: {json.dumps(e.data)}\n\n"
            if done and not batch:
                yield "event: end\ndata: {}\n\n"
                return
            if await request.is_disconnected():
                return
            if not batch:
                idle += 0.5
                if idle >= 15:
                    idle = 0.0
                    yield ": keep-alive\n\n"
                await asyncio.sleep(0.5)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("", response_model=JobList, responses=error_responses(401, 422))
def list_jobs(
    user: CurrentUser, s: SessionDep, status: Status | None = None,
    kind: Annotated[str | None, Query(description="a registered job kind")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> JobList:
    if kind is not None and kind not in JOB_KINDS:
        raise InvalidField(("query", "kind"), f"unknown job kind {kind!r}; choose one of {', '.join(JOB_KINDS.names())}")
    return job_page(s, user, status, kind, limit, offset)


def add_job_routes(router: APIRouter, kind: str | None) -> None:
    """GET /{job_id}, POST /{job_id}/cancel and GET /{job_id}/events on `router`, for the jobs of `kind`
    (of any kind when None): /jobs serves every job, /searches the searches."""
    noun = kind or "job"

    @router.get("/{job_id}", response_model=JobOut, responses=error_responses(401, 404), summary=f"Get a {noun}")
    def get(job_id: str, user: CurrentUser, s: SessionDep) -> JobOut:
        return JobOut.of(owned_job(s, job_id, user, kind))

    @router.post("/{job_id}/cancel", response_model=JobOut, responses=error_responses(401, 404, 409),
                 summary=f"Cancel a {noun}")
    def cancel(job_id: str, user: CurrentUser, s: SessionDep) -> JobOut:
        """Queued: cancelled at once. Running: stops within seconds (a search keeps what it found so far)."""
        job = owned_job(s, job_id, user, kind)
        if job.status in FINISHED:
            raise HTTPException(409, f"{job.kind} {job.id} has already {job.status}")
        repo.request_cancel(s, job=job)
        return JobOut.of(job)

    @router.get("/{job_id}/events", responses={**EVENT_STREAM, **error_responses(401, 404, 429)},
                summary=f"Follow a {noun}'s events")
    def events(job_id: str, request: Request, user: CurrentUser, db: DB, start: EventCursor) -> StreamingResponse:
        """Server-sent events (status, progress, messages; for searches also candidates and fronts) from
        `after` (or Last-Event-ID) on; the stream ends once the job has finished."""
        with db.session(readonly=True) as s:
            job_id = owned_job(s, job_id, user, kind).id
        return event_stream(db, job_id, start, request, user)


add_job_routes(router, kind=None)
