"""Where a job and its files are: the routes' names, a stored file's URL and media type, and
the job's document (:class:`~service.gateway.schemas.JobDocument`).

The downloads' URLs name the file's format by its extension, so that ``curl -O`` saves it
under a fitting name:

=====================================================  ====================================
URL                                                    stored file
=====================================================  ====================================
``/jobs/{id}/result.json``, ``/jobs/{id}/result.npz``  ``result.json``, ``result.npz``
``/jobs/{id}/preview.mp4``                             ``preview.mp4``
``/jobs/{id}/tracks/{track}.glb|bvh``                  ``tracks/track_NNN.glb|bvh``
``/jobs/{id}/tracks/{track}/frames/{frame}.obj|ply``   made from ``result.npz`` on request
=====================================================  ====================================
"""

from __future__ import annotations

import re

from fastapi import Request

from service.gateway.schemas import Download, JobDocument, JobErrorDocument, JobLinks, Progress
from service.jobs import JobRecord
from service.outputs import PREVIEW_FILE, RESULT_JSON, RESULT_NPZ, TRACKS_FOLDER
from service.outputs.meshes import MESH_FORMATS

# Route names (FastAPI's ``name=``), for url_path_for.
JOB_ROUTE = "get_job"
EVENTS_ROUTE = "job_events"
RESULT_ROUTE = "download_result"
PREVIEW_ROUTE = "download_preview"
TRACK_ROUTE = "download_track"
MESH_ROUTE = "download_mesh"

MEDIA_TYPES = {
    ".json": "application/json",
    ".npz": "application/octet-stream",
    ".mp4": "video/mp4",
    ".glb": "model/gltf-binary",
    ".obj": "model/obj",
    ".ply": "application/octet-stream",
    ".bvh": "text/plain",  # no registered type; a text file any browser shows
}
_TRACK_FILE = re.compile(rf"{TRACKS_FOLDER}/track_(?P<track>\d+)\.(?P<fmt>glb|bvh)")


def media_type(name: str) -> str:
    """The media type of a file, by its extension."""
    return MEDIA_TYPES.get("." + name.rsplit(".", 1)[-1], "application/octet-stream")


def path_for(request: Request, route: str, **params: str | int) -> str:
    """The path of a route, with the app's root path (behind a proxy that adds one)."""
    root = request.scope.get("root_path", "")
    path = request.app.url_path_for(route, **{key: str(value) for key, value in params.items()})
    return f"{root}{path}"


def file_url(request: Request, job_id: str, name: str) -> str | None:
    """The URL of a stored file; ``None`` for a file not served on its own."""
    if name in (RESULT_JSON, RESULT_NPZ):
        return path_for(request, RESULT_ROUTE, job_id=job_id, fmt=name.rsplit(".", 1)[-1])
    if name == PREVIEW_FILE:
        return path_for(request, PREVIEW_ROUTE, job_id=job_id)
    if match := _TRACK_FILE.fullmatch(name):
        return path_for(
            request, TRACK_ROUTE, job_id=job_id, track_id=int(match["track"]), fmt=match["fmt"]
        )
    return None


def job_document(request: Request, job: JobRecord, files: dict[str, int]) -> JobDocument:
    """The document of ``job``, whose published files are ``files`` (name → size)."""
    downloads = []
    for name, size in sorted(files.items()):
        url = file_url(request, job.id, name)
        if url is not None:
            downloads.append(Download(name=name, url=url, size=size, media_type=media_type(name)))
    meshes = {}
    if RESULT_NPZ in files:
        for fmt in MESH_FORMATS:
            if fmt in job.options.formats:
                meshes[fmt] = path_for(
                    request, MESH_ROUTE, job_id=job.id,
                    track_id="{track_id}", frame_id="{frame_id}", fmt=fmt,
                )  # fmt: skip
    error = None
    if job.error_code is not None:
        error = JobErrorDocument(code=job.error_code, message=job.error_message or "")
    return JobDocument(
        id=job.id,
        state=job.state,
        progress=Progress(stage=job.stage, done=job.done, total=job.total),
        options=job.options,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        timings=job.timings,
        attempts=job.attempts,
        error=error,
        links=JobLinks(
            job=path_for(request, JOB_ROUTE, job_id=job.id),
            events=path_for(request, EVENTS_ROUTE, job_id=job.id),
            downloads=downloads,
            meshes=meshes,
        ),
    )
