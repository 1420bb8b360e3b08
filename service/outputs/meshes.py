"""A track's mesh in one frame as a file: Wavefront OBJ (text) or PLY (binary little-endian).

The files hold the body's vertices in metres, by default in the body frame turned to y up:
VIBE's ``verts`` (OpenCV's axes, x right, y down, z forward) turned a half turn about x, as the
GLB (:mod:`.gltf`) turns them, so that people stand upright facing the viewer in any viewer
with y up (Blender's OBJ import, MeshLab, three.js). With ``camera_frame=True`` they are where
the person stands in the camera's frame, in OpenCV's axes, unturned (vertices + translation:
projected by the camera, they overlay the image).

The result holds no vertices: a body model (:data:`~service.pipeline.body.MeshVertices`)
poses them from the track's ``rotmat`` and ``betas`` when a file is made, one frame at a time
(:func:`pose_frame`), here and in the gateway, which makes each file on download from the
parameters alone (:mod:`service.gateway.frame_meshes`). One frame a run, never a batch: the
bundle's ``body.onnx`` rounds a frame's float32 vertices otherwise (by up to 3e-7 m) in a batch
of another size, as onnxruntime's CPU kernels sum in another order for another shape, so only
a frame posed alone everywhere makes the same bytes in ``meshcast run``'s files and in the
gateway's downloads. Posing a frame alone takes 5.6 ms for the stand-in on one thread, about
3 ms more than its share of a batch, beside 30 ms to format its OBJ. (Where every core is
busy, onnxruntime's threads spinning between runs cost more: ``meshcast run``'s outputs of
the committed clip took 23.1 s instead of 19.2 s on two cores shared with a training.)

Written with numpy rather than a mesh library: both formats are a few lines of header around
arrays, and one formatting call per file keeps thousands of them (every person and frame of a
video) fast. Vertices keep float32's precision exactly: PLY stores the float32 bytes, OBJ
prints :data:`FLOAT32_DIGITS` significant digits. Faces keep their order and winding.

Files on disk: ``meshes/track_{id:03d}/frame_{frame:06d}.obj|ply`` (:func:`mesh_path`).
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from pathlib import Path
from typing import Literal

import numpy as np

from service.outputs.gltf import OPENCV_TO_GLTF
from service.pipeline.body import MeshVertices
from service.pipeline.people import FrameProgress
from service.pipeline.result import TrackResult, VideoResult

# OpenCV's axes → y up: the GLB's half turn about x, as per-axis signs (exact in float32).
OPENCV_TO_Y_UP = np.diag(OPENCV_TO_GLTF).astype(np.float32)
MeshFormat = Literal["obj", "ply"]
MESH_FORMATS: tuple[MeshFormat, ...] = ("obj", "ply")
# Nine significant decimal digits tell every float32 apart (IEEE 754's round-trip count).
FLOAT32_DIGITS = 9
# OBJ numbers vertices from 1.
OBJ_FIRST_INDEX = 1
VERTICES_PER_FACE = 3
# A PLY face: its vertex count as one byte, then the indices as little-endian int32.
PLY_FACE_DTYPE = np.dtype([("count", "u1"), ("indices", "<i4", (VERTICES_PER_FACE,))])


def obj_bytes(vertices: np.ndarray, faces: np.ndarray, comment: str = "") -> bytes:
    """A triangle mesh as OBJ text: ``v x y z`` lines, then ``f a b c`` lines (1-based).

    Args:
        vertices: ``(V, 3)`` float, metres.
        faces: ``(F, 3)`` int, 0-based vertex indices.
        comment: one line written first, after ``#``.
    """
    points = np.asarray(vertices, dtype=np.float32).astype(np.float64)  # exact float32 values
    vertex_line = " ".join(["v"] + [f"%.{FLOAT32_DIGITS}g"] * 3) + "\n"
    text = (f"# {comment}\n" if comment else "") + (vertex_line * len(points)) % tuple(
        points.ravel().tolist()
    )
    return text.encode("ascii") + _obj_faces(np.asarray(faces, dtype=np.int64).tobytes())


@functools.lru_cache(maxsize=4)
def _obj_faces(faces: bytes) -> bytes:
    """The ``f a b c`` lines of ``(F, 3)`` int64 faces given as bytes: one body's faces are
    the same in every frame, and formatting them is two thirds of an OBJ's time."""
    triangles = np.frombuffer(faces, dtype=np.int64) + OBJ_FIRST_INDEX
    face_line = " ".join(["f"] + ["%d"] * VERTICES_PER_FACE) + "\n"
    count = len(triangles) // VERTICES_PER_FACE
    return ((face_line * count) % tuple(triangles.tolist())).encode("ascii")


