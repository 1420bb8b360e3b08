"""A video's parameters as files: ``result.json`` (readable anywhere), ``result.npz`` (all of it).

Per track the keys are VIBE's demo output keys where the quantity is the same, and names of our
own where it is not (a VIBE key holding other numbers would mislead a VIBE script silently):

================  ==============  ===============  ==============================================
key               shape           TrackResult      VIBE demo (``vibe_output.pkl``)
================  ==============  ===============  ==============================================
frame_ids         (N,) int        frame_ids        ``frame_ids``, the same
boxes_xyxy        (N, 4) pixels   boxes            ``bboxes`` holds ``(cx, cy, w, h)`` of the
                                                   squared box: other numbers, so another key
detected          (N,) bool       detected         —
pred_cam          (N, 3)          cam              ``pred_cam``, the same (crop ``s, tx, ty``)
orig_cam          (N, 4)          orig_cam         ``orig_cam``, the same (``sx, sy, tx, ty``)
pose              (N, 72)         pose             ``pose``, the same (axis-angle, root global)
rotmat            (N, 24, 3, 3)   rotmat           —
betas             (N, 10)         betas            ``betas``, the same
translation       (N, 3) metres   translation      — (VIBE leaves the body at the origin)
joints3d          (N, 24, 3) m    joints3d         ``joints3d`` are SPIN's 49 joints; here SMPL's
                                                   24, in the body frame like VIBE's
joints2d          (N, 24, 2) px   joints2d         ``joints2d`` are the 2D keypoints VIBE was given
                                                   (or None); here SMPL's 24 joints projected
landmarks         (N, 33, 3)      landmarks        — (the keypoint model's 33: x, y in pixels,
                                                   visibility 0–1)
world_landmarks   (N, 33, 3) m    world_landmarks  — (the same 33 in metres, hip-centred,
                                                   axes of a camera turned to look at the person)
keypoint_score    (N,)            keypoint_score   — (the keypoint model's confidence that a
                                                   person is in the crop)
verts             (N, V, 3) m     (posed)          ``verts``, the same (NPZ only, if asked)
score             ()              score            —
================  ==============  ===============  ==============================================

The landmarks are BlazePose GHUM's 33, in the order of the video's ``landmark_names``
(:data:`~service.pipeline.landmarks.LANDMARK_NAMES`; ``left``/``right`` are the person's own
sides), which both files hold and :class:`ResultDocument`'s schema lists.

``result.json`` holds no vertices: at ``V`` = 6,890 (SMPL) to 13,718 (the stand-in) vertices
they are 20,000–41,000 numbers per person and frame, hundreds of kilobytes of text; they are in
the mesh files, and in ``result.npz`` when it is written with a body model. Its numbers are
rounded (:data:`DECIMALS`, :data:`PIXEL_DECIMALS`); :class:`ResultDocument` is its schema (the
gateway serves it).

``result.npz`` holds everything a :class:`~service.pipeline.result.VideoResult` does, so
:func:`read_result_npz` gives it back exactly: the video's keys (``width``, ``height``, ``fps``,
``frame_count``, ``bundle_recipe``, ``landmark_names``, the body's ``body_name``,
``joint_names``, ``parents``, ``faces``, ``skinning_weights``, and ``track_ids``), then each
track's keys above under ``track_{id:03d}/`` with its ``rest_vertices`` and ``rest_joints``.
Arrays are float32 (the pipeline's precision) except boxes and score (float64), ids (int64) and
``detected`` (bool); it is read without pickle.

Given a body model, :func:`write_result_npz` also writes each track's posed vertices,
``verts``, as VIBE's output does (``meshcast run`` does, by default); the result holds none
(they would grow with the video), so they are posed while the file is written, each
person-frame once and alone (:mod:`.posed_frames`), frame by frame. A zip's entries are written
one after another while the frames come in video order, so each track's rows wait on disk in a
:class:`VertexSpool` (never in memory) until the archive takes them; ``write_outputs`` fills the
spool from the same pass that writes the meshes and the preview. The vertices are then the
file's bulk, 161 KiB a person-frame for the stand-in body (81 KiB for SMPL) against 2.5 KiB of
parameters, so the service's workers write the file without them, and the gateway poses a
frame's mesh from the parameters when it is downloaded (:mod:`service.gateway.frame_meshes`).
:func:`read_result_npz` leaves them on disk; ``np.load(path)["track_001/verts"]`` reads one
track's (``np.load`` reads an NPZ's entries only when asked).
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path
from types import TracebackType
from typing import IO, Annotated, Any, Final, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.bundle import NUM_BETAS, NUM_JOINTS
from service.outputs.posed_frames import PosedPerson, posed_frames
from service.pipeline.body import MeshVertices
from service.pipeline.landmarks import LANDMARK_NAMES, NUM_LANDMARKS
from service.pipeline.result import BodyTopology, TrackResult, VideoResult

SCHEMA_VERSION: Final = 2  # 2: the keypoint model's landmarks
COPY_CHUNK_BYTES = 8 << 20  # a spooled track's rows go into the archive 8 MiB at a time
NUM_POSE_PARAMS = NUM_JOINTS * 3  # axis-angle per joint
# Decimals kept in result.json: a micrometre, a microradian, a millionth of the camera's and
# shape's unitless numbers (float32 itself holds ~7 significant digits) ...
DECIMALS = 6
# ... and a thousandth of a pixel for image coordinates.
PIXEL_DECIMALS = 3

Vec2 = Annotated[list[float], Field(min_length=2, max_length=2)]
Vec3 = Annotated[list[float], Field(min_length=3, max_length=3)]
Vec4 = Annotated[list[float], Field(min_length=4, max_length=4)]
Matrix3 = Annotated[list[Vec3], Field(min_length=3, max_length=3)]
Pose = Annotated[list[float], Field(min_length=NUM_POSE_PARAMS, max_length=NUM_POSE_PARAMS)]
Betas = Annotated[list[float], Field(min_length=NUM_BETAS, max_length=NUM_BETAS)]
JointRotations = Annotated[list[Matrix3], Field(min_length=NUM_JOINTS, max_length=NUM_JOINTS)]
Joints3d = Annotated[list[Vec3], Field(min_length=NUM_JOINTS, max_length=NUM_JOINTS)]
Joints2d = Annotated[list[Vec2], Field(min_length=NUM_JOINTS, max_length=NUM_JOINTS)]
Landmarks = Annotated[list[Vec3], Field(min_length=NUM_LANDMARKS, max_length=NUM_LANDMARKS)]
# A landmark's x and y (its columns before visibility) are rounded as pixels in result.json.
LANDMARK_PIXEL_COLUMNS = slice(0, 2)
# The landmark names in order, as the schema's descriptions list them.
LANDMARK_ORDER = ", ".join(f"{index} {name}" for index, name in enumerate(LANDMARK_NAMES))

# TrackResult's per-frame arrays and their keys in both files.
PER_FRAME_KEYS = {
    "frame_ids": "frame_ids",
    "boxes_xyxy": "boxes",
    "detected": "detected",
    "pred_cam": "cam",
    "orig_cam": "orig_cam",
    "pose": "pose",
    "rotmat": "rotmat",
    "betas": "betas",
    "translation": "translation",
    "joints3d": "joints3d",
    "joints2d": "joints2d",
    "landmarks": "landmarks",
    "world_landmarks": "world_landmarks",
    "keypoint_score": "keypoint_score",
}
NPZ_ONLY_KEYS = {"rest_vertices": "rest_vertices", "rest_joints": "rest_joints"}
VERTICES_KEY = "verts"  # posed while result.npz is written; not a TrackResult field
VERTEX_DTYPE = np.dtype("<f4")
# Everything is float32 in result.npz but these.
NPZ_DTYPES = {"frame_ids": np.int64, "detected": np.bool_, "boxes_xyxy": np.float64}
NPY_SUFFIX = ".npy"  # an NPZ is a zip of .npy files, named by key


class BodyDocument(BaseModel):
    """The body model the meshes are made of."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description='"smpl", "standin" or the file the bundle was made from')
    joint_names: list[str] = Field(min_length=NUM_JOINTS, max_length=NUM_JOINTS)
    parents: list[int] = Field(
        min_length=NUM_JOINTS, max_length=NUM_JOINTS, description="-1 for the root"
    )
    vertex_count: int = Field(gt=0)
    face_count: int = Field(gt=0)


