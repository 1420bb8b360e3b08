"""Square crops around a box: the transform, normalised keypoints, zero borders."""

from __future__ import annotations

import cv2
import numpy as np

from training.data.crops import crop_frame, crop_transform, keypoints_to_crop, square_box

CROP = 64
DOT_RADIUS = 4


def test_square_box_takes_the_longer_side():
    centre, side = square_box(np.array([50.0, 40.0, 20.0, 60.0]), 1.1)
    np.testing.assert_allclose(centre, (50, 40))
    assert side == 1.1 * 60


def test_normalised_coordinates_are_offsets_over_half_the_side():
    centre, side = np.array([50.0, 40.0]), 80.0
    transform = crop_transform(centre, side, CROP)
    points = np.array([[50.0, 40.0, 1.0], [10.0, 40.0, 1.0], [70.0, 20.0, 0.5], [95.0, 40.0, 1]])
    crop = keypoints_to_crop(points, transform, CROP)
    np.testing.assert_allclose(crop[:3, :2], [[0, 0], [-1, 0], [0.5, -0.5]], atol=1e-6)
    np.testing.assert_allclose(crop[:, 2], [1.0, 1.0, 0.5, 0.0])  # the last one lies outside


def test_a_drawn_dot_lands_under_its_keypoint_and_outside_is_black(tmp_path):
    image = np.full((120, 160, 3), 40, dtype=np.uint8)
    dot = (30, 100)
    cv2.circle(image, dot, DOT_RADIUS, (255, 255, 255), -1)
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), image)
    # a box near the left edge, so that part of the crop lies outside the frame
    centre, side = square_box(np.array([20.0, 90.0, 40.0, 50.0]), 1.2)
    crop, transform = crop_frame(path, centre, side, CROP)
    assert crop.shape == (CROP, CROP, 3)
    keypoint = keypoints_to_crop(np.array([[*dot, 1.0]]), transform, CROP)[0]
    assert keypoint[2] == 1.0
    column, row = np.rint((keypoint[:2] + 1) * CROP / 2 - 0.5).astype(int)
    assert crop[row, column].min() > 200
    assert crop[CROP // 2, 0].max() == 0  # left of the frame: the zero border
    assert crop[CROP // 2, CROP - 1].max() == 40  # inside the frame: the background
