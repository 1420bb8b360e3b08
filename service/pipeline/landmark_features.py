"""What a keypoint family's ``temporal.onnx`` reads of a frame: its landmarks, laid out as
training laid them out (``training.models.landmark_input``; the service imports no training code,
so the layout is restated here and checked against the bundle's manifest).

Per landmark, six numbers (:data:`LANDMARK_FEATURE_CHANNELS`): ``x, y`` in the person's square
crop scaled to [−1, 1] — the square of :func:`service.pipeline.crops.square_boxes`, centred on
the box's centre, of side ``crop_scale`` × its longer side; x right, y down — the keypoint
model's visibility in [0, 1], and its metric 3D point (metres, hip-centred). A frame the keypoint
model did not look at is all zeros, as training's missed frames are.
"""

from __future__ import annotations

import numpy as np

from service.pipeline.crops import square_boxes
from service.pipeline.landmarks import NUM_LANDMARKS
from service.pipeline.tracking import Track, with_poses

LANDMARK_FEATURE_CHANNELS: tuple[str, ...] = (
    "x",
    "y",
    "visibility",
    "world_x",
    "world_y",
    "world_z",
)
# One frame's features: (33, 6).
LANDMARK_FEATURE_SHAPE = (NUM_LANDMARKS, len(LANDMARK_FEATURE_CHANNELS))
_XY, _VISIBILITY = slice(0, 2), slice(2, 3)


def landmark_features(
    landmarks: np.ndarray, world_landmarks: np.ndarray, squares: np.ndarray
) -> np.ndarray:
    """A track's per-frame features from its landmarks.

    Args:
        landmarks: ``(N, 33, 3)`` x, y in frame pixels and visibility; NaN coordinates (and
            visibility 0) in a frame the keypoint model did not look at.
        world_landmarks: ``(N, 33, 3)`` metres, hip-centred; NaN where not seen.
        squares: ``(N, 3)`` ``cx, cy, side`` in pixels (:func:`square_boxes`).

    Returns:
        ``(N, 33, 6)`` float32: x, y in the square scaled to [−1, 1] (its centre 0, its right and
        bottom edges +1), visibility, world x, y, z; all zeros in a frame with any NaN.
    """
    centres = squares[:, None, :2]  # (N, 1, 2)
    half_sides = squares[:, None, 2:] / 2  # (N, 1, 1)
    in_square = (landmarks[..., _XY] - centres) / half_sides  # (N, 33, 2)
    features = np.concatenate(
        [in_square, landmarks[..., _VISIBILITY], world_landmarks], axis=-1
    ).astype(np.float32)  # (N, 33, 6)
    unseen = ~np.isfinite(features).all(axis=(1, 2))  # (N,)
    features[unseen] = 0.0
    return features


def track_landmark_features(track: Track, crop_scale: float) -> np.ndarray:
    """``(N, 33, 6)`` :func:`landmark_features` of ``track``'s rows, in the squares of side
    ``crop_scale`` × its boxes' longer sides (all zeros for a track made without landmarks)."""
    has_landmarks = track.landmarks is not None and track.world_landmarks is not None
    seen = track if has_landmarks else with_poses(track, {})
    # with_poses sets both
    assert seen.landmarks is not None
    assert seen.world_landmarks is not None
    squares = square_boxes(track.boxes, crop_scale)
    return landmark_features(seen.landmarks, seen.world_landmarks, squares)