class TrackDocument(BaseModel):
    """One person through the video: one row per frame of theirs in every per-frame list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    track_id: int
    score: float = Field(description="the track's mean detection score")
    frame_ids: list[int] = Field(description="0-based indices of the video's frames")
    boxes_xyxy: list[Vec4] = Field(description="the tracker's box x1, y1, x2, y2, pixels")
    detected: list[bool] = Field(description="false where the tracker bridged a missed detection")
    pred_cam: list[Vec3] = Field(description="weak-perspective camera s, tx, ty of the crop")
    orig_cam: list[Vec4] = Field(description="the same camera over the frame: sx, sy, tx, ty")
    pose: list[Pose] = Field(description="SMPL axis-angle, radians, joint-major, root global")
    rotmat: list[JointRotations] = Field(description="the pose as rotation matrices")
    betas: list[Betas] = Field(description="SMPL shape coefficients")
    translation: list[Vec3] = Field(
        description="metres, camera frame (x right, y down, z forward): a point of the body"
        " frame lies at point + translation"
    )
    joints3d: list[Joints3d] = Field(description="SMPL's 24 joints, metres, body frame")
    joints2d: list[Joints2d] = Field(description="SMPL's 24 joints, pixels of the frame")
    landmarks: list[Landmarks | None] = Field(
        description="the keypoint model's (BlazePose GHUM's) 33 landmarks per frame, in the"
        " order of landmark_names, each x, y (pixels of the frame) and visibility (0-1, the"
        " model's probability that the point is visible); null for a frame the model did not"
        " look at (one the tracker bridged)"
    )
    world_landmarks: list[Landmarks | None] = Field(
        description="the same 33 landmarks as metric 3D points, each x, y, z in metres from"
        " the centre of the hips, along the axes of a camera turned to look straight at the"
        " person, as the keypoint model sees its crop (x right, y down, z forward); null"
        " where landmarks is"
    )
    keypoint_score: list[float] = Field(
        description="the keypoint model's confidence, 0-1, that a person is in the frame's crop"
    )

    @model_validator(mode="after")
    def _one_row_per_frame(self) -> Self:
        frames = len(self.frame_ids)
        for key in PER_FRAME_KEYS:
            if len(getattr(self, key)) != frames:
                raise ValueError(f"{key} has {len(getattr(self, key))} rows, frame_ids {frames}")
        return self


class ResultDocument(BaseModel):
    """``result.json``: every tracked person's SMPL parameters, cameras and joints per frame.

    Vertices are not in it (tens of thousands of numbers per person and frame): they are in
    ``result.npz`` and the mesh files.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[2] = SCHEMA_VERSION
    width: int = Field(gt=0, description="pixels")
    height: int = Field(gt=0, description="pixels")
    fps: float = Field(gt=0, description="average frames per second")
    frame_count: int = Field(ge=0, description="frames decoded")
    bundle_recipe: str = Field(description="the network that made the result")
    landmark_names: list[str] = Field(
        min_length=NUM_LANDMARKS,
        max_length=NUM_LANDMARKS,
        description="the order of every track's landmarks and world_landmarks (BlazePose"
        f" GHUM's; left and right are the person's own sides): {LANDMARK_ORDER}",
        examples=[list(LANDMARK_NAMES)],
    )
    body: BodyDocument
    tracks: list[TrackDocument]


