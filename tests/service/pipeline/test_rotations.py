"""numpy rotations against scipy's: the nearest rotation, and axis-angle near 0 and π."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from service.pipeline.rotations import nearest_rotation, rotmat_to_axis_angle

TOLERANCE = 1e-9


def random_axes(count: int, rng: np.random.Generator) -> np.ndarray:
    axes = rng.standard_normal((count, 3))
    return axes / np.linalg.norm(axes, axis=1, keepdims=True)


def test_axis_angle_matches_scipy_at_any_angle():
    rng = np.random.default_rng(0)
    rotvecs = random_axes(1000, rng) * rng.uniform(0.0, np.pi - 1e-3, (1000, 1))
    matrices = Rotation.from_rotvec(rotvecs).as_matrix()
    assert np.abs(rotmat_to_axis_angle(matrices) - rotvecs).max() <= TOLERANCE


@pytest.mark.parametrize("angle", [0.0, 1e-12, 1e-7, 1e-4, np.pi - 1e-7, np.pi])
def test_axis_angle_is_accurate_near_zero_and_pi(angle):
    """The matrix rebuilt from the axis-angle is the one given; the angle stays in [0, π]."""
    rng = np.random.default_rng(1)
    matrices = Rotation.from_rotvec(random_axes(50, rng) * angle).as_matrix()
    rotvecs = rotmat_to_axis_angle(matrices)
    assert np.abs(Rotation.from_rotvec(rotvecs).as_matrix() - matrices).max() <= TOLERANCE
    assert np.abs(np.linalg.norm(rotvecs, axis=1) - angle).max() <= TOLERANCE


def test_axis_angle_keeps_leading_dimensions():
    matrices = Rotation.random(6, random_state=2).as_matrix().reshape(2, 3, 3, 3)
    assert rotmat_to_axis_angle(matrices).shape == (2, 3, 3)


def test_nearest_rotation_is_a_rotation_and_keeps_rotations():
    rng = np.random.default_rng(3)
    rotations = Rotation.random(100, random_state=3).as_matrix()
    assert np.abs(nearest_rotation(rotations) - rotations).max() <= TOLERANCE
    # A reflection's nearest rotation has det +1, not the reflection's -1.
    noisy = np.concatenate([rotations + 0.3 * rng.standard_normal((100, 3, 3)), -rotations])
    projected = nearest_rotation(noisy)
    identity = np.broadcast_to(np.eye(3), projected.shape)
    assert np.abs(projected @ projected.transpose(0, 2, 1) - identity).max() <= TOLERANCE
    assert np.abs(np.linalg.det(projected) - 1.0).max() <= TOLERANCE


def test_nearest_rotation_of_a_mean_is_scipys_mean():
    """The projected mean of rotations close together is the chordal L2 mean (scipy's)."""
    rotations = Rotation.from_rotvec(np.random.default_rng(4).normal(0.0, 0.2, (20, 3)))
    got = nearest_rotation(rotations.as_matrix().mean(axis=0))
    assert np.abs(got - rotations.mean().as_matrix()).max() <= TOLERANCE
