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
PLY, the preview) take them from one pass over the video's frames that poses each person-frame
once with the body model it is given (:mod:`.posed_frames`;
:data:`~service.pipeline.body.MeshVertices`, :class:`~service.pipeline.body.BodyMeshes` on a
bundle's ``body.onnx``), a frame at a time, so writing takes the same memory for a long video
as for a short one.

One module per kind of file, each with functions that return bytes for the gateway to serve:

- :mod:`.result_files`: ``result.json`` (its pydantic schema :class:`ResultDocument`) and
  ``result.npz`` (:func:`read_result_npz` reads it back); VIBE's keys where they apply;
- :mod:`.meshes`: OBJ and PLY of a track in a frame, in the body or the camera frame;
- :mod:`.gltf`: a track as a glTF binary, skinned on the body's 24 joints, animated at the
  video's frame rate and moving through the scene, turned from OpenCV's axes to glTF's;
- :mod:`.bvh`: a track as a BVH skeleton and motion, in the GLB's axes;
- :mod:`.preview`: the preview MP4 (H.264);
- :mod:`.posed_frames`: the one pass that poses every person-frame for the others.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from service.outputs.bvh import write_track_bvh
from service.outputs.gltf import track_glb, write_track_glb
from service.outputs.meshes import MESH_FORMATS, MeshFiles, track_frame_mesh
from service.outputs.posed_frames import PosedPerson, posed_frames
from service.outputs.preview import write_preview
from service.outputs.result_files import (
    ResultDocument,
    VertexSpool,
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
# write_outputs's one long step: the pass that poses every person-frame for the files that
# need vertices, counted in frames.
POSING_STEP = "posing"

__all__ = [
    "OUTPUT_FORMATS",
    "POSING_STEP",
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
        progress: told (:data:`POSING_STEP`, frames done, frames to do) as the pass that
            poses every person-frame goes, in the frames with someone in them.

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

    # Everything that needs vertices takes them from one pass, each person-frame posed once,
    # as the preview's frames come (or at once, without a preview).
    with contextlib.ExitStack() as stack:
        takers: list[Callable[[PosedPerson], None]] = []
        mesh_formats = [fmt for fmt in MESH_FORMATS if fmt in formats]
        meshes = MeshFiles(out_dir / MESHES_FOLDER, video.body.faces, mesh_formats,
                           camera_frame=camera_frame_meshes)  # fmt: skip
        stack.enter_context(meshes)
        if mesh_formats:
            takers.append(meshes.write)
        spool = None
        if "npz" in formats and npz_vertices:
            spool = stack.enter_context(VertexSpool(out_dir))
            takers.append(spool.add)
        if takers or "preview" in formats:
            posed = _shared(posed_frames(video, body), takers, video, progress)
            if "preview" in formats:
                written["preview"] = [
                    write_preview(video, video_path, out_dir / PREVIEW_FILE, posed,
                                  focal_length=focal_length, keypoints=preview_keypoints)
                ]  # fmt: skip
            for _ in posed:  # the frames past the preview's last, if any; all without it
                pass
        for fmt, paths in meshes.written.items():
            written[fmt] = paths
        if "npz" in formats:
            written["npz"] = [write_result_npz(video, out_dir / RESULT_NPZ, vertices=spool)]
    return {fmt: written[fmt] for fmt in OUTPUT_FORMATS if fmt in written}


def _shared(
    posed: Iterator[tuple[int, list[PosedPerson]]],
    takers: list[Callable[[PosedPerson], None]],
    video: VideoResult,
    progress: Progress | None,
) -> Iterator[tuple[int, list[PosedPerson]]]:
    """``posed`` as it comes, each person handed to every taker on the way, and the frames
    done reported as :data:`POSING_STEP`."""
    frames = len({frame for track in video.tracks for frame in track.frame_ids.tolist()})
    for done, (frame_id, people) in enumerate(posed, start=1):
        for person in people:
            for take in takers:
                take(person)
        if progress is not None:
            progress(POSING_STEP, done, frames)
        yield frame_id, people
