"""``POST /jobs``'s body: a multipart form, read as it arrives, its video streamed into Redis.

Starlette's ``request.form()`` would spool the whole body before the route sees a byte of it:
an upload over the limit would be read (and written to disk) in full before being refused.
Here python-multipart's streaming parser takes the body chunk by chunk from
``request.stream()``, and the video's bytes go, :attr:`UploadLimits.chunk_bytes
<service.settings.UploadLimits.chunk_bytes>` at a time, both to Redis under a fresh id
(:meth:`JobStore.append_video <service.jobs.JobStore.append_video>`, where the worker will read
them) and to a local file, for :func:`~service.pipeline.video.probe` once the form ends. The
job is created only then, with that id (:meth:`JobStore.create <service.jobs.JobStore.create>`):
an upload cut short, by its client or by the gateway's death, leaves no job, and its stored part
expires after ``store.upload_ttl_s``. So:

- a ``Content-Length`` over the limit is refused before the body is read;
- without one (chunked), the upload is refused as soon as its video passes ``max_bytes``, or
  what surrounds the video (option fields, part headers) passes :data:`FORM_OVERHEAD_BYTES`
  (so that the fields held in memory stay small);
- Redis never holds more of a video than ``max_bytes``.
- a client that pauses longer than ``read_timeout_s`` between two pieces of the body, or takes
  longer than ``max_upload_s`` over all of it, is answered 408 ``upload_timeout`` (a slow
  client holds a connection, a file and up to ``chunk_bytes`` of memory, no longer).

The form: a part ``video`` (the file), and optionally the job's options, either as one part
``options`` holding :class:`~service.jobs.JobOptions` as JSON, or as one part per option
(``smooth``, ``formats``, repeated or comma-separated, ``min_track_length``,
``preview_keypoints``). Options come *before* the video: they are checked when the video
begins, so that a wrong option is refused before its bytes are read. HTTP clients put plain
fields before files (curl in the order of its ``-F``, httpx and requests always), and an option
after the video is refused with a sentence that says so.

Every refusal deletes what the request wrote (:class:`PendingJob`): the upload's keys in Redis
(and the job's, when it was made) and the local file.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self, get_origin

import anyio
from fastapi import Request
from pydantic import ValidationError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect

from service.gateway.errors import (
    ApiError,
    ErrorCode,
    mark_body_abandoned,
    mark_body_read,
    validation_message,
)
from service.gateway.header_numbers import header_number
from service.jobs import JobClosedError, JobOptions, JobRecord, JobStore, VideoTooLargeError
from service.jobs.keys import new_job_id
from service.pipeline.video import VideoError, VideoInfo, probe
from service.settings import UploadLimits

KIB = 1024
# Room for what surrounds the video in the body: boundaries, part headers, option fields.
FORM_OVERHEAD_BYTES = 64 * KIB
MAX_FIELD_BYTES = 16 * KIB  # one option field
FORM_TYPE = b"multipart/form-data"
DEFAULT_PART_TYPE = "application/octet-stream"  # a file part without a Content-Type
VIDEO_FIELD = "video"
OPTIONS_FIELD = "options"
OPTION_FIELDS = frozenset(JobOptions.model_fields)
# Options that take several values: a repeated field, or values separated by commas.
LIST_OPTIONS = frozenset(
    name for name, info in JobOptions.model_fields.items() if get_origin(info.annotation) is list
)
LIST_SEPARATOR = ","
# The upload's file name suffix is kept (it helps FFmpeg tell some formats apart) when plain.
SUFFIX_PATTERN = re.compile(r"\.[A-Za-z0-9]{1,8}")
LOCAL_NAME = "upload"


class PendingJob:
    """A job being uploaded: its video goes to Redis under :attr:`upload` (a fresh id), and
    :meth:`create` makes it a job's. Unless :meth:`commit` is called, leaving the block deletes
    every key written for it (shielded from cancellation, so a server stopping still cleans
    up)."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.upload = new_job_id()
        self._committed = False

    async def create(self, owner: str, options: JobOptions) -> JobRecord:
        """The job of ``owner``, with the video uploaded under :attr:`upload`.

        Raises:
            ApiError: ``upload_timeout``: the stored part expired meanwhile.
        """
        try:
            return await run_in_threadpool(
                functools.partial(self.store.create, owner, options, upload=self.upload)
            )
        except JobClosedError as error:
            raise expired(self.store) from error

    def commit(self) -> None:
        """Keep the job: it was queued."""
        self._committed = True

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._committed:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(self.store.delete, self.upload)