def result_document(video: VideoResult) -> ResultDocument:
    """The parameters of ``video`` as ``result.json``'s document."""
    body = BodyDocument(
        name=video.body.name,
        joint_names=list(video.body.joint_names),
        parents=[int(p) for p in video.body.parents],
        vertex_count=len(video.body.skinning_weights),
        face_count=len(video.body.faces),
    )
    return ResultDocument(
        width=video.width,
        height=video.height,
        fps=video.fps,
        frame_count=video.frame_count,
        bundle_recipe=video.bundle_recipe,
        landmark_names=list(video.landmark_names),
        body=body,
        tracks=[_track_document(track) for track in video.tracks],
    )


class VertexSpool:
    """Each track's posed vertices on disk, row after row, until ``result.npz`` takes them.

    A context manager: a temporary folder in ``parent`` (the output folder, so that the rows
    are copied within one disk) holds one file per track, removed on exit. A track's file is
    open only while its rows come.
    """

    def __init__(self, parent: str | Path) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix=".vertices-", dir=parent)
        self._open: dict[int, IO[bytes]] = {}
        self._rows: dict[int, int] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for entry in self._open.values():
            entry.close()
        self._folder.cleanup()

    def add(self, person: PosedPerson) -> None:
        """Append ``person``'s ``(V, 3)`` vertices to its track's rows.

        Raises:
            ValueError: the rows come out of order, or the body posed another number of
                vertices than the track's rest body.
        """
        track = person.track
        expected = self._rows.get(track.track_id, 0)
        if person.row != expected:
            raise ValueError(f"track {track.track_id}: row {person.row} came before {expected}")
        if person.vertices.shape != np.shape(track.rest_vertices):
            raise ValueError(
                f"the body posed {person.vertices.shape} vertices, track {track.track_id}'s "
                f"rest body has {np.shape(track.rest_vertices)}"
            )
        entry = self._open.get(track.track_id)
        if entry is None:
            entry = self._open[track.track_id] = self._path(track.track_id).open("ab")
        entry.write(np.ascontiguousarray(person.vertices, dtype=VERTEX_DTYPE).tobytes())
        self._rows[track.track_id] = expected + 1
        if expected + 1 == len(track):
            self._open.pop(track.track_id).close()

    def copy_track(self, track: TrackResult, entry: IO[bytes]) -> None:
        """Write ``track``'s ``(N, V, 3)`` float32 vertices into ``entry`` as one ``.npy`` file.

        Raises:
            ValueError: some of the track's rows never came.
        """
        rows = self._rows.get(track.track_id, 0)
        if rows != len(track):
            raise ValueError(f"track {track.track_id}: {rows} of its {len(track)} rows were posed")
        header = {
            "descr": np.lib.format.dtype_to_descr(VERTEX_DTYPE),
            "fortran_order": False,
            "shape": (len(track), *np.shape(track.rest_vertices)),
        }
        np.lib.format.write_array_header_1_0(entry, header)
        with self._path(track.track_id).open("rb") as rows_file:
            shutil.copyfileobj(rows_file, entry, COPY_CHUNK_BYTES)

    def _path(self, track_id: int) -> Path:
        return Path(self._folder.name) / f"{track_id}.f32"


