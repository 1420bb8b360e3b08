"""``GET /jobs/{job_id}/events``: a job's progress as server-sent events.

Each event is ``event: <kind>`` (``state``, ``progress``, ``deleted``) and ``data:`` a
:class:`~service.jobs.ProgressEvent` as JSON. The first says where the job stands; the stream
ends after the job ends (``succeeded``, ``failed``, ``cancelled``) or is deleted. A comment
line (``: keep-alive``) comes whenever nothing happened for ``events_idle_s``, so that proxies
do not close a quiet stream. Should the job store fail mid-stream, a last ``event: error``
carries the API's error body (``store_unavailable``) and the stream ends: the client polls
``GET /jobs/{job_id}`` or opens the stream again later.

Each open stream holds a thread (the store's pub/sub read blocks) until the client leaves,
which Starlette notices at once: the thread is told to stop and ends within
:data:`~service.jobs.store.STOP_POLL_S`. Beyond ``max_event_streams`` open streams, or
``max_event_streams_per_key`` of one key, a new one is refused (503); the job's document
(``GET /jobs/{job_id}``) says the same without a stream. A ``HEAD`` answers what a ``GET``
would (503 included) and opens no stream (:class:`~service.gateway.head.StreamedBody`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import anyio.to_thread
import redis
from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from service.gateway.auth import authenticate, owned_job
from service.gateway.context import Gateway, Slot, SlotRefusal, gateway
from service.gateway.errors import (
    ACCESS_CODES,
    PARAMETER_CODES,
    ApiError,
    ErrorCode,
    ErrorDetail,
    ErrorResponse,
    error_responses,
)
from service.gateway.head import StreamedBody
from service.gateway.links import EVENTS_ROUTE
from service.gateway.routers.jobs import JobId
from service.jobs import JobStore, ProgressEvent
from service.settings import ApiKey

logger = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream"
KEEP_ALIVE = b": keep-alive\n\n"
STREAMS_RETRY_AFTER_S = 30  # a stream lasts as long as its job: places free up slowly
STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: pass each event on at once
}

_END = object()

router = APIRouter(tags=["jobs"])


async def server_sent_events(store: JobStore, job_id: str, slot: Slot) -> AsyncIterator[bytes]:
    """The job's events as SSE messages; gives ``slot`` back as soon as it ends, the client's
    leaving included (Starlette cancels this then)."""
    stop = threading.Event()
    events = store.events(job_id, stop)
    try:
        while True:
            # Abandoned on cancel: the thread stops by itself once ``stop`` is set.
            event = await anyio.to_thread.run_sync(_next, events, abandon_on_cancel=True)
            if event is _END:
                return
            if event is None:
                yield KEEP_ALIVE
            else:
                assert isinstance(event, ProgressEvent)
                yield f"event: {event.kind.value}\ndata: {event.model_dump_json()}\n\n".encode()
    except redis.RedisError as error:
        logger.warning("the event stream of job %s lost Redis: %s", job_id, error)
        detail = ErrorDetail(
            code=ErrorCode.STORE_UNAVAILABLE,
            message="the job store (Redis) stopped answering: poll GET /jobs/{job_id}, or open "
            "this stream again in a minute",
        )
        yield f"event: error\ndata: {ErrorResponse(error=detail).model_dump_json()}\n\n".encode()
    finally:
        stop.set()
        slot.release()


def _next(events: Iterator[ProgressEvent | None]) -> ProgressEvent | object | None:
    # StopIteration cannot cross into a coroutine: the end comes back as _END.
    return next(events, _END)


@router.get(
    "/jobs/{job_id}/events",
    name=EVENTS_ROUTE,
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {EVENT_STREAM: {}},
            "description": "the job's events, until it ends; a last `error` event (the API's "
            "error body) if the job store fails meanwhile",
        },
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
    slot = services.streams.acquire(key.id)
    if slot is SlotRefusal.GATEWAY_FULL:
        raise _too_many(f"the gateway has {services.streams.capacity} event streams open")
    if slot is SlotRefusal.OWNER_FULL:
        raise _too_many(f"this API key has {services.streams.per_owner} event streams open")
    assert isinstance(slot, Slot)
    return StreamedBody(
        server_sent_events(services.store, job_id, slot),
        media_type=EVENT_STREAM,
        headers=STREAM_HEADERS,
        on_head=slot.release,  # a HEAD: the answer a GET would have, no stream
    )


def _too_many(what: str) -> ApiError:
    return ApiError(
        ErrorCode.TOO_MANY_STREAMS,
        f"{what}, its limit: poll GET /jobs/{{job_id}} instead, or try again later",
        {"Retry-After": str(STREAMS_RETRY_AFTER_S)},
    )