@dataclass(frozen=True)
class ReceivedVideo:
    """The upload, once its form ended: in Redis under its :class:`PendingJob`'s id, and in
    ``path``; ``options`` the job's."""

    path: Path
    size: int
    options: JobOptions


def form_boundary(headers: Headers, limits: UploadLimits) -> bytes:
    """The multipart boundary of a ``POST /jobs``, once its headers pass.

    Raises:
        ApiError: ``unsupported_media_type`` (not a multipart form), ``invalid_multipart``
            (no boundary), ``upload_too_large`` (a ``Content-Length`` over the limit).
    """
    media_type, params = parse_options_header(headers.get("content-type"))
    if media_type != FORM_TYPE:
        raise ApiError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"send the video as a multipart form (Content-Type: {FORM_TYPE.decode()}), with "
            f"the file in a part named '{VIDEO_FIELD}': curl -F {VIDEO_FIELD}=@clip.mp4 ...",
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(ErrorCode.INVALID_MULTIPART, "the Content-Type names no form boundary")
    length = header_number(headers.get("content-length") or "")
    if length is not None and length > body_limit(limits):
        raise too_large(limits)
    return boundary


def body_limit(limits: UploadLimits) -> int:
    """The most bytes a ``POST /jobs`` body may have: the video's limit and the form around it."""
    return limits.max_bytes + FORM_OVERHEAD_BYTES


def expired(store: JobStore) -> ApiError:
    """The refusal of an upload whose stored part expired (a pause past ``upload_ttl_s``)."""
    return ApiError(
        ErrorCode.UPLOAD_TIMEOUT,
        f"the upload paused longer than {store.config.upload_ttl_s:g} s and its stored part "
        "expired: send the video again",
    )


def too_large(limits: UploadLimits) -> ApiError:
    """The refusal of an upload over the limit."""
    return ApiError(
        ErrorCode.UPLOAD_TOO_LARGE,
        f"the video is larger than {limits.max_bytes} bytes: send a shorter or smaller one",
    )


def job_options(fields: dict[str, list[str]]) -> JobOptions:
    """The job's options from the form's fields (see the module's docstring).

    Raises:
        ApiError: ``invalid_options``.
    """
    data: dict[str, object] = {}
    if OPTIONS_FIELD in fields:
        if len(fields) > 1 or len(fields[OPTIONS_FIELD]) > 1:
            raise ApiError(
                ErrorCode.INVALID_OPTIONS,
                f"send the options once, either as JSON in the field '{OPTIONS_FIELD}' or as "
                f"fields of their own ({', '.join(sorted(OPTION_FIELDS))}), not both",
            )
        try:
            loaded = json.loads(fields[OPTIONS_FIELD][0])
        except json.JSONDecodeError as error:
            raise ApiError(
                ErrorCode.INVALID_OPTIONS, f"the field '{OPTIONS_FIELD}' is not JSON: {error}"
            ) from error
        if not isinstance(loaded, dict):
            raise ApiError(
                ErrorCode.INVALID_OPTIONS, f"the field '{OPTIONS_FIELD}' must be a JSON object"
            )
        data = loaded
    for name, values in fields.items():
        if name in LIST_OPTIONS:
            items = (item.strip() for value in values for item in value.split(LIST_SEPARATOR))
            data[name] = [item for item in items if item]
        elif name != OPTIONS_FIELD:
            if len(values) > 1:
                raise ApiError(ErrorCode.INVALID_OPTIONS, f"the field '{name}' came twice")
            data[name] = values[0]
    try:
        return JobOptions.model_validate(data)
    except ValidationError as error:
        raise ApiError(
            ErrorCode.INVALID_OPTIONS, f"invalid options: {validation_message(error.errors())}"
        ) from error


