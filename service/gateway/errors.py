"""Every error the gateway answers, in one JSON shape with a stable code.

``{"error": {"code": "job_not_found", "message": "..."}}``: the code is for programs (it never
changes meaning), the message for a person (what went wrong and what to do about it). Each code
has one HTTP status (:data:`STATUS`), so a route documents its errors by listing codes
(:func:`error_responses`) and the OpenAPI schema says which codes each status may carry.

FastAPI's own errors (a malformed path or query parameter, an unknown route, a wrong method)
and anything unexpected are turned into the same shape by the handlers that
:func:`install_error_handlers` registers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from enum import StrEnum
from http import HTTPStatus
from typing import Any

import anyio
import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from service.gateway.header_numbers import header_number

logger = logging.getLogger(__name__)


class ErrorCode(StrEnum):
    """The stable codes, by what the client did (or what the server lacks)."""

    # Access
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "rate_limited"
    # The request itself
    NOT_FOUND = "not_found"  # no such route
    METHOD_NOT_ALLOWED = "method_not_allowed"
    INVALID_REQUEST = "invalid_request"  # a malformed path or query parameter
    MALFORMED_REQUEST = "malformed_request"  # not HTTP/1.1, or headers past the limit (uvicorn)
    # The upload (POST /jobs)
    INVALID_MULTIPART = "invalid_multipart"
    MISSING_VIDEO = "missing_video"
    UPLOAD_TOO_LARGE = "upload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    EMPTY_UPLOAD = "empty_upload"
    INVALID_OPTIONS = "invalid_options"
    # ... what probing the video found (service.pipeline.video.VideoError's codes) ...
    EMPTY_FILE = "empty_file"
    NOT_A_VIDEO = "not_a_video"
    NO_VIDEO_STREAM = "no_video_stream"
    NO_FRAMES = "no_frames"
    TRUNCATED = "truncated"
    # ... and the limits it passes (UploadLimits)
    VIDEO_TOO_LONG = "video_too_long"
    TOO_MANY_FRAMES = "too_many_frames"
    RESOLUTION_TOO_HIGH = "resolution_too_high"
    TOO_MANY_PIXELS = "too_many_pixels"  # width × height × frames: the decode budget
    UPLOAD_TIMEOUT = "upload_timeout"  # a client too slow
    # ... and what one API key may hold (Quotas)
    TOO_MANY_UPLOADS = "too_many_uploads"
    TOO_MANY_JOBS = "too_many_jobs"
    STORAGE_QUOTA_EXCEEDED = "storage_quota_exceeded"
    WORKER_TIME_QUOTA_EXCEEDED = "worker_time_quota_exceeded"
    # Jobs and their files
    JOB_NOT_FOUND = "job_not_found"
    JOB_NOT_FINISHED = "job_not_finished"
    JOB_WITHOUT_RESULTS = "job_without_results"
    FILE_NOT_FOUND = "file_not_found"
    TRACK_NOT_FOUND = "track_not_found"
    FRAME_NOT_FOUND = "frame_not_found"
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable"
    # The server
    TOO_MANY_STREAMS = "too_many_streams"
    GATEWAY_BUSY = "gateway_busy"  # too many uploads or connections at once
    QUEUE_UNAVAILABLE = "queue_unavailable"
    STORE_UNAVAILABLE = "store_unavailable"
    NOT_READY = "not_ready"
    INTERNAL_ERROR = "internal_error"


STATUS: Mapping[ErrorCode, HTTPStatus] = {
    ErrorCode.UNAUTHORIZED: HTTPStatus.UNAUTHORIZED,
    ErrorCode.RATE_LIMITED: HTTPStatus.TOO_MANY_REQUESTS,
    ErrorCode.NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorCode.METHOD_NOT_ALLOWED: HTTPStatus.METHOD_NOT_ALLOWED,
    ErrorCode.INVALID_REQUEST: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.MALFORMED_REQUEST: HTTPStatus.BAD_REQUEST,
    ErrorCode.INVALID_MULTIPART: HTTPStatus.BAD_REQUEST,
    ErrorCode.MISSING_VIDEO: HTTPStatus.BAD_REQUEST,
    ErrorCode.UPLOAD_TOO_LARGE: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    ErrorCode.EMPTY_UPLOAD: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.INVALID_OPTIONS: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.EMPTY_FILE: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.NOT_A_VIDEO: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.NO_VIDEO_STREAM: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.NO_FRAMES: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.TRUNCATED: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.VIDEO_TOO_LONG: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.TOO_MANY_FRAMES: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.RESOLUTION_TOO_HIGH: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.TOO_MANY_PIXELS: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.UPLOAD_TIMEOUT: HTTPStatus.REQUEST_TIMEOUT,
    ErrorCode.TOO_MANY_UPLOADS: HTTPStatus.TOO_MANY_REQUESTS,
    ErrorCode.TOO_MANY_JOBS: HTTPStatus.TOO_MANY_REQUESTS,
    ErrorCode.STORAGE_QUOTA_EXCEEDED: HTTPStatus.TOO_MANY_REQUESTS,
    ErrorCode.WORKER_TIME_QUOTA_EXCEEDED: HTTPStatus.TOO_MANY_REQUESTS,
    ErrorCode.JOB_NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorCode.JOB_NOT_FINISHED: HTTPStatus.CONFLICT,
    ErrorCode.JOB_WITHOUT_RESULTS: HTTPStatus.CONFLICT,
    ErrorCode.FILE_NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorCode.TRACK_NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorCode.FRAME_NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorCode.RANGE_NOT_SATISFIABLE: HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
    ErrorCode.TOO_MANY_STREAMS: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorCode.GATEWAY_BUSY: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorCode.QUEUE_UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorCode.STORE_UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorCode.NOT_READY: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorCode.INTERNAL_ERROR: HTTPStatus.INTERNAL_SERVER_ERROR,
}

# A message of each code as the gateway writes it (numbers and names made up), for the OpenAPI
# document's examples: what a client shows its user.
EXAMPLE_MESSAGES: Mapping[ErrorCode, str] = {
    ErrorCode.UNAUTHORIZED: "this API key is not known to the gateway: check it, or ask for one",
    ErrorCode.RATE_LIMITED: "this key made more than 600 requests in 60 s: wait 12 s",
    ErrorCode.NOT_FOUND: "there is no /job here: the API is described at /docs",
    ErrorCode.METHOD_NOT_ALLOWED: "PUT is not allowed here; allowed: GET, HEAD, DELETE",
    ErrorCode.INVALID_REQUEST: "path.track_id: Input should be a valid integer. The API is "
    "described at /docs.",
    ErrorCode.MALFORMED_REQUEST: "the request's headers are larger than the gateway takes",
    ErrorCode.INVALID_MULTIPART: "the Content-Type names no form boundary",
    ErrorCode.MISSING_VIDEO: "the form has no part named 'video': curl -F video=@clip.mp4 ...",
    ErrorCode.UPLOAD_TOO_LARGE: "the upload passed 536870912 bytes, the most the gateway takes",
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: "send the video as a multipart form (Content-Type: "
    "multipart/form-data), with the file in a part named 'video': curl -F video=@clip.mp4 ...",
    ErrorCode.EMPTY_UPLOAD: "the part 'video' is empty: send the video's bytes",
    ErrorCode.INVALID_OPTIONS: "options.min_track_length: Input should be greater than or "
    "equal to 1",
    ErrorCode.EMPTY_FILE: "the file is empty",
    ErrorCode.NOT_A_VIDEO: "the file is not a video FFmpeg can read",
    ErrorCode.NO_VIDEO_STREAM: "the file holds no video stream (audio only?)",
    ErrorCode.NO_FRAMES: "the video stream holds no frame",
    ErrorCode.TRUNCATED: "the video was cut short before its index: send the whole file",
    ErrorCode.VIDEO_TOO_LONG: "the video lasts 900 s; the most the service takes is 600 s",
    ErrorCode.TOO_MANY_FRAMES: "the video has 27000 frames; the most the service takes is 18000",
    ErrorCode.RESOLUTION_TOO_HIGH: "the video is 7680×4320; the most the service takes is "
    "3840×2160",
    ErrorCode.TOO_MANY_PIXELS: "the video's frames hold 2.2e+10 pixels in all; the most a job "
    "may decode is 3.7e+10",
    ErrorCode.UPLOAD_TIMEOUT: "no part of the upload came for 30 s: send the video again",
    ErrorCode.TOO_MANY_UPLOADS: "this API key has 4 uploads in progress, the most it may: send "
    "this one once one of them ends",
    ErrorCode.TOO_MANY_JOBS: "this API key has 8 jobs queued or running, the most it may: wait "
    "for one to end, or cancel one (DELETE /jobs/<id>)",
    ErrorCode.STORAGE_QUOTA_EXCEEDED: "this API key's jobs hold 4294000000 bytes; with this "
    "video they would pass 4294967296: delete jobs whose results you have",
    ErrorCode.WORKER_TIME_QUOTA_EXCEEDED: "this API key's jobs took 3612 s of worker time this "
    "hour, the most it may (3600 s): send it again in 20 minutes",
    ErrorCode.JOB_NOT_FOUND: "this API key has no job of that id: it may have expired (jobs "
    "are kept 86400 s after their last change) or been deleted",
    ErrorCode.JOB_NOT_FINISHED: "the job is running: its files come when it succeeds; follow "
    "it at GET /jobs/Qx3v9Lr2TqWm8bYc4nZ1aA or its events",
    ErrorCode.JOB_WITHOUT_RESULTS: "the job is failed (no person was found in the video): it "
    "has no files; send the video again",
    ErrorCode.FILE_NOT_FOUND: "the job made no preview.mp4: it was asked for json, npz; "
    "include 'preview' in the options' formats of a new job",
    ErrorCode.TRACK_NOT_FOUND: "the result has no track 7: its tracks are listed in result.json",
    ErrorCode.FRAME_NOT_FOUND: "track 2 was not seen in frame 400; it was in 120 frames, 10 to "
    "129 (result.json lists them)",
    ErrorCode.RANGE_NOT_SATISFIABLE: "the file has 1024 bytes: bytes=2048-4095 lies past its end",
    ErrorCode.TOO_MANY_STREAMS: "this API key has 8 event streams open, its limit: poll GET "
    "/jobs/{job_id} instead, or try again later",
    ErrorCode.GATEWAY_BUSY: "the gateway is receiving 32 uploads, the most it takes at once: "
    "send the video again in a moment",
    ErrorCode.QUEUE_UNAVAILABLE: "the job queue does not take jobs now; send the video again in "
    "a minute",
    ErrorCode.STORE_UNAVAILABLE: "the job store (Redis) does not answer; try again in a minute",
    ErrorCode.NOT_READY: "no worker answered within 2 s: jobs would wait in the queue; start "
    "one with `meshcast worker`",
    ErrorCode.INTERNAL_ERROR: "the gateway failed on this request; if it happens again, report "
    "it with the time",
}

# Codes every route that takes an API key may answer (checking it reads Redis).
ACCESS_CODES = (ErrorCode.UNAUTHORIZED, ErrorCode.RATE_LIMITED, ErrorCode.STORE_UNAVAILABLE)
# Codes of any route with path or query parameters, and of any route at all.
PARAMETER_CODES = (ErrorCode.INVALID_REQUEST,)
SERVER_CODES = (ErrorCode.INTERNAL_ERROR,)
STORE_RETRY_AFTER_S = 30  # how long a client is asked to wait when Redis is down
# A refused request's unread body up to this size is read and dropped before the answer.
DRAIN_MAX_BYTES = 1 << 20
DRAIN_TIMEOUT_S = 5.0  # ... within this long


class ErrorDetail(BaseModel):
    """What went wrong."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: ErrorCode = Field(description="stable, for programs")
    message: str = Field(description="for a person: what went wrong and what to do")


