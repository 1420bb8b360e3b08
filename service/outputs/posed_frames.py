"""Every person of a video posed once, frame by frame, for every writer that needs vertices.

The result holds parameters, not vertices (:mod:`service.pipeline.result`). ``result.npz``'s
``verts``, the OBJ and PLY files and the preview all need a person-frame's posed mesh; each
used to pose it for itself, up to four times. :func:`posed_frames` poses each person-frame
once, in video order, and each writer takes what it needs from that one pass
(:func:`service.outputs.write_outputs`).

Each person-frame is posed alone, one run of the body graph (why:
:func:`~service.outputs.meshes.pose_frame`): the same bytes as the gateway's downloads, in
every file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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


def pose_person(body: MeshVertices, track: TrackResult, row: int) -> PosedPerson:
    """One person-frame posed alone: its ``(1, 24, 3, 3)`` rotations and ``(1, 10)`` β, one run."""
    vertices = body(track.rotmat[row : row + 1], track.betas[row : row + 1])
    return PosedPerson(track, row, np.asarray(vertices, dtype=np.float32)[0])


def pose_rows(body: MeshVertices, rows: Sequence[Row]) -> list[PosedPerson]:
    """A frame's people (their tracks and rows), each posed alone, in the same order."""
    return [pose_person(body, track, row) for track, row in rows]


def posed_frames(
    video: VideoResult, body: MeshVertices, frame_ids: Iterable[int] | None = None
) -> Iterator[tuple[int, list[PosedPerson]]]:
    """``(frame id, the frame's people posed)`` for each of ``frame_ids`` (default: every frame
    with someone in it, in order), each person-frame posed once, as its frame comes; a frame
    nobody is in gives an empty list."""
    rows = rows_by_frame(video.tracks)
    for frame_id in sorted(rows) if frame_ids is None else frame_ids:
        yield frame_id, pose_rows(body, rows.get(frame_id, []))
