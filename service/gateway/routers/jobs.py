"""``POST /jobs``, ``GET /jobs``, ``GET /jobs/{job_id}``, ``DELETE /jobs/{job_id}``."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any

import redis
from celery import Celery
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from starlette.concurrency import run_in_threadpool

from service.gateway.auth import authenticate, owned_job
from service.gateway.context import Gateway, Slot, SlotRefusal, Slots, gateway
from service.gateway.errors import (
    ACCESS_CODES,
    PARAMETER_CODES,
    ApiError,
    ErrorCode,
    error_responses,
)
from service.gateway.links import JOB_ROUTE, job_document
from service.gateway.quotas import check_quotas
from service.gateway.schemas import JobDocument, JobList
from service.gateway.upload import (
    OPTIONS_FIELD,
    VIDEO_FIELD,
    PendingJob,
    VideoForm,
    check_video,
    form_boundary,
)
from service.jobs import JobOptions
from service.queue import PROCESS_JOB
from service.scratch_folders import UPLOAD_PREFIX, scratch_folder
from service.settings import ApiKey

JobId = Annotated[
    str, PathParam(description="the id POST /jobs answered", examples=["Qx3v9Lr2TqWm8bYc4nZ1aA"])
]

# A list costs a Redis read per job: bounded, as every request's cost is.
MAX_LISTED, DEFAULT_LISTED = 200, 50
Limit = Annotated[
    int,
    Query(ge=1, le=MAX_LISTED, description="at most this many jobs, the newest", examples=[20]),
]

router = APIRouter(tags=["jobs"])


def _upload_body() -> dict[str, Any]:
    """The OpenAPI description of POST /jobs's form (the route reads its body itself)."""
    options = JobOptions.model_json_schema()
    fields = {
        OPTIONS_FIELD: {
            "type": "string",
            "description": "the options as one JSON object (instead of the fields below): "
            + (options.get("description") or ""),
        },
        **options["properties"],
        VIDEO_FIELD: {"type": "string", "format": "binary", "description": "the video file"},
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": [VIDEO_FIELD], "properties": fields},
                    "examples": {
                        "video": {
                            "summary": "a video with the default options",
                            "value": {VIDEO_FIELD: "(the file's bytes)"},
                        },
                        "options": {
                            "summary": "smoothed, some formats, short tracks kept",
                            "value": {
                                VIDEO_FIELD: "(the file's bytes)",
                                OPTIONS_FIELD: '{"smooth": true, "formats": ["json", "glb", '
                                '"bvh"], "min_track_length": 4}',
                            },
                        },
                    },
                }
            },
        }
    }


def enqueue(celery: Celery, job_id: str) -> None:
    """Send the job's task to the workers' queue (by name: the gateway imports no worker).

    Raises:
        ApiError: ``queue_unavailable``: the broker did not take the task.
    """
    try:
        celery.send_task(PROCESS_JOB, args=[job_id])
    except (OperationalError, redis.ConnectionError, redis.TimeoutError) as error:
        raise ApiError(
            ErrorCode.QUEUE_UNAVAILABLE,
            "the job queue does not take jobs now; send the video again in a minute",
        ) from error


UPLOAD_CODES = (
    *ACCESS_CODES,
    ErrorCode.INVALID_MULTIPART, ErrorCode.MISSING_VIDEO, ErrorCode.UPLOAD_TOO_LARGE,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE, ErrorCode.EMPTY_UPLOAD, ErrorCode.INVALID_OPTIONS,
    ErrorCode.NOT_A_VIDEO, ErrorCode.NO_VIDEO_STREAM, ErrorCode.NO_FRAMES,
    ErrorCode.TRUNCATED, ErrorCode.VIDEO_TOO_LONG, ErrorCode.TOO_MANY_FRAMES,
    ErrorCode.RESOLUTION_TOO_HIGH, ErrorCode.TOO_MANY_PIXELS, ErrorCode.UPLOAD_TIMEOUT,
    ErrorCode.TOO_MANY_UPLOADS, ErrorCode.TOO_MANY_JOBS, ErrorCode.STORAGE_QUOTA_EXCEEDED,
    ErrorCode.WORKER_TIME_QUOTA_EXCEEDED, ErrorCode.GATEWAY_BUSY, ErrorCode.QUEUE_UNAVAILABLE,
)  # fmt: skip
UPLOADS_RETRY_AFTER_S = 10


