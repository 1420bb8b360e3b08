"""Landmark features: frame pixels → the person's square scaled to [−1, 1], as training's
synthetic landmarks are laid out; unseen frames all zeros."""

from __future__ import annotations

import numpy as np
import pytest

from service.pipeline.crops import square_boxes
from service.pipeline.landmark_features import (
    LANDMARK_FEATURE_CHANNELS,
    LANDMARK_FEATURE_SHAPE,
    landmark_features,
    track_landmark_features,
)
from service.pipeline.landmarks import NUM_LANDMARKS
from service.pipeline.tracking import Track
from training.body.landmarks import NUM_LANDMARKS as TRAINING_LANDMARKS
from training.data.landmark_clips import crop_squares, to_crop
from training.models.landmark_input import LANDMARK_CHANNELS, NUM_CHANNELS

CROP_SCALE = 1.2
# Two frames: a box 40 × 80 pixels at (100, 50), and the same box moved and widened.
BOXES = np.array([[100.0, 50.0, 140.0, 130.0], [110.0, 60.0, 210.0, 140.0]])
SQUARES = square_boxes(BOXES, CROP_SCALE)  # (2, 3) cx, cy, side


def frame_landmarks(rng: np.random.Generator, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """``(F, 33, 3)`` pixels and visibility around the boxes, ``(F, 33, 3)`` metres."""
    pixels = rng.uniform(50.0, 250.0, (frames, NUM_LANDMARKS, 2))
    visibility = rng.uniform(0.0, 1.0, (frames, NUM_LANDMARKS, 1))
    world = rng.normal(0.0, 0.4, (frames, NUM_LANDMARKS, 3)).astype(np.float32)
    landmarks = np.concatenate([pixels, visibility], axis=-1).astype(np.float32)
    return landmarks, world


def test_the_layout_is_training_s():
    assert LANDMARK_FEATURE_CHANNELS == LANDMARK_CHANNELS
    assert (TRAINING_LANDMARKS, NUM_CHANNELS) == LANDMARK_FEATURE_SHAPE


def test_the_square_s_centre_is_zero_and_its_edges_one():
    landmarks = np.zeros((2, NUM_LANDMARKS, 3), dtype=np.float32)
    world = np.zeros((2, NUM_LANDMARKS, 3), dtype=np.float32)
    cx, cy, side = SQUARES.T  # (2,) each
    half = side / 2
    points = {  # landmark → (x, y) in pixels of each frame, and its expected crop coordinates
        0: ((cx, cy), (0.0, 0.0)),
        1: ((cx + half, cy), (1.0, 0.0)),
        2: ((cx - half, cy), (-1.0, 0.0)),
        3: ((cx, cy + half), (0.0, 1.0)),  # y down: the bottom edge
        4: ((cx + half / 2, cy - half), (0.5, -1.0)),
    }
    for landmark, ((x, y), _) in points.items():
        landmarks[:, landmark, 0], landmarks[:, landmark, 1] = x, y
    features = landmark_features(landmarks, world, SQUARES)
    assert features.shape == (2, *LANDMARK_FEATURE_SHAPE)
    assert features.dtype == np.float32
    for landmark, (_, expected) in points.items():
        np.testing.assert_allclose(features[:, landmark, :2], np.tile(expected, (2, 1)), atol=1e-6)


def test_visibility_and_world_points_pass_through_and_match_training():
    landmarks, world = frame_landmarks(np.random.default_rng(0), 2)
    features = landmark_features(landmarks, world, SQUARES)
    np.testing.assert_array_equal(features[..., 2], landmarks[..., 2])
    np.testing.assert_array_equal(features[..., 3:], world)
    # Training's synthetic clips: the same squares and the same scaling.
    expected = to_crop(landmarks[..., :2].astype(np.float64), crop_squares(BOXES, CROP_SCALE))
    np.testing.assert_allclose(features[..., :2], expected, atol=1e-5)


def test_unseen_frames_are_all_zeros():
    landmarks, world = frame_landmarks(np.random.default_rng(1), 2)
    landmarks[1, :, :2], landmarks[1, :, 2] = np.nan, 0.0  # the keypoint model did not look
    world[1] = np.nan
    features = landmark_features(landmarks, world, SQUARES)
    assert not features[1].any()
    assert np.isfinite(features).all()
    assert features[0].any()


@pytest.mark.parametrize("with_landmarks", [True, False])
def test_a_track_s_features(with_landmarks):
    landmarks, world = frame_landmarks(np.random.default_rng(2), 2)
    track = Track(
        7,
        np.array([3, 4]),
        BOXES,
        np.array([0.9, 0.8]),
        np.array([True, True]),
        landmarks if with_landmarks else None,
        world if with_landmarks else None,
        np.ones(2, dtype=np.float32) if with_landmarks else None,
    )
    features = track_landmark_features(track, CROP_SCALE)
    assert features.shape == (2, *LANDMARK_FEATURE_SHAPE)
    if with_landmarks:
        np.testing.assert_array_equal(features, landmark_features(landmarks, world, SQUARES))
    else:
        assert not features.any()  # a track made without the keypoint stage: nothing seen
