"""``GET /jobs/{job_id}/events``: a job's progress as server-sent events.

Each event is ``event: <kind>`` (``state``, ``progress``, ``deleted``) and ``data:`` a
:class:`~service.jobs.ProgressEvent` as JSON. The first says where the job stands; the stream
ends after the job ends (``succeeded``, ``failed``, ``cancelled``) or is deleted. A comment
line (``: keep-alive``) comes whenever nothing happened for ``events_idle_s``, so that proxies
do not close a quiet stream, and a client that left is noticed.

Each open stream holds a thread (the store's pub/sub read blocks): beyond
``max_event_streams`` a new one is refused (503); the job's document (``GET /jobs/{job_id}``)
says the same without a stream.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from service.gateway.auth import authenticate, owned_job
from service.gateway.context import Gateway, StreamSlot, gateway
from service.gateway.errors import (
    ACCESS_CODES,
    PARAMETER_CODES,
    ApiError,
    ErrorCode,
    error_responses,
)
from service.gateway.links import EVENTS_ROUTE
from service.gateway.routers.jobs import JobId
from service.jobs import JobStore
from service.settings import ApiKey

EVENT_STREAM = "text/event-stream"
KEEP_ALIVE = b": keep-alive\n\n"
STREAMS_RETRY_AFTER_S = 30  # a stream lasts as long as its job: places free up slowly
STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}

router = APIRouter(tags=["jobs"])


def server_sent_events(store: JobStore, job_id: str, slot: StreamSlot) -> Iterator[bytes]:
    """The job's events as SSE messages; gives ``slot`` back when it ends."""
    try:
        for event in store.events(job_id):
            if event is None:
                yield KEEP_ALIVE
            else:
                yield f"event: {event.kind.value}\ndata: {event.model_dump_json()}\n\n".encode()
    finally:
        slot.release()


@router.get(
    "/jobs/{job_id}/events",
    name=EVENTS_ROUTE,
    response_class=StreamingResponse,
    responses={
        200: {"content": {EVENT_STREAM: {}}, "description": "the job's events, until it ends"},
        **error_responses(
            *ACCESS_CODES, *PARAMETER_CODES, ErrorCode.JOB_NOT_FOUND, ErrorCode.TOO_MANY_STREAMS
        ),
    },
    summary="A job's progress as server-sent events",
)
def job_events(
    job_id: JobId,
    key: Annotated[ApiKey, Depends(authenticate)],
    services: Annotated[Gateway, Depends(gateway)],
) -> StreamingResponse:
    """Server-sent events: where the job stands, then each change, until it ends."""
    owned_job(services.store, job_id, key)
    slot = services.streams.acquire()
    if slot is None:
        raise ApiError(
            ErrorCode.TOO_MANY_STREAMS,
            f"the gateway has {services.streams.capacity} event streams open, its limit: "
            "poll GET /jobs/{job_id} instead, or try again later",
            {"Retry-After": str(STREAMS_RETRY_AFTER_S)},
        )
    return StreamingResponse(
        server_sent_events(services.store, job_id, slot),
        media_type=EVENT_STREAM,
        headers=STREAM_HEADERS,
    )
