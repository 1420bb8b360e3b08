"""Files a user can open, written from a video's result (a :class:`VideoResult`).

:func:`write_outputs` writes them all into one folder::

    out_dir/
        result.json                           parameters, cameras, joints; no vertices
        result.npz                            all of it; vertices too, unless told not to
        meshes/track_001/frame_000000.obj     one mesh per person and frame (and .ply)
        tracks/track_001.glb                  one animated, skinned body per person
        tracks/track_001.bvh                  its skeleton and motion, for animation tools
        preview.mp4                           the video with everyone's mesh drawn over it
                                              (and their keypoints, if asked)

The result holds parameters, not vertices: the writers that need vertices (``result.npz``, OBJ,
PLY, the preview) pose them with the body model they are given
(:data:`~service.pipeline.body.MeshVertices`, :class:`~service.pipeline.body.BodyMeshes` on a
bundle's ``body.onnx``), a block of frames at a time, so writing takes the same memory for a
long video as for a short one.

One module per kind of file, each with functions that return bytes for the gateway to serve:

- :mod:`.result_files`: ``result.json`` (its pydantic schema :class:`ResultDocument`) and
  ``result.npz`` (:func:`read_result_npz` reads it back); VIBE's keys where they apply;
- :mod:`.meshes`: OBJ and PLY of a track in a frame, in the body or the camera frame;
- :mod:`.gltf`: a track as a glTF binary, skinned on the body's 24 joints, animated at the
  video's frame rate and moving through the scene, turned from OpenCV's axes to glTF's;
- :mod:`.bvh`: a track as a BVH skeleton and motion, in the GLB's axes;
- :mod:`.preview`: the preview MP4 (H.264).
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from service.outputs.bvh import write_track_bvh
from service.outputs.gltf import track_glb, write_track_glb
from service.outputs.meshes import MESH_FORMATS, track_frame_mesh, write_meshes
from service.outputs.preview import write_preview
from service.outputs.result_files import (
    ResultDocument,
    read_result_npz,
    result_document,
    write_result_json,
    write_result_npz,
)
from service.pipeline.body import MeshVertices
from service.pipeline.result import VideoResult

if TYPE_CHECKING:
    from service.pipeline.run import Progress

OutputFormat = Literal["json", "npz", "obj", "ply", "glb", "bvh", "preview"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("json", "npz", "obj", "ply", "glb", "bvh", "preview")
# The formats written one file a track, in the tracks folder.
TrackFormat = Literal["glb", "bvh"]
TRACK_FORMATS: tuple[TrackFormat, ...] = ("glb", "bvh")
RESULT_JSON = "result.json"
RESULT_NPZ = "result.npz"
MESHES_FOLDER = "meshes"
TRACKS_FOLDER = "tracks"
PREVIEW_FILE = "preview.mp4"

__all__ = [
    "OUTPUT_FORMATS",
    "TRACK_FORMATS",
    "OutputFormat",
    "ResultDocument",
    "TrackFormat",
    "read_result_npz",
    "result_document",
    "track_file_name",
    "track_frame_mesh",
    "track_glb",
    "write_outputs",
]


def track_file_name(track_id: int, fmt: TrackFormat) -> str:
    """The file name of a track's GLB or BVH in the tracks folder."""
    return f"track_{track_id:03d}.{fmt}"


def write_outputs(
    video: VideoResult,
    video_path: str | Path,
    out_dir: str | Path,
    body: MeshVertices,
    *,
    focal_length: float,
    formats: Collection[OutputFormat] = OUTPUT_FORMATS,
    camera_frame_meshes: bool = False,
    npz_vertices: bool = True,
    preview_keypoints: bool = False,
    progress: Progress | None = None,
) -> dict[OutputFormat, list[Path]]:
    """Write the chosen outputs of ``video`` into ``out_dir`` (created if needed).

    Args:
        video: the pipeline's result.
        video_path: the video it was made from (read for the preview only).
        out_dir: the folder to write into.
        body: the body model that poses the tracks' parameters (``result.npz``, OBJ, PLY
            and the preview hold posed vertices).
        focal_length: the focal length in pixels the pipeline assumed (for the preview).
        formats: which files to write (:data:`OUTPUT_FORMATS`).
        camera_frame_meshes: OBJ and PLY in the camera frame (where each person stands)
            rather than the body frame.
        npz_vertices: ``result.npz`` holds every track's posed vertices (VIBE's ``verts``), by
            far its bulk; without them it holds parameters alone (the service's workers:
            :func:`~service.outputs.result_files.write_result_npz`).
        preview_keypoints: the preview draws each person's keypoint landmarks and skeleton
            over the meshes.
        progress: told (step, done, total) as the meshes ("meshes", person-frames) and the
            preview ("preview", frames) are written, the two long steps.

    Returns:
        The files written, by format.

    Raises:
        ValueError: an unknown format.
    """
    unknown = set(formats) - set(OUTPUT_FORMATS)
    if unknown:
        raise ValueError(f"unknown output formats {sorted(unknown)}; choose from {OUTPUT_FORMATS}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[OutputFormat, list[Path]] = {}
    if "json" in formats:
        written["json"] = [write_result_json(video, out_dir / RESULT_JSON)]
    if "npz" in formats:
        npz_body = body if npz_vertices else None
        written["npz"] = [write_result_npz(video, out_dir / RESULT_NPZ, npz_body)]
    mesh_formats = [fmt for fmt in MESH_FORMATS if fmt in formats]
    if mesh_formats:  # posed once for both formats
        meshes = write_meshes(
            video,
            out_dir / MESHES_FOLDER,
            body,
            mesh_formats,
            camera_frame=camera_frame_meshes,
            progress=functools.partial(progress, "meshes") if progress else None,
        )
        for fmt, paths in meshes.items():
            written[fmt] = paths
    track_writers = {"glb": write_track_glb, "bvh": write_track_bvh}
    for kind in (kind for kind in TRACK_FORMATS if kind in formats):  # one file a track
        (out_dir / TRACKS_FOLDER).mkdir(exist_ok=True)
        written[kind] = [
            track_writers[kind](
                track,
                video.body,
                video.fps,
                out_dir / TRACKS_FOLDER / track_file_name(track.track_id, kind),
            )
            for track in video.tracks
        ]
    if "preview" in formats:
        written["preview"] = [
            write_preview(
                video,
                video_path,
                out_dir / PREVIEW_FILE,
                body,
                focal_length=focal_length,
                keypoints=preview_keypoints,
                progress=functools.partial(progress, "preview") if progress else None,
            )
        ]
    return written