def ply_bytes(vertices: np.ndarray, faces: np.ndarray, comment: str = "") -> bytes:
    """A triangle mesh as binary little-endian PLY: float32 ``x y z``, int32 triangle indices.

    Args:
        vertices: ``(V, 3)`` float, metres.
        faces: ``(F, 3)`` int, 0-based vertex indices.
        comment: one ``comment`` line of the header.
    """
    points = np.asarray(vertices, dtype="<f4")
    records = np.empty(len(faces), dtype=PLY_FACE_DTYPE)
    records["count"] = VERTICES_PER_FACE
    records["indices"] = faces
    header = "\n".join(
        [
            "ply",
            "format binary_little_endian 1.0",
            *([f"comment {comment}"] if comment else []),
            f"element vertex {len(points)}",
            "property float x",
            "property float y",
            "property float z",
            f"element face {len(records)}",
            "property list uchar int vertex_indices",
            "end_header",
        ]
    )
    return (header + "\n").encode("ascii") + points.tobytes() + records.tobytes()


def encode_mesh(
    vertices: np.ndarray, faces: np.ndarray, fmt: MeshFormat, comment: str = ""
) -> bytes:
    """A triangle mesh as the bytes of an OBJ or PLY file (see :func:`obj_bytes`,
    :func:`ply_bytes`)."""
    encoders = {"obj": obj_bytes, "ply": ply_bytes}
    return encoders[fmt](vertices, faces, comment)


def pose_frame(
    body: MeshVertices,
    rotmat: np.ndarray,
    betas: np.ndarray,
    translation: np.ndarray | None = None,
) -> np.ndarray:
    """One frame's ``(V, 3)`` float32 vertices, posed alone (see the module for why).

    Args:
        body: the body model.
        rotmat: the frame's ``(24, 3, 3)`` float32 joint rotations.
        betas: its ``(10,)`` float32 shape.
        translation: its ``(3,)`` translation, added when given: the body where it stands in
            the camera's frame, instead of the body frame.
    """
    vertices = np.asarray(body(rotmat[None], betas[None]), dtype=np.float32)[0]
    if translation is None:
        return vertices
    return vertices + np.asarray(translation, dtype=np.float32)


def frame_vertices(
    track: TrackResult, frame_id: int, body: MeshVertices, *, camera_frame: bool = False
) -> np.ndarray:
    """A track's ``(V, 3)`` float32 vertices in video frame ``frame_id``.

    Args:
        track: the person.
        frame_id: index of the video's frame.
        body: the body model that poses the track's parameters.
        camera_frame: add the frame's translation: the body where it stands in the camera's
            frame, instead of the body frame.

    Raises:
        KeyError: the track does not cover ``frame_id``.
    """
    return _posed_row(track, _row(track, frame_id), body, camera_frame)


def track_frame_mesh(
    track: TrackResult,
    faces: np.ndarray,
    frame_id: int,
    fmt: MeshFormat,
    body: MeshVertices,
    *,
    camera_frame: bool = False,
) -> bytes:
    """The bytes of one track's mesh file in one frame (what :func:`write_meshes` writes).

    Raises:
        KeyError: the track does not cover ``frame_id``.
    """
    vertices = frame_vertices(track, frame_id, body, camera_frame=camera_frame)
    return _mesh_bytes(track, _row(track, frame_id), vertices, faces, fmt, camera_frame)


def track_folder(track_id: int) -> Path:
    """The folder of a track's meshes, relative to the meshes folder."""
    return Path(f"track_{track_id:03d}")