def check_video(path: Path, limits: UploadLimits) -> VideoInfo:
    """Probe the upload and hold it to ``limits``.

    Raises:
        ApiError: the video's own code (:class:`~service.pipeline.video.VideoError`), or
            ``video_too_long``, ``too_many_frames``, ``resolution_too_high``.
    """
    try:
        # Refused before a frame is decoded when its headers declare too many pixels.
        info = probe(path, max_pixels=limits.max_width * limits.max_height)
    except VideoError as error:
        raise ApiError(ErrorCode(error.code), str(error)) from error
    if info.duration > limits.max_duration_s:
        raise ApiError(
            ErrorCode.VIDEO_TOO_LONG,
            f"the video lasts {info.duration:.1f} s, longer than {limits.max_duration_s:g} s: "
            "cut it into shorter pieces",
        )
    if info.frame_count > limits.max_frames:
        raise ApiError(
            ErrorCode.TOO_MANY_FRAMES,
            f"the video has {info.frame_count} frames, more than {limits.max_frames}: cut it "
            "shorter, or lower its frame rate",
        )
    fits = (info.width <= limits.max_width and info.height <= limits.max_height) or (
        info.height <= limits.max_width and info.width <= limits.max_height
    )  # either orientation
    if not fits:
        raise ApiError(
            ErrorCode.RESOLUTION_TOO_HIGH,
            f"the video is {info.width} × {info.height} pixels, more than "
            f"{limits.max_width} × {limits.max_height}: scale it down",
        )
    pixel_frames = info.width * info.height * info.frame_count
    if pixel_frames > limits.max_pixel_frames:
        raise ApiError(
            ErrorCode.TOO_MANY_PIXELS,
            f"the video's {info.frame_count} frames of {info.width} × {info.height} pixels "
            f"are {pixel_frames} pixels to decode, more than {limits.max_pixel_frames}: "
            "scale it down or cut it shorter",
        )
    return info


@dataclass
class _Part:
    """The part being read: its headers so far, then what it is."""

    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    is_video: bool = False
    data: bytearray = field(default_factory=bytearray)  # an option field's value