class ErrorResponse(BaseModel):
    """The body of every error response."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error: ErrorDetail


class ApiError(Exception):
    """An error answered as :class:`ErrorResponse` with its code's status."""

    def __init__(
        self, code: ErrorCode, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    @property
    def status(self) -> HTTPStatus:
        """The HTTP status of the error's code."""
        return STATUS[self.code]


def error_json(
    code: ErrorCode, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The response of one error."""
    body = ErrorResponse(error=ErrorDetail(code=code, message=message))
    return JSONResponse(
        body.model_dump(mode="json"), status_code=STATUS[code], headers=dict(headers or {})
    )


def error_responses(*codes: ErrorCode) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for a route that may answer ``codes`` (plus the server's own):
    one entry per status, listing its codes, with an example answer of each."""
    by_status: dict[HTTPStatus, list[ErrorCode]] = {}
    for code in dict.fromkeys((*codes, *SERVER_CODES)):
        by_status.setdefault(STATUS[code], []).append(code)
    return {
        int(status): {
            "model": ErrorResponse,
            "description": f"{status.phrase}: " + ", ".join(f"`{code}`" for code in found),
            "content": {
                "application/json": {
                    "examples": {
                        code.value: {
                            "summary": code.value,
                            "value": {
                                "error": {"code": code.value, "message": EXAMPLE_MESSAGES[code]}
                            },
                        }
                        for code in found
                    }
                }
            },
        }
        for status, found in sorted(by_status.items())
    }


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as :class:`ErrorResponse`."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(redis.ConnectionError, _store_unavailable)
    app.add_exception_handler(redis.TimeoutError, _store_unavailable)
    app.add_exception_handler(Exception, _unexpected)


def validation_message(errors: Iterable[Mapping[str, Any]]) -> str:
    """Pydantic's (or FastAPI's) errors as one sentence: ``where: what; ...``."""
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error["msg"])
    return "; ".join(parts)


def mark_body_read(request: Request) -> None:
    """Note that ``request``'s body was read to its end (see :func:`_respond`)."""
    request.state.body_read = True


def mark_body_abandoned(request: Request) -> None:
    """Note that ``request``'s body was given up part way (a client too slow): the answer
    closes the connection rather than read the rest (see :func:`_respond`)."""
    request.state.body_abandoned = True


async def _respond(
    request: Request, code: ErrorCode, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The error's response. A request body left unread is read and dropped first when small
    (:data:`DRAIN_MAX_BYTES`); otherwise the response closes the connection, or the server
    would go on reading, and discarding, the rest of a body that may never end."""
    headers = dict(headers or {})
    if not await _body_drained(request, code):
        headers["Connection"] = "close"
    return error_json(code, message, headers)


async def _body_drained(request: Request, code: ErrorCode) -> bool:
    """Whether ``request``'s body has been read to its end, reading a small unread one.

    A client that sends its whole body before it reads (httpx, requests) would otherwise find
    the connection reset instead of the answer. An upload refused as too large is never read:
    the refusal is the point (and a client waiting on ``Expect: 100-continue`` sends nothing).
    """
    if getattr(request.state, "body_read", False):
        return True
    if getattr(request.state, "body_abandoned", False):
        return False
    declared = request.headers.get("content-length")
    if declared is None:
        return "transfer-encoding" not in request.headers  # no body at all
    length = header_number(declared)
    if length is None or length > DRAIN_MAX_BYTES:
        return False
    if length == 0:
        return True
    if code is ErrorCode.UPLOAD_TOO_LARGE:
        return False
    with anyio.move_on_after(DRAIN_TIMEOUT_S):  # a client that stalls is not waited for
        try:
            async for _ in request.stream():
                pass
        except (RuntimeError, ClientDisconnect):  # already partly read, or the client left
            return False
        return True
    return False


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return await _respond(request, error.code, error.message, error.headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return await _respond(
        request,
        ErrorCode.INVALID_REQUEST,
        f"{validation_message(error.errors())}. The API is described at /docs.",
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    headers = dict(error.headers or {})
    if error.status_code == HTTPStatus.NOT_FOUND:
        message = f"there is no {request.url.path}: the API's routes are listed at /docs"
        return await _respond(request, ErrorCode.NOT_FOUND, message, headers)
    if error.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        allowed = headers.get("Allow") or headers.get("allow", "")
        message = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
        return await _respond(request, ErrorCode.METHOD_NOT_ALLOWED, message, headers)
    return await _respond(request, ErrorCode.INVALID_REQUEST, str(error.detail), headers)


async def _store_unavailable(request: Request, error: Exception) -> JSONResponse:
    logger.warning("Redis is unreachable: %s", error)
    return await _respond(
        request,
        ErrorCode.STORE_UNAVAILABLE,
        "the job store (Redis) does not answer; try again in a minute",
        {"Retry-After": str(STORE_RETRY_AFTER_S)},
    )


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    # Starlette's ServerErrorMiddleware logs the traceback once this answers.
    return await _respond(
        request,
        ErrorCode.INTERNAL_ERROR,
        "the gateway failed on this request; if it happens again, report it with the time",
    )