def mesh_path(track_id: int, frame_id: int, fmt: MeshFormat) -> Path:
    """Where a track's mesh in one frame lies, relative to the meshes folder."""
    return track_folder(track_id) / f"frame_{frame_id:06d}.{fmt}"


def write_meshes(
    video: VideoResult,
    folder: str | Path,
    body: MeshVertices,
    formats: Collection[MeshFormat] = MESH_FORMATS,
    *,
    camera_frame: bool = False,
    progress: FrameProgress | None = None,
) -> dict[MeshFormat, list[Path]]:
    """Write every track's mesh in each of its frames into ``folder`` (:func:`mesh_path`).

    The body poses one frame at a time (:func:`pose_frame`), once for all ``formats``; no
    track's vertices are ever held whole. ``progress`` is told (person-frames done, total).

    Returns:
        The files written per format, track by track, frame by frame.
    """
    folder = Path(folder)
    written: dict[MeshFormat, list[Path]] = {fmt: [] for fmt in formats}
    total = sum(len(track) for track in video.tracks)
    done = 0
    for track in video.tracks:
        (folder / track_folder(track.track_id)).mkdir(parents=True, exist_ok=True)
        for row, frame_id in enumerate(np.asarray(track.frame_ids).tolist()):
            vertices = _posed_row(track, row, body, camera_frame)
            for fmt in formats:
                path = folder / mesh_path(track.track_id, frame_id, fmt)
                mesh = _mesh_bytes(track, row, vertices, video.body.faces, fmt, camera_frame)
                path.write_bytes(mesh)
                written[fmt].append(path)
            done += 1
            if progress is not None:
                progress(done, total)
    return written


def _row(track: TrackResult, frame_id: int) -> int:
    """The row of video frame ``frame_id`` in a track's arrays; KeyError when it has none."""
    rows = np.flatnonzero(np.asarray(track.frame_ids) == frame_id)
    if len(rows) == 0:
        raise KeyError(f"track {track.track_id} has no frame {frame_id}")
    return int(rows[0])


def _posed_row(track: TrackResult, row: int, body: MeshVertices, camera_frame: bool) -> np.ndarray:
    """A row's ``(V, 3)`` float32 vertices, in the camera frame if asked."""
    translation = track.translation[row] if camera_frame else None
    return pose_frame(body, track.rotmat[row], track.betas[row], translation)


def _mesh_bytes(
    track: TrackResult,
    row: int,
    vertices: np.ndarray,
    faces: np.ndarray,
    fmt: MeshFormat,
    camera_frame: bool,
) -> bytes:
    """The bytes of a track's mesh file in one of its rows (:func:`frame_mesh_bytes`)."""
    frame_id = int(track.frame_ids[row])
    return frame_mesh_bytes(vertices, faces, fmt, track.track_id, frame_id, camera_frame)


def frame_mesh_bytes(
    vertices: np.ndarray,
    faces: np.ndarray,
    fmt: MeshFormat,
    track_id: int,
    frame_id: int,
    camera_frame: bool,
) -> bytes:
    """A person's mesh file in one frame, from the ``(V, 3)`` vertices :func:`pose_frame`
    gives (OpenCV's axes): turned to y up in the body frame, as they are in the camera frame,
    with a comment line saying whose, which frame and which axes. ``meshcast run`` and the
    gateway's downloads both make their files here, so their bytes are the same."""
    if not camera_frame:
        vertices = np.asarray(vertices, dtype=np.float32) * OPENCV_TO_Y_UP  # exact: signs only
    return encode_mesh(vertices, faces, fmt, mesh_comment(track_id, frame_id, camera_frame))


def mesh_comment(track_id: int, frame_id: int, camera_frame: bool) -> str:
    """The comment line of a mesh file: whose body, which frame, which units and axes."""
    frame_name = (
        "camera frame, OpenCV axes (x right, y down, z forward)"
        if camera_frame
        else "body frame, y up, facing +z"
    )
    return f"meshcast track {track_id} frame {frame_id}, metres, {frame_name}"