class VideoForm:
    """One ``POST /jobs`` body, parsed as it arrives (:meth:`receive`)."""

    def __init__(
        self, boundary: bytes, limits: UploadLimits, pending: PendingJob, folder: Path
    ) -> None:
        self.limits = limits
        self.pending = pending
        self.path = folder / LOCAL_NAME
        self.fields: dict[str, list[str]] = {}
        self.options: JobOptions | None = None  # checked as the video begins
        self.video_bytes = 0  # received so far
        self._stored_bytes = 0  # of them, appended to Redis
        self._part = _Part()
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._video_seen = False  # the options are checked, and the local file opened, once it is
        self._local: BinaryIO | None = None
        self._ended = False
        self._unstored = bytearray()  # the video's bytes not yet appended
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_end": self._on_end,
            },
        )

    async def receive(self, request: Request) -> ReceivedVideo:
        """Read the whole body, its video stored as it comes.

        Raises:
            ApiError: anything wrong with the form (its code says what), or a client too slow;
                what was stored is not deleted here, but by the :class:`PendingJob` around.
        """
        try:
            await self._read(request)
        finally:
            if self._local is not None:
                self._local.close()
        if self.video_bytes == 0:
            raise ApiError(ErrorCode.EMPTY_UPLOAD, "the video is empty (0 bytes)")
        assert self.options is not None  # checked as the video began
        return ReceivedVideo(self.path, self.video_bytes, self.options)

    async def _chunks(self, request: Request) -> AsyncIterator[bytes]:
        """The body's chunks, each within ``read_timeout_s`` of the one before, all within
        ``max_upload_s``."""
        limits = self.limits
        deadline = anyio.current_time() + limits.max_upload_s
        chunks = request.stream()
        while True:
            wait = min(limits.read_timeout_s, deadline - anyio.current_time())
            with anyio.move_on_after(wait) as waiting:
                chunk = await anext(chunks, None)
            if waiting.cancelled_caught:
                mark_body_abandoned(request)
                if anyio.current_time() >= deadline:
                    message = f"the upload took longer than {limits.max_upload_s:g} s"
                else:
                    message = f"the upload paused longer than {limits.read_timeout_s:g} s"
                raise ApiError(
                    ErrorCode.UPLOAD_TIMEOUT, f"{message}: send it again on a faster connection"
                )
            if chunk is None:
                return
            yield chunk

    async def _read(self, request: Request) -> None:
        body_bytes = 0
        try:
            async for chunk in self._chunks(request):
                body_bytes += len(chunk)
                self._parser.write(chunk)  # refuses a video past the limit (_on_part_data)
                if body_bytes - self.video_bytes > FORM_OVERHEAD_BYTES:
                    raise ApiError(
                        ErrorCode.UPLOAD_TOO_LARGE,
                        f"the form's parts besides the video take more than "
                        f"{FORM_OVERHEAD_BYTES} bytes: send only the video and the options",
                    )
                await self._store(final=False)
        except MultipartParseError as error:
            raise ApiError(
                ErrorCode.INVALID_MULTIPART, f"the form does not parse: {error}"
            ) from error
        except ClientDisconnect as error:
            raise ApiError(
                ErrorCode.INVALID_MULTIPART, "the client left before the form ended"
            ) from error
        mark_body_read(request)
        self._parser.finalize()
        if not self._ended:
            raise ApiError(
                ErrorCode.INVALID_MULTIPART,
                "the form ended before its closing boundary: the upload was cut short",
            )
        if not self._video_seen:
            raise ApiError(
                ErrorCode.MISSING_VIDEO,
                f"the form has no part named '{VIDEO_FIELD}': send the video in it",
            )
        await self._store(final=True)

    async def _store(self, *, final: bool) -> None:
        """Check the options and open the local file once the video began; append what came
        of the video, a chunk of ``chunk_bytes`` at a time (the rest too when ``final``)."""
        if self._video_seen and self.options is None:
            self.options = job_options(self.fields)
            self._local = self.path.open("wb")
        chunk_bytes = self.limits.chunk_bytes
        while len(self._unstored) >= chunk_bytes or (final and self._unstored):
            chunk = bytes(self._unstored[:chunk_bytes])
            del self._unstored[:chunk_bytes]
            await run_in_threadpool(self._append, chunk)

    def _append(self, chunk: bytes) -> None:
        """One chunk to Redis and to the local file (in a thread: both block)."""
        assert self._local is not None
        store = self.pending.store
        try:
            self._stored_bytes = store.append_video(self.pending.upload, chunk, self._stored_bytes)
        except VideoTooLargeError as error:  # the store's own limit is the lower one
            raise too_large(self.limits) from error
        except JobClosedError as error:
            raise expired(store) from error
        self._local.write(chunk)

    # --- the parser's callbacks (synchronous; they may raise ApiError) ---------------------

    def _on_part_begin(self) -> None:
        self._part = _Part()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        name = self._header_name.decode("latin-1").lower()
        self._part.headers[name] = self._header_value.decode("latin-1")
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        _, params = parse_options_header(self._part.headers.get("content-disposition"))
        name = params.get(b"name", b"").decode("utf-8", errors="replace")
        if not name:
            raise ApiError(ErrorCode.INVALID_MULTIPART, "a part of the form has no name")
        self._part.name = name
        if name == VIDEO_FIELD:
            self._begin_video()
        elif name in OPTION_FIELDS or name == OPTIONS_FIELD:
            if self._video_seen:
                raise ApiError(
                    ErrorCode.INVALID_OPTIONS,
                    f"the option '{name}' came after the video: send the options first",
                )
        elif b"filename" in params:  # a file in another part: the video, misnamed
            raise ApiError(
                ErrorCode.MISSING_VIDEO,
                f"the form sends a file in a part named '{name}': name it '{VIDEO_FIELD}', as "
                f"in curl -F {VIDEO_FIELD}=@clip.mp4 ...",
            )
        else:
            known = ", ".join([VIDEO_FIELD, OPTIONS_FIELD, *sorted(OPTION_FIELDS)])
            raise ApiError(
                ErrorCode.INVALID_OPTIONS,
                f"the form has a field '{name}' that a job does not take; it takes: {known}",
            )

    def _begin_video(self) -> None:
        if self._video_seen:
            raise ApiError(ErrorCode.INVALID_MULTIPART, "send one video per job")
        media_type = self._part.headers.get("content-type", DEFAULT_PART_TYPE)
        media_type = media_type.split(";")[0].strip().lower()
        accepted = [known.lower() for known in self.limits.content_types]
        if media_type not in accepted:
            raise ApiError(
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                f"the video's Content-Type is {media_type}; send one of {', '.join(accepted)}",
            )
        _, params = parse_options_header(self._part.headers.get("content-disposition"))
        suffix = Path(params.get(b"filename", b"").decode("utf-8", errors="replace")).suffix
        if SUFFIX_PATTERN.fullmatch(suffix):
            self.path = self.path.with_suffix(suffix)
        self._part.is_video = True
        self._video_seen = True

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part.is_video:
            self.video_bytes += end - start
            if self.video_bytes > self.limits.max_bytes:
                raise too_large(self.limits)
            self._unstored += data[start:end]
            return
        self._part.data += data[start:end]
        if len(self._part.data) > MAX_FIELD_BYTES:
            raise ApiError(
                ErrorCode.INVALID_OPTIONS,
                f"the field '{self._part.name}' is longer than {MAX_FIELD_BYTES} bytes",
            )

    def _on_part_end(self) -> None:
        if self._part.is_video:
            return
        try:
            value = self._part.data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ApiError(
                ErrorCode.INVALID_OPTIONS, f"the field '{self._part.name}' is not UTF-8 text"
            ) from error
        self.fields.setdefault(self._part.name, []).append(value)

    def _on_end(self) -> None:
        self._ended = True
