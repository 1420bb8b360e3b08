"""Cameras: hand-worked projections, crop ↔ frame conversions, round trips, NumPy and torch."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from training.geometry.camera import (
    CROP_SIZE,
    FOCAL_LENGTH,
    cam_to_translation,
    crop_cam_to_orig_cam,
    orig_cam_to_crop_cam,
    orig_cam_to_translation,
    perspective_project,
    translation_to_cam,
    weak_perspective_project,
)

RNG_SEED = 3


def test_weak_perspective_translates_then_scales() -> None:
    # s = 2, t = (0.1, −0.2); point (0.3, 0.4, 9): u = 2·(0.3 + 0.1) = 0.8, v = 2·(0.4 − 0.2) = 0.4.
    points = np.array([[[0.3, 0.4, 9.0]]])
    cam = np.array([[2.0, 0.1, -0.2]])
    np.testing.assert_allclose(weak_perspective_project(points, cam), [[[0.8, 0.4]]])


def test_cam_to_translation_hand_worked() -> None:
    # SPIN/MAED: tz = 2·5000 / (224·s); s = 0.8 → 10000 / 179.2 = 55.803571… m.
    translation = cam_to_translation(np.array([0.8, 0.05, -0.1]))
    np.testing.assert_allclose(translation, [0.05, -0.1, 10000.0 / 179.2])
    assert FOCAL_LENGTH == 5000.0
    assert CROP_SIZE == 224


def test_translation_round_trip_torch() -> None:
    cam = torch.tensor([[0.9, 0.1, 0.2], [1.3, -0.3, 0.0]], dtype=torch.float64)
    translation = cam_to_translation(cam, focal_length=1200.0, image_size=640)
    assert isinstance(translation, torch.Tensor)
    torch.testing.assert_close(translation_to_cam(translation, 1200.0, 640), cam)


def test_perspective_matches_weak_perspective_on_the_body_plane() -> None:
    # At z = 0 the pinhole depth is tz exactly, so f·(x + tx)/tz / 112 = s·(x + tx).
    rng = np.random.default_rng(RNG_SEED)
    points = rng.normal(size=(2, 5, 3))
    points[..., 2] = 0.0
    cam = np.array([[0.9, 0.1, -0.1], [1.1, 0.0, 0.2]])
    np.testing.assert_allclose(
        perspective_project(points, cam), weak_perspective_project(points, cam), atol=1e-12
    )


def test_perspective_depth_changes_projection() -> None:
    # A point 1 m nearer than the body's origin projects farther from the centre, by tz/(tz−1).
    cam = np.array([1.0, 0.0, 0.0])
    tz = 2 * FOCAL_LENGTH / CROP_SIZE
    projected = perspective_project(np.array([[0.5, 0.0, -1.0]]), cam)
    np.testing.assert_allclose(projected, [[0.5 * tz / (tz - 1.0), 0.0]])


def test_crop_to_orig_hand_worked() -> None:
    # Frame 800×600, crop side h = 200 centred at (500, 150), crop cam (1, 0.1, −0.2):
    # sx = 1·200/800 = 0.25, sy = 1·200/600 = 1/3,
    # tx' = (500 − 400)/400 / 0.25 + 0.1 = 1.0 + 0.1 = 1.1,
    # ty' = (150 − 300)/300 / (1/3) − 0.2 = −1.5 − 0.2 = −1.7.
    orig = crop_cam_to_orig_cam(
        np.array([1.0, 0.1, -0.2]), np.array([500.0, 150.0, 200.0]), 800, 600
    )
    np.testing.assert_allclose(orig, [0.25, 1 / 3, 1.1, -1.7])


def test_orig_cam_projects_to_the_same_pixels_as_the_crop() -> None:
    # Project with the crop camera, move crop coordinates to frame pixels through the box
    # (pixel = centre + u·h/2), normalise by the frame; the orig_cam must agree.
    rng = np.random.default_rng(RNG_SEED)
    points = rng.normal(size=(3, 7, 3)) * 0.5
    cam = np.column_stack([rng.uniform(0.7, 1.3, 3), rng.normal(size=(3, 2)) * 0.1])
    bbox = np.array([[320.0, 240.0, 180.0], [100.0, 400.0, 90.0], [600.0, 50.0, 300.0]])
    width, height = 768, 576
    crop_uv = weak_perspective_project(points, cam)
    pixels = bbox[:, None, :2] + crop_uv * bbox[:, None, 2:3] / 2
    frame_uv = (pixels - [width / 2, height / 2]) / [width / 2, height / 2]

    orig = crop_cam_to_orig_cam(cam, bbox, width, height)
    sx, sy, tx, ty = (orig[:, None, k] for k in range(4))
    from_orig = np.stack([sx * (points[..., 0] + tx), sy * (points[..., 1] + ty)], axis=-1)
    np.testing.assert_allclose(from_orig, frame_uv, atol=1e-12)


def test_crop_orig_round_trip_torch() -> None:
    cam = torch.tensor([[0.8, 0.05, -0.02], [1.2, -0.1, 0.3]], dtype=torch.float64)
    bbox = torch.tensor([[200.0, 300.0, 150.0], [700.0, 100.0, 250.0]], dtype=torch.float64)
    orig = crop_cam_to_orig_cam(cam, bbox, 1280, 720)
    assert isinstance(orig, torch.Tensor)
    assert orig.shape == (2, 4)
    torch.testing.assert_close(orig_cam_to_crop_cam(orig, bbox, 1280, 720), cam)


def test_orig_cam_translation_reprojects() -> None:
    # A body placed by orig_cam_to_translation and seen through a centred pinhole of focal f
    # lands, at its origin, where the orig_cam puts it.
    orig = np.array([0.3, 0.4, 0.5, -0.25])  # sx·W = sy·H with W = 800, H = 600
    focal, width, height = 1000.0, 800, 600
    tx, ty, tz = orig_cam_to_translation(orig, focal, width)
    assert tz == pytest.approx(2 * focal / (width * 0.3))
    u = focal * tx / tz / (width / 2)
    v = focal * ty / tz / (height / 2)
    assert u == pytest.approx(0.3 * 0.5)
    assert v == pytest.approx(0.4 * -0.25)


@pytest.mark.parametrize(
    "call",
    [
        lambda: weak_perspective_project(np.zeros((2, 5, 2)), np.zeros((2, 3))),
        lambda: cam_to_translation(np.zeros((2, 4))),
        lambda: crop_cam_to_orig_cam(np.ones(3), np.ones(4), 10, 10),
        lambda: orig_cam_to_crop_cam(np.ones(3), np.ones(3), 10, 10),
    ],
)
def test_wrong_shapes_raise(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="shape"):
        call()
