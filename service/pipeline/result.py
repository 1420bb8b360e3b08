"""What the pipeline finds in a video: per tracked person and frame, SMPL parameters.

These are the arrays every output (``result.json``/``.npz``, OBJ, PLY, GLB, the preview) is
written from. ``N`` is a track's frame count, ``V`` the body's vertex count. Posed vertices
are not among them (they would grow with the video: 81 KiB a person-frame for SMPL): the
outputs compute them from ``rotmat`` and ``betas`` when they write them
(:mod:`service.pipeline.body`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrackResult:
    """One person through the video.

    Cameras: ``cam`` is the weak-perspective camera ``(s, tx, ty)`` of the square crop the
    network saw; ``orig_cam`` ``(sx, sy, tx, ty)`` the same camera in the whole image's
    normalised coordinates (VIBE's); ``translation`` the body's position in metres in a
    perspective camera at the image centre (see :mod:`service.pipeline.camera`), so that people
    stand where they are in the scene instead of at the origin.
    """

    track_id: int
    frame_ids: np.ndarray  # (N,) int: indices of the video's frames
    boxes: np.ndarray  # (N, 4) float: x1, y1, x2, y2 in pixels (the tracker's)
    detected: np.ndarray  # (N,) bool: False where the tracker bridged a missed detection
    score: float  # the track's mean detection score
    pose: np.ndarray  # (N, 72) float32: SMPL axis-angle, joint-major, root global
    rotmat: np.ndarray  # (N, 24, 3, 3) float32: the same as rotation matrices
    betas: np.ndarray  # (N, 10) float32
    cam: np.ndarray  # (N, 3) float32: s, tx, ty of the crop
    orig_cam: np.ndarray  # (N, 4) float32: sx, sy, tx, ty of the image
    translation: np.ndarray  # (N, 3) float32: metres, camera frame
    joints3d: np.ndarray  # (N, 24, 3) float32: metres, body frame (root-relative mesh frame)
    joints2d: np.ndarray  # (N, 24, 2) float32: pixels of the original image
    # The track's body in the rest pose at its mean β: what a skinned mesh (GLB) binds to.
    rest_vertices: np.ndarray  # (V, 3) float32
    rest_joints: np.ndarray  # (24, 3) float32
    # The keypoint model's 33 landmarks (names: VideoResult.landmark_names), every frame.
    landmarks: np.ndarray  # (N, 33, 3) float32: x, y in image pixels, visibility in [0, 1]
    # (N, 33, 3) float32: metres, hip-centred, in the axes of a camera looking at the person
    world_landmarks: np.ndarray
    keypoint_score: np.ndarray  # (N,) float32: the keypoint model's confidence a person is there

    def __len__(self) -> int:
        return len(self.frame_ids)


@dataclass(frozen=True)
class BodyTopology:
    """What a mesh exporter needs of the body, from the bundle."""

    name: str
    faces: np.ndarray  # (F, 3) int
    parents: np.ndarray  # (24,) int, -1 for the root
    skinning_weights: np.ndarray  # (V, 24) float32
    joint_names: tuple[str, ...]  # 24


@dataclass(frozen=True)
class VideoResult:
    """Every track of one video, with what is needed to place them back on its frames."""

    width: int
    height: int
    fps: float
    frame_count: int  # frames decoded
    body: BodyTopology
    tracks: tuple[TrackResult, ...]
    bundle_recipe: str  # the network that made it
    landmark_names: tuple[str, ...]  # the order of every track's landmarks (33)