def write_result_json(video: VideoResult, path: str | Path) -> Path:
    """Write ``result.json`` (:class:`ResultDocument`) to ``path``; returns the path."""
    path = Path(path)
    path.write_text(result_document(video).model_dump_json(), encoding="utf-8")
    return path


def write_result_npz(
    video: VideoResult,
    path: str | Path,
    body: MeshVertices | None = None,
    *,
    vertices: VertexSpool | None = None,
) -> Path:
    """Write ``result.npz`` to ``path``; returns the path.

    Written as ``np.savez`` writes (a zip of ``.npy`` entries, uncompressed: float32
    compresses little), plus each track's ``verts`` entry when a ``body`` poses them here or
    ``vertices`` holds every track's rows already posed. Without either the file holds
    parameters alone: its size grows by theirs, 2.5 KiB a person-frame.

    Raises:
        ValueError: ``vertices`` lacks some of a track's rows.
    """
    if body is not None and vertices is None:
        with VertexSpool(Path(path).parent) as spool:
            for _, people in posed_frames(video, body):
                for person in people:
                    spool.add(person)
            return write_result_npz(video, path, vertices=spool)
    body_topology = video.body
    arrays: dict[str, np.ndarray] = {
        "schema_version": np.array(SCHEMA_VERSION),
        "width": np.array(video.width),
        "height": np.array(video.height),
        "fps": np.array(video.fps, dtype=np.float64),
        "frame_count": np.array(video.frame_count),
        "bundle_recipe": np.array(video.bundle_recipe),
        "landmark_names": np.array(video.landmark_names),
        "body_name": np.array(body_topology.name),
        "joint_names": np.array(body_topology.joint_names),
        "parents": np.asarray(body_topology.parents, dtype=np.int64),
        "faces": np.asarray(body_topology.faces, dtype=np.int64),
        "skinning_weights": np.asarray(body_topology.skinning_weights, dtype=np.float32),
        "track_ids": np.array([track.track_id for track in video.tracks], dtype=np.int64),
    }
    for track in video.tracks:
        prefix = track_prefix(track.track_id)
        arrays[prefix + "score"] = np.array(track.score, dtype=np.float64)
        for key, field in (PER_FRAME_KEYS | NPZ_ONLY_KEYS).items():
            dtype = NPZ_DTYPES.get(key, np.float32)
            arrays[prefix + key] = np.asarray(getattr(track, field), dtype=dtype)
    path = Path(path)
    with zipfile.ZipFile(path, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as npz:
        for key, array in arrays.items():
            with npz.open(key + NPY_SUFFIX, mode="w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, array, allow_pickle=False)
        if vertices is not None:
            for track in video.tracks:
                key = track_prefix(track.track_id) + VERTICES_KEY
                with npz.open(key + NPY_SUFFIX, mode="w", force_zip64=True) as entry:
                    vertices.copy_track(track, entry)
    return path


def read_result_npz(path: str | Path) -> VideoResult:
    """Read what :func:`write_result_npz` wrote.

    Raises:
        ValueError: the file is of another schema version.
    """
    with np.load(path, allow_pickle=False) as npz:
        version = int(npz["schema_version"])
        if version != SCHEMA_VERSION:
            raise ValueError(f"{path}: result schema {version}, this reader reads {SCHEMA_VERSION}")
        body = BodyTopology(
            name=str(npz["body_name"]),
            faces=npz["faces"],
            parents=npz["parents"],
            skinning_weights=npz["skinning_weights"],
            joint_names=tuple(str(name) for name in npz["joint_names"]),
        )
        tracks = []
        for track_id in npz["track_ids"].tolist():
            prefix = track_prefix(track_id)
            fields = {
                field: npz[prefix + key] for key, field in (PER_FRAME_KEYS | NPZ_ONLY_KEYS).items()
            }
            tracks.append(
                TrackResult(track_id=track_id, score=float(npz[prefix + "score"]), **fields)
            )
        return VideoResult(
            width=int(npz["width"]),
            height=int(npz["height"]),
            fps=float(npz["fps"]),
            frame_count=int(npz["frame_count"]),
            body=body,
            tracks=tuple(tracks),
            bundle_recipe=str(npz["bundle_recipe"]),
            landmark_names=tuple(str(name) for name in npz["landmark_names"]),
        )


def _track_document(track: TrackResult) -> TrackDocument:
    """One track's rows, rounded for the JSON file."""
    return TrackDocument(
        track_id=track.track_id,
        score=round(float(track.score), DECIMALS),
        frame_ids=np.asarray(track.frame_ids).tolist(),
        boxes_xyxy=_rounded(track.boxes, PIXEL_DECIMALS),
        detected=np.asarray(track.detected, dtype=bool).tolist(),
        pred_cam=_rounded(track.cam, DECIMALS),
        orig_cam=_rounded(track.orig_cam, DECIMALS),
        pose=_rounded(track.pose, DECIMALS),
        rotmat=_rounded(track.rotmat, DECIMALS),
        betas=_rounded(track.betas, DECIMALS),
        translation=_rounded(track.translation, DECIMALS),
        joints3d=_rounded(track.joints3d, DECIMALS),
        joints2d=_rounded(track.joints2d, PIXEL_DECIMALS),
        landmarks=_unseen_as_null(_rounded_landmarks(track.landmarks), track.landmarks),
        world_landmarks=_unseen_as_null(
            _rounded(track.world_landmarks, DECIMALS), track.world_landmarks
        ),
        keypoint_score=_rounded(track.keypoint_score, DECIMALS),
    )


def _rounded(array: np.ndarray, decimals: int) -> list[Any]:
    """``array`` as nested lists of floats rounded to ``decimals``."""
    rounded: list[Any] = np.round(np.asarray(array, dtype=np.float64), decimals).tolist()
    return rounded


def _rounded_landmarks(landmarks: np.ndarray) -> list[Any]:
    """``(N, 33, 3)`` landmarks as nested lists: x and y rounded as pixels, visibility as the
    file's other unitless numbers."""
    values = np.asarray(landmarks, dtype=np.float64)
    rounded = np.round(values, DECIMALS)
    pixels = values[..., LANDMARK_PIXEL_COLUMNS]
    rounded[..., LANDMARK_PIXEL_COLUMNS] = np.round(pixels, PIXEL_DECIMALS)
    as_lists: list[Any] = rounded.tolist()
    return as_lists


def _unseen_as_null(rows: list[Any], values: np.ndarray) -> list[Any]:
    """``rows`` (one a frame) with None for each frame whose ``values`` are NaN: JSON has no
    NaN, and a frame the keypoint model did not look at has no landmarks."""
    unseen = np.isnan(values).any(axis=tuple(range(1, values.ndim)))
    return [None if missing else row for row, missing in zip(rows, unseen.tolist(), strict=True)]


def track_prefix(track_id: int) -> str:
    """The NPZ key prefix of a track's arrays (``track_001/``)."""
    return f"track_{track_id:03d}/"
