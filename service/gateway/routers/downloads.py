"""A finished job's files: its result (JSON or NPZ), each track's GLB, its preview, and one
person's mesh in one frame (OBJ or PLY, posed from ``result.npz``'s parameters with the
bundle's body: :mod:`..frame_meshes`).

The format is the URL's extension (see :mod:`service.gateway.links`). Stored files are
streamed from Redis a chunk at a time and answer ``Range`` requests (:mod:`..files`). A job
that has not succeeded has no files (409); a file the job was not asked to make is 404.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from service.gateway.auth import authenticate, owned_job
from service.gateway.context import Gateway, gateway
from service.gateway.errors import (
    ACCESS_CODES,
    PARAMETER_CODES,
    ApiError,
    ErrorCode,
    error_responses,
)
from service.gateway.files import Disposition, file_response
from service.gateway.frame_meshes import FrameNotFoundError, TrackNotFoundError, frame_mesh
from service.gateway.links import (
    MESH_ROUTE,
    PREVIEW_ROUTE,
    RESULT_ROUTE,
    TRACK_ROUTE,
    media_type,
)
from service.gateway.routers.jobs import JobId
from service.jobs import JobRecord, JobState, StoredFile
from service.outputs import (
    PREVIEW_FILE,
    RESULT_NPZ,
    TRACKS_FOLDER,
    ResultDocument,
    TrackFormat,
    track_file_name,
)
from service.outputs.meshes import MeshFormat
from service.settings import ApiKey

TrackId = Annotated[
    int, PathParam(ge=0, description="a track's id, as result.json lists it", examples=[1])
]
RangeHeader = Annotated[
    str | None, Header(alias="Range", description="one byte range", examples=["bytes=0-1023"])
]
FILE_CODES = (
    *ACCESS_CODES, *PARAMETER_CODES, ErrorCode.JOB_NOT_FOUND, ErrorCode.JOB_NOT_FINISHED,
    ErrorCode.JOB_WITHOUT_RESULTS, ErrorCode.FILE_NOT_FOUND,
)  # fmt: skip
STORED_FILE_CODES = (*FILE_CODES, ErrorCode.RANGE_NOT_SATISFIABLE)
MESH_CODES = (*FILE_CODES, ErrorCode.TRACK_NOT_FOUND, ErrorCode.FRAME_NOT_FOUND)

router = APIRouter(tags=["downloads"])


def _file_content(
    description: str, *media: str, json_model: type[BaseModel] | None = None
) -> dict[int | str, dict[str, object]]:
    """The OpenAPI entry of a file answer (200 whole, 206 a range); a JSON file's schema is
    ``json_model``'s (whole files only: a range of one is not a document)."""
    whole: dict[str, object] = {
        "content": {one: {} for one in media},  # FastAPI adds the model's schema in place
        "description": description,
    }
    if json_model is not None:
        whole["model"] = json_model
    return {
        200: whole,
        206: {"content": {one: {} for one in media}, "description": "the byte range asked for"},
    }


def finished_job(services: Gateway, job_id: str, key: ApiKey) -> JobRecord:
    """The key's job, once it succeeded.

    Raises:
        ApiError: ``job_not_found``, ``job_not_finished``, ``job_without_results``.
    """
    job = owned_job(services.store, job_id, key)
    if not job.state.terminal:
        raise ApiError(
            ErrorCode.JOB_NOT_FINISHED,
            f"the job is {job.state.value}: its files come when it succeeds; follow it at "
            f"GET /jobs/{job_id} or its events",
        )
    if job.state is not JobState.SUCCEEDED:
        reason = f" ({job.error_code}: {job.error_message})" if job.error_code else ""
        raise ApiError(
            ErrorCode.JOB_WITHOUT_RESULTS,
            f"the job is {job.state.value}{reason}: it has no files; send the video again",
        )
    return job


def stored_file(services: Gateway, job: JobRecord, name: str, asked_as: str) -> StoredFile:
    """One of the job's stored files.

    Raises:
        ApiError: ``file_not_found``: the job did not make it.
    """
    stored = services.store.open_file(job.id, name)
    if stored is None:
        raise ApiError(
            ErrorCode.FILE_NOT_FOUND,
            f"the job made no {name}: it was asked for {', '.join(job.options.formats)}; "
            f"include '{asked_as}' in the options' formats of a new job",
        )
    return stored


def _serve(
    services: Gateway,
    job: JobRecord,
    name: str,
    asked_as: str,
    range_header: str | None,
    disposition: Disposition = "attachment",
) -> StreamingResponse:
    """A stored file of ``job`` as the answer (``asked_as``: its format among the options)."""
    stored = stored_file(services, job, name, asked_as)
    filename = f"{job.id}-{name.rsplit('/', 1)[-1]}"
    return file_response(stored, media_type(name), filename, range_header, disposition)