def upload_slot(uploads: Slots, owner: str) -> Slot:
    """A place for one more upload of ``owner``.

    Raises:
        ApiError: ``gateway_busy`` (every place is taken), ``too_many_uploads`` (the key's).
    """
    slot = uploads.acquire(owner)
    retry = {"Retry-After": str(UPLOADS_RETRY_AFTER_S)}
    if slot is SlotRefusal.GATEWAY_FULL:
        raise ApiError(
            ErrorCode.GATEWAY_BUSY,
            f"the gateway is receiving {uploads.capacity} uploads, the most it takes at once: "
            "send the video again in a moment",
            retry,
        )
    if slot is SlotRefusal.OWNER_FULL:
        raise ApiError(
            ErrorCode.TOO_MANY_UPLOADS,
            f"this API key has {uploads.per_owner} uploads in progress, the most it may: send "
            "this one once one of them ends",
            retry,
        )
    assert isinstance(slot, Slot)
    return slot


@router.post(
    "/jobs",
    status_code=HTTPStatus.ACCEPTED,
    response_model=JobDocument,
    responses=error_responses(*UPLOAD_CODES),
    openapi_extra=_upload_body(),
    summary="Upload a video: a job is queued",
)
async def create_job(
    request: Request,
    key: Annotated[ApiKey, Depends(authenticate)],
    services: Annotated[Gateway, Depends(gateway)],
) -> JSONResponse:
    """Upload a video as a multipart form (its options, if any, before the `video` part).
    It is streamed into the job store, probed (container, codec, size, duration, frames) and,
    if it passes the limits and the key's quotas, made a job and queued: the answer is the job,
    and `Location` its URL."""
    settings = services.settings.gateway
    limits, quotas = settings.upload, settings.quotas
    try:
        boundary = form_boundary(request.headers, limits)
        slot = upload_slot(services.uploads, key.id)
        try:
            await run_in_threadpool(check_quotas, services.store, key.id, quotas)
            with scratch_folder(UPLOAD_PREFIX) as folder:
                async with PendingJob(services.store) as pending:
                    form = VideoForm(boundary, limits, pending, Path(folder))
                    upload = await form.receive(request)
                    await run_in_threadpool(check_video, upload.path, limits)
                    await run_in_threadpool(
                        check_quotas, services.store, key.id, quotas, upload.size
                    )
                    job = await pending.create(key.id, upload.options)
                    await run_in_threadpool(enqueue, services.celery, job.id)
                    pending.commit()
        finally:
            slot.release()
    except ApiError as error:
        services.metrics.uploads_refused.labels(code=error.code.value).inc()
        raise
    services.metrics.jobs_created.inc()
    document = job_document(request, job, {})
    return JSONResponse(
        document.model_dump(mode="json"),
        status_code=HTTPStatus.ACCEPTED,
        headers={"Location": document.links.job},
    )


@router.get(
    "/jobs",
    response_model=JobList,
    responses=error_responses(*ACCESS_CODES, *PARAMETER_CODES),
    summary="Your jobs, newest first",
)
def list_jobs(
    request: Request,
    key: Annotated[ApiKey, Depends(authenticate)],
    services: Annotated[Gateway, Depends(gateway)],
    limit: Limit = DEFAULT_LISTED,
) -> JobList:
    """The jobs of the API key that asks (those not yet deleted or expired), newest first,
    each as `GET /jobs/{job_id}` gives it."""
    jobs = services.store.owner_jobs(key.id, limit)
    return JobList(jobs=[job_document(request, job, files) for job, files in jobs])


@router.get(
    "/jobs/{job_id}",
    name=JOB_ROUTE,
    response_model=JobDocument,
    responses=error_responses(*ACCESS_CODES, *PARAMETER_CODES, ErrorCode.JOB_NOT_FOUND),
    summary="A job: state, progress, timings, error, downloads",
)
def get_job(
    request: Request,
    job_id: JobId,
    key: Annotated[ApiKey, Depends(authenticate)],
    services: Annotated[Gateway, Depends(gateway)],
) -> JobDocument:
    """Where the job stands; once it succeeded, the links to its files."""
    job = owned_job(services.store, job_id, key)
    return job_document(request, job, services.store.list_files(job_id))


@router.delete(
    "/jobs/{job_id}",
    status_code=HTTPStatus.NO_CONTENT,
    response_class=Response,
    responses=error_responses(*ACCESS_CODES, *PARAMETER_CODES, ErrorCode.JOB_NOT_FOUND),
    summary="Cancel a job and delete it, results included",
)
def delete_job(
    job_id: JobId,
    key: Annotated[ApiKey, Depends(authenticate)],
    services: Annotated[Gateway, Depends(gateway)],
) -> Response:
    """Cancel the job (a worker running it stops at its next step) and delete its video and
    results at once."""
    owned_job(services.store, job_id, key)
    services.store.request_cancel(job_id)
    services.store.delete(job_id)
    return Response(status_code=HTTPStatus.NO_CONTENT)
