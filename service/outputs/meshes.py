"""A track's mesh in one frame as a file: Wavefront OBJ (text) or PLY (binary little-endian).

The files hold the body's vertices in metres, by default in the body frame turned to y up:
VIBE's ``verts`` (OpenCV's axes, x right, y down, z forward) turned a half turn about x, as the
GLB (:mod:`.gltf`) turns them, so that people stand upright facing the viewer in any viewer
with y up (Blender's OBJ import, MeshLab, three.js). With ``camera_frame=True`` they are where
the person stands in the camera's frame, in OpenCV's axes, unturned (vertices + translation:
projected by the camera, they overlay the image).

The result holds no vertices: a body model (:data:`~service.pipeline.body.MeshVertices`) poses
them from the track's ``rotmat`` and ``betas`` when a file is made, one frame at a time
(:func:`~service.outputs.posed_frames.pose_frame`), here and in the gateway, which makes each
file on download from the parameters alone (:mod:`service.gateway.frame_meshes`). One frame a
run, never a batch: the bundle's ``body.onnx`` rounds a frame's float32 vertices otherwise (by
up to 6e-7 m) in a batch of another size, as onnxruntime's CPU kernels sum in another order for
another shape, so only a frame posed alone everywhere makes the same bytes in ``meshcast
run``'s files and in the gateway's downloads (alone costs 1.3 times a share of its frame's
batch, 0.30 against 0.22 ms for the stand-in: ``meshcast bench outputs``, docs/results.md).

Written with numpy rather than a mesh library: both formats are a few lines of header around
arrays, and one vectorised formatting per file keeps thousands of them (every person and frame
of a video) fast. PLY stores the float32 bytes exactly; OBJ prints each coordinate in
micrometres (:data:`OBJ_DECIMALS` decimals of a metre; the text Python's ``f"{x:.6f}"`` gives
but for a value within a rounding of half a micrometre, and no sign on a value that rounds to
zero), assembled from table lookups in one array a file rather than number by number in Python.
Faces keep their order and winding, and a body's face lines are formatted once.

Files on disk: ``meshes/track_{id:03d}/frame_{frame:06d}.obj|ply`` (:func:`mesh_path`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Collection
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import numpy as np

from service.outputs.gltf import OPENCV_TO_GLTF
from service.outputs.posed_frames import PosedPerson, in_camera_frame, pose_frame, posed_frames
from service.pipeline.body import MeshVertices
from service.pipeline.people import FrameProgress
from service.pipeline.result import TrackResult, VideoResult

# OpenCV's axes → y up: the GLB's half turn about x, as per-axis signs (exact in float32).
OPENCV_TO_Y_UP = np.diag(OPENCV_TO_GLTF).astype(np.float32)
MeshFormat = Literal["obj", "ply"]
MESH_FORMATS: tuple[MeshFormat, ...] = ("obj", "ply")
# OBJ's coordinates in micrometres: far finer than any estimate of a body, and half a
# micrometre from the float32 vertices at most. Written as two groups of three digits.
OBJ_DECIMALS = 6
# OBJ numbers vertices from 1.
OBJ_FIRST_INDEX = 1
VERTICES_PER_FACE = 3
# A PLY face: its vertex count as one byte, then the indices as little-endian int32.
PLY_FACE_DTYPE = np.dtype([("count", "u1"), ("indices", "<i4", (VERTICES_PER_FACE,))])
# MeshFiles: a process of its own formats and writes the files while the pass goes on. On
# threads of the caller's process the formatting held its interpreter lock against the
# preview's drawing, which calls OpenCV once a triangle (docs/results.md). One process: the
# pass takes a core, the writer the other of two. At most this many people wait at once
# (8 × 161 KiB of vertices for the stand-in body).
MESH_WRITER_PROCESSES = 1
MESH_FILES_IN_FLIGHT = 8
# A byte the OBJ formatter leaves where no character is printed (a sign or leading digit not
# needed), dropped before the text is returned.
_UNPRINTED = 0
# The OBJ formatter's words (8 bytes, little-endian: the first byte is the lowest) and their
# parts: the decimals three at a time, each group "000" to "999" as a word's low three bytes
# (1000,), shifted into place after the ".", and the newline in the last byte of z's word.
_WORD = 8
_GROUP_DIGITS = 3
_WORD_DTYPE = np.dtype("<u8")
_GROUP_WORDS = np.array(
    [int.from_bytes(f"{n:03d}".encode("ascii"), "little") for n in range(1000)], dtype=_WORD_DTYPE
)
_DOT_WORD = np.uint64(ord("."))
_HIGH_SHIFT, _LOW_SHIFT = np.uint64(8), np.uint64(8 * (1 + _GROUP_DIGITS))
_NEWLINE_WORD = np.uint64(ord("\n")) << np.uint64(8 * (_WORD - 1))
# Whole metres the words hold: "v " (x) or " " (y, z), a sign and three digits.
_OBJ_WHOLE_LIMIT = 1000


def obj_bytes(vertices: np.ndarray, faces: np.ndarray, comment: str = "") -> bytes:
    """A triangle mesh as OBJ text: ``v x y z`` lines, then ``f a b c`` lines (1-based).

    Args:
        vertices: ``(V, 3)`` finite floats, metres; written with :data:`OBJ_DECIMALS` decimals.
        faces: ``(F, 3)`` int, 0-based vertex indices.
        comment: one line written first, after ``#``.

    Raises:
        ValueError: a vertex is not finite.
    """
    header = (f"# {comment}\n" if comment else "").encode("ascii")
    faces_text = _obj_faces(np.asarray(faces, dtype=np.int64).tobytes())
    return header + _obj_vertex_lines(np.asarray(vertices, dtype=np.float64)) + faces_text


def _obj_vertex_lines(points: np.ndarray) -> bytes:
    """The ``v x y z`` lines of ``(V, 3)`` points, each coordinate in fixed point with
    :data:`OBJ_DECIMALS` decimals. Each line is six 8-byte words, looked up and combined as
    integers in one array a file: for each coordinate a word holding its sign and whole metres
    (right-aligned after ``"v "`` or ``" "``), and one holding ``"."``, its decimals three at a
    time from a table, and the newline after z; the bytes no character needs are dropped last.
    Points :data:`_OBJ_WHOLE_LIMIT` metres away or more (never a body near a camera) are
    printed by Python number by number."""
    if not np.isfinite(points).all():
        raise ValueError("an OBJ's vertices must be finite numbers")
    scaled = np.rint(points * 10**OBJ_DECIMALS).astype(np.int64)  # (V, 3)
    whole, fraction = np.divmod(np.abs(scaled), 10**OBJ_DECIMALS)
    if whole.max(initial=0) >= _OBJ_WHOLE_LIMIT:
        line = f"v {{:.{OBJ_DECIMALS}f}} {{:.{OBJ_DECIMALS}f}} {{:.{OBJ_DECIMALS}f}}\n"
        return "".join(line.format(*point) for point in points.tolist()).encode("ascii")
    signed = whole + _OBJ_WHOLE_LIMIT * (scaled < 0)  # the whole-part tables' row
    high, low = _GROUP_WORDS[fraction // 1000], _GROUP_WORDS[fraction % 1000]
    decimals = _DOT_WORD | (high << _HIGH_SHIFT) | (low << _LOW_SHIFT)
    words = np.empty((len(points), 6), dtype=_WORD_DTYPE)  # x's whole, x's decimals, y's, z's
    words[:, 0] = _FIRST_WHOLE_WORDS[signed[:, 0]]
    words[:, 2] = _WHOLE_WORDS[signed[:, 1]]
    words[:, 4] = _WHOLE_WORDS[signed[:, 2]]
    words[:, 1::2] = decimals
    words[:, 5] |= _NEWLINE_WORD
    return words.tobytes().translate(None, bytes([_UNPRINTED]))


def _whole_words(prefix: bytes) -> np.ndarray:
    """``(2 × limit,)`` 8-byte words: ``prefix``, then the whole metres 0 … limit - 1, then the
    same negative, right-aligned, :data:`_UNPRINTED` between."""
    fields = []
    for sign in ("", "-"):
        for whole in range(_OBJ_WHOLE_LIMIT):
            text = f"{sign}{whole}".encode("ascii")
            fields.append(prefix + bytes([_UNPRINTED]) * (_WORD - len(prefix) - len(text)) + text)
    return np.frombuffer(b"".join(fields), dtype=_WORD_DTYPE)


_FIRST_WHOLE_WORDS = _whole_words(b"v ")  # (2000,) x: after "v "
_WHOLE_WORDS = _whole_words(b" ")  # (2000,) y and z: after " "


@functools.lru_cache(maxsize=4)
def _obj_faces(faces: bytes) -> bytes:
    """The ``f a b c`` lines of ``(F, 3)`` int64 faces given as bytes: one body's faces are
    the same in every frame, so they are formatted once."""
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


class MeshFiles:
    """Writes posed people's mesh files into ``folder`` (:func:`mesh_path`), one file per
    person, frame and format, as their poses come (:mod:`.posed_frames`).

    A context manager: the files are formatted and written by :data:`MESH_WRITER_PROCESSES`
    process (started with the first person, with Python's default way of starting one) while
    the caller goes on, at most :data:`MESH_FILES_IN_FLIGHT` people at a time, so memory stays
    flat; leaving waits for them, and the first error of the writer is raised by the next
    ``write`` or on leaving.
    """

    def __init__(
        self,
        folder: str | Path,
        faces: np.ndarray,
        formats: Collection[MeshFormat] = MESH_FORMATS,
        *,
        camera_frame: bool = False,
    ) -> None:
        self.folder = Path(folder)
        self.faces = faces
        self.formats = tuple(formats)
        self.camera_frame = camera_frame
        self.written: dict[MeshFormat, list[Path]] = {fmt: [] for fmt in self.formats}
        self._track_folders: set[int] = set()
        self._writer: ProcessPoolExecutor | None = None
        self._slots = threading.BoundedSemaphore(MESH_FILES_IN_FLIGHT)
        self._error: BaseException | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True, cancel_futures=error is not None)
        if self._error is not None and error is None:
            raise self._error

    def write(self, person: PosedPerson) -> None:
        """Have ``person``'s files written, one per format.

        Raises:
            Exception: what writing an earlier person's files raised.
        """
        if self._error is not None:
            raise self._error
        track_id = person.track.track_id
        if track_id not in self._track_folders:
            (self.folder / track_folder(track_id)).mkdir(parents=True, exist_ok=True)
            self._track_folders.add(track_id)
        paths = [self.folder / mesh_path(track_id, person.frame_id, fmt) for fmt in self.formats]
        for fmt, path in zip(self.formats, paths, strict=True):
            self.written[fmt].append(path)
        if self._writer is None:
            writer = _PersonFiles(self.faces, self.formats, self.camera_frame)
            self._writer = ProcessPoolExecutor(
                MESH_WRITER_PROCESSES, initializer=_start_writer, initargs=(writer,)
            )
        self._slots.acquire()
        vertices, translation = person.vertices, person.translation
        written = self._writer.submit(
            _write_person, vertices, translation, track_id, person.frame_id, paths
        )
        written.add_done_callback(self._done)

    def _done(self, written: Future[None]) -> None:
        self._slots.release()
        if not written.cancelled() and written.exception() is not None and self._error is None:
            self._error = written.exception()


@dataclass(frozen=True)
class _PersonFiles:
    """What the writer process needs to make a person's files beyond the person: the body's
    faces (sent once, not with every person), the formats and the frame."""

    faces: np.ndarray
    formats: tuple[MeshFormat, ...]
    camera_frame: bool

    def write(
        self,
        vertices: np.ndarray,
        translation: np.ndarray,
        track_id: int,
        frame_id: int,
        paths: list[Path],
    ) -> None:
        """Write one person-frame's files, one a format, to ``paths``."""
        if self.camera_frame:
            vertices = in_camera_frame(vertices, translation)
        for fmt, path in zip(self.formats, paths, strict=True):
            path.write_bytes(
                frame_mesh_bytes(vertices, self.faces, fmt, track_id, frame_id, self.camera_frame)
            )


# In the writer process: its _PersonFiles, set once when it starts.
_process_files: _PersonFiles | None = None


def _start_writer(files: _PersonFiles) -> None:
    """A writer process's start: keep what every person's files need."""
    global _process_files
    _process_files = files


def _write_person(
    vertices: np.ndarray, translation: np.ndarray, track_id: int, frame_id: int, paths: list[Path]
) -> None:
    """In the writer process: one person-frame's files."""
    assert _process_files is not None, "the writer process was started without its files"
    _process_files.write(vertices, translation, track_id, frame_id, paths)


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

    Each person-frame is posed once, alone (:func:`~.posed_frames.posed_frames`), for all
    ``formats``; no track's vertices are ever held whole. ``progress`` is told (person-frames
    done, total).

    Returns:
        The files written per format, frame by frame.
    """
    total = sum(len(track) for track in video.tracks)
    done = 0
    with MeshFiles(folder, video.body.faces, formats, camera_frame=camera_frame) as files:
        for _, people in posed_frames(video, body):
            for person in people:
                files.write(person)
                done += 1
                if progress is not None:
                    progress(done, total)
    return files.written


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
    """A person's mesh file in one frame, from the ``(V, 3)`` vertices
    :func:`~service.outputs.posed_frames.pose_frame` gives (OpenCV's axes): turned to y up in
    the body frame, as they are in the camera frame, with a comment line saying whose, which
    frame and which axes. ``meshcast run`` and the gateway's downloads both make their files
    here, so their bytes are the same."""
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