@router.get(
    "/jobs/{job_id}/result.{fmt}",
    name=RESULT_ROUTE,
    response_class=StreamingResponse,
    responses={
        **_file_content(
            "result.json: the parameters per track and frame; result.npz: the same at "
            "float32's precision, with the body's rest shape, faces and skinning weights",
            media_type("result.json"),
            media_type("result.npz"),
            json_model=ResultDocument,
        ),
        **error_responses(*STORED_FILE_CODES),
    },
    summary="The result: SMPL parameters, cameras, joints per track (JSON), or all of it "
    "with the body model's arrays (NPZ)",
)
def download_result(
    job_id: JobId,
    fmt: Annotated[Literal["json", "npz"], PathParam(description="json or npz", examples=["json"])],
    key: Annotated[ApiKey, Depends(authenticate)],
    services: Annotated[Gateway, Depends(gateway)],
    range_header: RangeHeader = None,
) -> StreamingResponse:
    """`result.json` or `result.npz` (unrounded, with the body's arrays); neither holds posed
    vertices: each frame's mesh is at `/jobs/{job_id}/tracks/{track_id}/frames/{frame_id}.obj`
    (or `.ply`)."""
    job = finished_job(services, job_id, key)
    disposition: Disposition = "inline" if fmt == "json" else "attachment"
    return _serve(services, job, f"result.{fmt}", fmt, range_header, disposition)


@router.get(
    "/jobs/{job_id}/preview.mp4",
    name=PREVIEW_ROUTE,
    response_class=StreamingResponse,
    responses={
        **_file_content("the video with everyone's mesh drawn over it", media_type(PREVIEW_FILE)),
        **error_responses(*STORED_FILE_CODES),
    },
    summary="The preview video (H.264), seekable (Range)",
)
def download_preview(
    job_id: JobId,
    key: Annotated[ApiKey, Depends(authenticate)],
    services: Annotated[Gateway, Depends(gateway)],
    range_header: RangeHeader = None,
) -> StreamingResponse:
    """The input video with every tracked person's mesh drawn over it."""
    job = finished_job(services, job_id, key)
    return _serve(services, job, PREVIEW_FILE, "preview", range_header, "inline")


@router.get(
    "/jobs/{job_id}/tracks/{track_id}.{fmt}",
    name=TRACK_ROUTE,
    response_class=StreamingResponse,
    responses={
        **_file_content(
            "the track's body, skinned and animated (glb), or its skeleton and motion (bvh)",
            media_type(".glb"),
            media_type(".bvh"),
        ),
        **error_responses(*STORED_FILE_CODES, ErrorCode.TRACK_NOT_FOUND),
    },
    summary="One person through the video as an animated glTF binary or a BVH",
)
def download_track(
    job_id: JobId,
    track_id: TrackId,
    fmt: Annotated[TrackFormat, PathParam(description="glb or bvh", examples=["glb"])],
    key: Annotated[ApiKey, Depends(authenticate)],
    services: Annotated[Gateway, Depends(gateway)],
    range_header: RangeHeader = None,
) -> StreamingResponse:
    """The track's body as a GLB (skinned on its 24 joints, animated at the video's rate) or a
    BVH (the same skeleton and motion, y up), each in the axes of the other."""
    job = finished_job(services, job_id, key)
    name = f"{TRACKS_FOLDER}/{track_file_name(track_id, fmt)}"
    if fmt in job.options.formats and services.store.open_file(job.id, name) is None:
        raise ApiError(
            ErrorCode.TRACK_NOT_FOUND,
            f"the result has no track {track_id}: its tracks are listed in result.json",
        )
    return _serve(services, job, name, fmt, range_header)


@router.get(
    "/jobs/{job_id}/tracks/{track_id}/frames/{frame_id}.{fmt}",
    name=MESH_ROUTE,
    response_class=Response,
    responses={
        200: {
            "content": {"model/obj": {}, "application/octet-stream": {}},
            "description": "the mesh: OBJ text, or binary little-endian PLY",
        },
        **error_responses(*MESH_CODES),
    },
    summary="One person's mesh in one frame (OBJ or PLY)",
)
def download_mesh(
    job_id: JobId,
    track_id: TrackId,
    frame_id: Annotated[
        int, PathParam(ge=0, description="the video's frame, 0-based", examples=[0])
    ],
    fmt: Annotated[MeshFormat, PathParam(description="obj or ply", examples=["obj"])],
    key: Annotated[ApiKey, Depends(authenticate)],
    services: Annotated[Gateway, Depends(gateway)],
    space: Annotated[
        Literal["body", "camera"],
        Query(
            description="body: the body frame turned to y up (VIBE's verts turned a half turn "
            "about x, as in the GLB: upright in any viewer); camera: where the person stands "
            "in the camera's frame (translation added), OpenCV's axes, to overlay on the "
            "video. Both in metres.",
            examples=["camera"],
        ),
    ] = "body",
) -> Response:
    """The track's mesh in that frame, posed from its parameters in `result.npz` (a few
    reads of it) with the bundle's body model."""
    job = finished_job(services, job_id, key)
    if fmt not in job.options.formats:
        raise ApiError(
            ErrorCode.FILE_NOT_FOUND,
            f"the job was not asked for {fmt} meshes: include '{fmt}' in the options' formats "
            "of a new job",
        )
    npz = stored_file(services, job, RESULT_NPZ, fmt)
    try:
        mesh = frame_mesh(
            npz, track_id, frame_id, fmt, camera_frame=space == "camera", body=services.body
        )
    except TrackNotFoundError as error:
        raise ApiError(ErrorCode.TRACK_NOT_FOUND, str(error)) from error
    except FrameNotFoundError as error:
        raise ApiError(ErrorCode.FRAME_NOT_FOUND, str(error)) from error
    filename = f"{job_id}-track_{track_id:03d}-frame_{frame_id:06d}.{fmt}"
    return Response(
        mesh,
        media_type=media_type(filename),
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
