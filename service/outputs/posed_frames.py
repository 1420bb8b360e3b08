"""Every person of a video posed once, frame by frame, for every writer that needs vertices.

The result holds parameters, not vertices (:mod:`service.pipeline.result`). ``result.npz``'s
``verts``, the OBJ and PLY files and the preview all need a person-frame's posed mesh; each
used to pose it for itself, up to four times. :func:`posed_frames` poses each person-frame
once, in video order, and each writer takes what it needs from that one pass
(:func:`service.outputs.write_outputs`).

Each person-frame is posed alone, one run of the body graph (:func:`pose_frame`; why: the
module :mod:`service.outputs.meshes`), as the gateway poses a frame's mesh on download: the
same bytes in every file and download.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from service.pipeline.body import MeshVertices
from service.pipeline.result import TrackResult, VideoResult

Row = tuple[TrackResult, int]  # a track and one of its rows


@dataclass(frozen=True)
class PosedPerson:
    """One person in one frame, posed."""

    track: TrackResult
    row: int  # the frame's row in the track's arrays
    vertices: np.ndarray  # (V, 3) float32, metres, body frame (OpenCV's axes)

    @property
    def frame_id(self) -> int:
        """The video frame this is."""
        return int(self.track.frame_ids[self.row])

    @property
    def translation(self) -> np.ndarray:
        """``(3,)`` float32: where the body stands in the camera's frame, metres."""
        return np.asarray(self.track.translation[self.row], dtype=np.float32)


def rows_by_frame(tracks: Sequence[TrackResult]) -> dict[int, list[Row]]:
    """For each video frame, the tracks in it and their rows, in track order."""
    rows: dict[int, list[Row]] = {}
    for track in tracks:
        for row, frame_id in enumerate(np.asarray(track.frame_ids).tolist()):
            rows.setdefault(frame_id, []).append((track, row))
    return rows


def pose_frame(
    body: MeshVertices,
    rotmat: np.ndarray,
    betas: np.ndarray,
    translation: np.ndarray | None = None,
) -> np.ndarray:
    """One frame's ``(V, 3)`` float32 vertices, posed alone (why: :mod:`service.outputs.meshes`).

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
    return in_camera_frame(vertices, translation)


def in_camera_frame(vertices: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """``(V, 3)`` body-frame vertices moved to where the body stands in the camera's frame,
    in float32 (as every writer and the gateway do it, so their bytes agree)."""
    return np.asarray(vertices, dtype=np.float32) + np.asarray(translation, dtype=np.float32)


def pose_person(body: MeshVertices, track: TrackResult, row: int) -> PosedPerson:
    """One person-frame of a track, posed alone (:func:`pose_frame`)."""
    return PosedPerson(track, row, pose_frame(body, track.rotmat[row], track.betas[row]))


def pose_rows(body: MeshVertices, rows: Sequence[Row]) -> list[PosedPerson]:
    """A frame's people (their tracks and rows), each posed alone, in the same order."""
    return [pose_person(body, track, row) for track, row in rows]


def posed_frames(video: VideoResult, body: MeshVertices) -> Iterator[tuple[int, list[PosedPerson]]]:
    """``(frame id, the frame's people posed)`` for every frame with someone in it, in order,
    each person-frame posed once, as its frame comes."""
    rows = rows_by_frame(video.tracks)
    for frame_id in sorted(rows):
        yield frame_id, pose_rows(body, rows[frame_id])
