"""Cameras against training's (training.geometry.camera) on random inputs, and the joints'
projection against the crop camera's."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.pipeline.camera import (
    DEFAULT_DIAGONAL_FOV_DEG,
    crop_cam_to_orig_cam,
    focal_length_from_fov,
    orig_cam_to_crop_cam,
    orig_cam_to_translation,
    project_to_frame,
)
from training.geometry import camera as training_camera

TOLERANCE = 1e-5
WIDTH, HEIGHT = 1280, 720


def random_inputs(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop cameras ``(N, 3)``, square boxes ``(N, 3)`` and body-frame joints ``(N, 24, 3)``."""
    rng = np.random.default_rng(seed)
    cam = np.stack(
        [rng.uniform(0.5, 1.5, count), rng.normal(0, 0.2, count), rng.normal(0, 0.2, count)], 1
    )
    boxes = np.stack(
        [rng.uniform(0, WIDTH, count), rng.uniform(0, HEIGHT, count), rng.uniform(50, 600, count)],
        1,
    )
    joints = rng.normal(0.0, 0.5, (count, 24, 3))
    return cam, boxes, joints


@pytest.mark.parametrize("seed", [0, 1])
def test_cameras_match_training(seed):
    cam, boxes, _ = random_inputs(100, seed)
    orig_cam = crop_cam_to_orig_cam(cam, boxes, WIDTH, HEIGHT)
    expected = training_camera.crop_cam_to_orig_cam(cam, boxes, WIDTH, HEIGHT)
    assert np.abs(orig_cam - expected).max() <= TOLERANCE
    back = orig_cam_to_crop_cam(orig_cam, boxes, WIDTH, HEIGHT)
    assert (
        np.abs(back - training_camera.orig_cam_to_crop_cam(orig_cam, boxes, WIDTH, HEIGHT)).max()
        <= TOLERANCE
    )
    assert np.abs(back - cam).max() <= TOLERANCE
    focal = focal_length_from_fov(WIDTH, HEIGHT, DEFAULT_DIAGONAL_FOV_DEG)
    translation = orig_cam_to_translation(orig_cam, focal, WIDTH)
    expected_translation = training_camera.orig_cam_to_translation(orig_cam, focal, WIDTH)
    assert np.abs(translation - expected_translation).max() <= TOLERANCE


def test_joints_land_where_the_crop_camera_puts_them():
    """Projected with orig_cam, a joint is at the pixel the crop camera gives it in the crop,
    ``cx + u · side / 2``."""
    cam, boxes, joints = random_inputs(50, 2)
    pixels = project_to_frame(
        joints, crop_cam_to_orig_cam(cam, boxes, WIDTH, HEIGHT), WIDTH, HEIGHT
    )
    in_crop = training_camera.weak_perspective_project(joints, cam)  # (N, 24, 2) in [-1, 1]
    expected = boxes[:, None, :2] + in_crop * boxes[:, None, 2:3] / 2
    assert pixels.shape == (50, 24, 2)
    assert np.abs(pixels - expected).max() <= TOLERANCE * max(WIDTH, HEIGHT)


def test_translation_puts_the_origin_where_the_weak_camera_does():
    """A pinhole at the frame's centre sees the body's origin, at the translation, at the pixel
    orig_cam projects it to."""
    cam, boxes, _ = random_inputs(50, 3)
    orig_cam = crop_cam_to_orig_cam(cam, boxes, WIDTH, HEIGHT)
    focal = 1500.0
    translation = orig_cam_to_translation(orig_cam, focal, WIDTH)
    pinhole = focal * translation[:, :2] / translation[:, 2:] + [WIDTH / 2, HEIGHT / 2]
    weak = project_to_frame(np.zeros((50, 1, 3)), orig_cam, WIDTH, HEIGHT)[:, 0]
    assert np.abs(pinhole - weak).max() <= TOLERANCE * max(WIDTH, HEIGHT)


def test_the_default_focal_length_is_the_diagonal():
    """CLIFF's assumption: the focal length in pixels is the frame's diagonal."""
    focal = focal_length_from_fov(WIDTH, HEIGHT, DEFAULT_DIAGONAL_FOV_DEG)
    assert focal == pytest.approx(math.hypot(WIDTH, HEIGHT))
    assert focal_length_from_fov(WIDTH, HEIGHT, 90.0) == pytest.approx(
        math.hypot(WIDTH, HEIGHT) / 2
    )
