"""The keypoint stage's geometry: regions of interest, crops and their inverse, heatmap
refinement (no model: the model's own tests are in test_frontend_on_video.py)."""

from __future__ import annotations

import numpy as np
import pytest

from service.pipeline.keypoints import (
    Rois,
    box_rois,
    crop_to_image,
    cut_rois,
    landmark_boxes,
    landmark_rois,
    refine_from_heatmaps,
)

CROP = 256


def test_upright_person_gives_an_unturned_roi() -> None:
    rois = landmark_rois(np.array([[300.0, 200.0]]), np.array([[300.0, 120.0]]), 1.25)
    assert rois.rotations[0] == pytest.approx(0.0)
    assert rois.sizes[0] == pytest.approx(2 * 80 * 1.25)
    np.testing.assert_allclose(rois.centres[0], [300.0, 200.0])


@pytest.mark.parametrize("angle_deg", [0.0, 37.0, 90.0, 150.0, -120.0, 180.0])
def test_crop_maps_the_scale_point_straight_above_the_centre(angle_deg: float) -> None:
    """Whatever the person's direction, the crop shows them upright: the scale point lies
    above the crop's centre, at S / (2 · scale) pixels."""
    direction = np.deg2rad(angle_deg)
    centre = np.array([400.0, 300.0])
    scale_point = centre + 90.0 * np.array([np.sin(direction), -np.cos(direction)])
    rois = landmark_rois(centre[None], scale_point[None], 1.25)
    (affine,) = crop_to_image(rois, CROP)
    above = np.array([CROP / 2, CROP / 2 - CROP / (2 * 1.25), 1.0])
    np.testing.assert_allclose(affine @ above, scale_point, atol=1e-9)
    np.testing.assert_allclose(affine @ np.array([CROP / 2, CROP / 2, 1.0]), centre, atol=1e-9)


def test_cut_rois_shows_the_image_point_the_map_names() -> None:
    """A bright dot in the image appears in a turned crop where the inverse map puts it."""
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    dot = np.array([350, 210])
    image[dot[1] - 2 : dot[1] + 3, dot[0] - 2 : dot[0] + 3] = (0, 0, 255)  # red in BGR
    rois = Rois(np.array([[320.0, 240.0]]), np.array([200.0]), np.array([0.6]))
    (affine,) = crop_to_image(rois, CROP)
    (crop,) = cut_rois(image, affine[None], CROP)
    red = np.argwhere(crop[..., 0] > 128)  # (P, 2) rows, columns: RGB now
    found = red.mean(axis=0)[::-1]  # x, y in the crop
    np.testing.assert_allclose(affine[:, :2] @ found + affine[:, 2], dot, atol=1.0)
    assert crop[..., 2].max() < 50  # no blue channel: the colours were turned to RGB


def test_box_rois_are_upright_squares_around_the_box() -> None:
    rois = box_rois(np.array([[100.0, 50.0, 140.0, 250.0]]), 1.4)
    np.testing.assert_allclose(rois.centres, [[120.0, 150.0]])
    np.testing.assert_allclose(rois.sizes, [280.0])
    np.testing.assert_allclose(rois.rotations, [0.0])


def heatmap_with_blob(centre: tuple[float, float], peak: float, size: int = 64) -> np.ndarray:
    """``(size, size)`` logits whose sigmoid is a Gaussian blob of height ``peak``."""
    rows, cols = np.mgrid[0:size, 0:size]
    blob = peak * np.exp(-((cols - centre[0]) ** 2 + (rows - centre[1]) ** 2) / (2 * 1.5**2))
    blob = np.clip(blob, 1e-6, 1 - 1e-6)
    return np.log(blob / (1 - blob))


def test_refinement_moves_a_landmark_to_its_heatmap_blob() -> None:
    heatmaps = heatmap_with_blob((20.3, 41.7), 0.9)[None, :, :, None]  # (1, 64, 64, 1)
    start = np.array([[[22.9 / 64, 42.9 / 64]]])  # the blob lies within its 7 × 7 window
    refined = refine_from_heatmaps(start, heatmaps, 7, 0.5)
    np.testing.assert_allclose(refined[0, 0] * 64, [20.3, 41.7], atol=0.5)


def test_refinement_keeps_an_unsure_or_outside_landmark() -> None:
    unsure = heatmap_with_blob((20.0, 40.0), 0.3)[None, :, :, None]
    start = np.array([[[21.0 / 64, 40.0 / 64]]])
    np.testing.assert_array_equal(refine_from_heatmaps(start, unsure, 7, 0.5), start)
    sure = heatmap_with_blob((0.0, 0.0), 0.9)[None, :, :, None]
    outside = np.array([[[-0.01, 0.02]]])
    np.testing.assert_array_equal(refine_from_heatmaps(outside, sure, 7, 0.5), outside)


def test_landmark_boxes_cover_the_visible_landmarks_with_a_margin() -> None:
    landmarks = np.zeros((2, 33, 3))
    landmarks[0, :, :2] = np.random.default_rng(0).uniform([100, 50], [140, 250], size=(33, 2))
    landmarks[0, :, 2] = 0.9
    landmarks[0, 0] = (500.0, 500.0, 0.1)  # not visible: ignored
    landmarks[1, :, 2] = 0.1  # nobody visible
    boxes = landmark_boxes(landmarks, 0.5, 0.1)
    low, high = landmarks[0, 1:, :2].min(axis=0), landmarks[0, 1:, :2].max(axis=0)
    grow = 0.1 * (high[1] - low[1])
    np.testing.assert_allclose(boxes[0], [*(low - grow), *(high + grow)])
    assert np.isnan(boxes[1]).all()
