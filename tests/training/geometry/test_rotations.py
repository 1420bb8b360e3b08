"""Rotation conversions: hand-worked values, round trips, conventions, shapes and errors."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from training.geometry.rotations import (
    axis_angle_to_quat,
    axis_angle_to_rotmat,
    quat_to_axis_angle,
    quat_to_rotmat,
    rot6d_to_rotmat,
    rotmat_to_axis_angle,
    rotmat_to_quat,
    rotmat_to_rot6d,
    rotmats_to_smpl_pose,
    smpl_pose_to_rotmats,
)

ATOL = 1e-10


@pytest.fixture
def axis_angles() -> torch.Tensor:
    """(4, 5, 3) random rotation vectors with angles below π (so axis-angle is unique)."""
    gen = torch.Generator().manual_seed(0)
    axes = torch.nn.functional.normalize(
        torch.randn(4, 5, 3, generator=gen, dtype=torch.float64), dim=-1
    )
    angles = torch.rand(4, 5, 1, generator=gen, dtype=torch.float64) * (math.pi - 0.1)
    return axes * angles


def _is_rotation(R: torch.Tensor) -> bool:
    eye = torch.eye(3, dtype=R.dtype).expand_as(R)
    orthogonal = torch.allclose(R @ R.transpose(-1, -2), eye, atol=1e-9)
    return orthogonal and torch.allclose(
        torch.linalg.det(R), torch.ones(R.shape[:-2], dtype=R.dtype)
    )


def test_axis_angle_quarter_turn_about_z() -> None:
    # 90° about z sends x to y: columns of R are the images of the axes, (0,1,0), (−1,0,0), (0,0,1).
    R = axis_angle_to_rotmat(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    expected = torch.tensor(
        [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64
    )
    torch.testing.assert_close(R, expected, atol=ATOL, rtol=0)


def test_axis_angle_rotmat_round_trip(axis_angles: torch.Tensor) -> None:
    R = axis_angle_to_rotmat(axis_angles)
    assert R.shape == (4, 5, 3, 3)
    assert _is_rotation(R)
    torch.testing.assert_close(rotmat_to_axis_angle(R), axis_angles, atol=1e-9, rtol=0)


def test_rot6d_reads_row_by_row() -> None:
    # x = (x0..x5) read as a 3×2 matrix row by row: a1 = (x0, x2, x4) = (2, 0, 0),
    # a2 = (x1, x3, x5) = (1, 3, 0). b1 = (1,0,0); a2 − (b1·a2) b1 = (0,3,0) → b2 = (0,1,0);
    # b3 = b1 × b2 = (0,0,1): the identity. Reading two consecutive 3-vectors instead would
    # give a1 = (2,1,0), not along x, so this case tells the two layouts apart.
    x = torch.tensor([2.0, 1.0, 0.0, 3.0, 0.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(
        rot6d_to_rotmat(x), torch.eye(3, dtype=torch.float64), atol=ATOL, rtol=0
    )


def test_rot6d_gram_schmidt_hand_worked() -> None:
    # a1 = (0, 0, 5) → b1 = (0, 0, 1); a2 = (1, 1, 1) → a2 − (b1·a2) b1 = (1, 1, 0)
    # → b2 = (1, 1, 0)/√2;
    # b3 = b1 × b2 = (0·0 − 1·1, 1·1 − 0·0, 0)/√2 = (−1, 1, 0)/√2. Interleaved: (0,1, 0,1, 5,1).
    x = torch.tensor([0.0, 1.0, 0.0, 1.0, 5.0, 1.0], dtype=torch.float64)
    r = 1 / math.sqrt(2)
    expected = torch.tensor([[0.0, r, -r], [0.0, r, r], [1.0, 0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(rot6d_to_rotmat(x), expected, atol=ATOL, rtol=0)


def test_rotmat_rot6d_exact_inverse(axis_angles: torch.Tensor) -> None:
    R = axis_angle_to_rotmat(axis_angles)
    six = rotmat_to_rot6d(R)
    assert six.shape == (4, 5, 6)
    # The first two columns, row by row.
    torch.testing.assert_close(six[..., 0::2], R[..., :, 0])
    torch.testing.assert_close(six[..., 1::2], R[..., :, 1])
    torch.testing.assert_close(rot6d_to_rotmat(six), R, atol=ATOL, rtol=0)


def test_rot6d_of_arbitrary_input_is_rotation() -> None:
    x = torch.randn(7, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert _is_rotation(rot6d_to_rotmat(x))


def test_quaternion_is_scalar_first() -> None:
    # 90° about z: w = cos 45°, (x, y, z) = sin 45° · (0, 0, 1).
    q = axis_angle_to_quat(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    c = math.cos(math.pi / 4)
    torch.testing.assert_close(
        q, torch.tensor([c, 0.0, 0.0, c], dtype=torch.float64), atol=ATOL, rtol=0
    )
    identity = quat_to_rotmat(torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(identity, torch.eye(3, dtype=torch.float64))


def test_quaternion_round_trips(axis_angles: torch.Tensor) -> None:
    R = axis_angle_to_rotmat(axis_angles)
    q = rotmat_to_quat(R)
    assert q.shape == (4, 5, 4)
    torch.testing.assert_close(quat_to_rotmat(q), R, atol=1e-9, rtol=0)
    torch.testing.assert_close(
        quat_to_axis_angle(axis_angle_to_quat(axis_angles)), axis_angles, atol=1e-9, rtol=0
    )
    # q and −q are one rotation; a non-unit quaternion is normalised before use.
    torch.testing.assert_close(quat_to_rotmat(-3.0 * q), R, atol=1e-9, rtol=0)


def test_smpl_pose_round_trip() -> None:
    pose = torch.randn(2, 72, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 0.5
    rotmats = smpl_pose_to_rotmats(pose)
    assert rotmats.shape == (2, 24, 3, 3)
    # Joint-major: joint 1 is pose[:, 3:6].
    torch.testing.assert_close(rotmats[:, 1], axis_angle_to_rotmat(pose[:, 3:6]))
    torch.testing.assert_close(rotmats_to_smpl_pose(rotmats), pose, atol=1e-9, rtol=0)


def test_float32_gradients_flow_through_6d() -> None:
    x = torch.randn(3, 6, requires_grad=True)
    rot6d_to_rotmat(x).sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize(
    ("func", "bad"),
    [
        (axis_angle_to_rotmat, torch.zeros(2, 4)),
        (rotmat_to_axis_angle, torch.zeros(2, 3, 2)),
        (rot6d_to_rotmat, torch.zeros(2, 5)),
        (rotmat_to_rot6d, torch.zeros(3)),
        (quat_to_rotmat, torch.zeros(2, 3)),
        (smpl_pose_to_rotmats, torch.zeros(2, 69)),
        (rotmats_to_smpl_pose, torch.zeros(2, 23, 3, 3)),
    ],
)
def test_wrong_shapes_raise(
    func: Callable[[torch.Tensor], torch.Tensor], bad: torch.Tensor
) -> None:
    with pytest.raises(ValueError, match="shape"):
        func(bad)
