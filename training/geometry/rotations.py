"""Conversions between the rotation representations the networks and body models use.

Representations, all batched over any leading dimensions ``...``:

- axis-angle (rotation vector) ``(..., 3)``: unit axis times angle in radians, as SMPL's pose;
- rotation matrix ``(..., 3, 3)``, acting on column vectors (``y = R @ x``);
- 6D ``(..., 6)``: the continuous representation of Zhou et al., "On the Continuity of
  Rotation Representations in Neural Networks" (CVPR 2019), in the layout MAED's and SPIN's
  regressors emit (see :func:`rot6d_to_rotmat`);
- quaternion ``(..., 4)``, **scalar first (WXYZ)**: ``(w, x, y, z)`` with
  ``w = cos(θ/2)``. The conversions delegate to ``roma`` (Brégier, "Deep Regression on
  Manifolds: A 3D Rotation Case Study", 2021), whose quaternions are scalar *last* (XYZW);
  the reordering happens here so that callers only ever see WXYZ, the order of the DeepMimic
  motion files this project reads and of SPIN/VIBE's ``quat_to_rotmat``.
"""

from __future__ import annotations

import roma
import torch

# SMPL (Loper et al. 2015) poses 24 joints with one axis-angle each: a 72-vector.
SMPL_NUM_JOINTS = 24
AXIS_ANGLE_DIM = 3
ROT6D_DIM = 6
QUAT_DIM = 4

# Floor on the norms divided by in Gram–Schmidt, so a degenerate 6D input gives a finite
# (if meaningless) matrix instead of NaNs that would poison a whole training batch. Same
# value as torch.nn.functional.normalize's default eps, which MAED's conversion relies on.
GRAM_SCHMIDT_EPS = 1e-12


def _check_last_dims(x: torch.Tensor, dims: tuple[int, ...], name: str) -> None:
    """Raise ValueError unless ``x`` ends in the dimensions ``dims``."""
    if x.dim() < len(dims) or tuple(x.shape[x.dim() - len(dims) :]) != dims:
        expected = ", ".join(map(str, dims))
        raise ValueError(f"{name} must have shape (..., {expected}), got {tuple(x.shape)}")


def axis_angle_to_rotmat(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: ``(..., 3)`` axis-angle → ``(..., 3, 3)`` rotation matrix."""
    _check_last_dims(axis_angle, (AXIS_ANGLE_DIM,), "axis_angle")
    return roma.rotvec_to_rotmat(axis_angle)


def rotmat_to_axis_angle(rotmat: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3)`` rotation matrix → ``(..., 3)`` axis-angle with angle in [0, π]."""
    _check_last_dims(rotmat, (3, 3), "rotmat")
    return roma.rotmat_to_rotvec(rotmat)


def rot6d_to_rotmat(rot6d: torch.Tensor) -> torch.Tensor:
    """6D → rotation matrix, in MAED's (and SPIN's, HMR-lineage) layout.

    The six numbers ``x0..x5`` are read as a 3×2 matrix *row by row*, so its two columns are
    ``a1 = (x0, x2, x4)`` and ``a2 = (x1, x3, x5)``. Gram–Schmidt gives
    ``b1 = a1/|a1|``, ``b2 = normalise(a2 − (b1·a2) b1)``, ``b3 = b1 × b2``, and the result has
    columns ``(b1, b2, b3)``. The layout matters: reading the six numbers as two consecutive
    3-vectors instead gives a different rotation from the same network output, so published
    weights would regress wrong poses.

    Args:
        rot6d: ``(..., 6)``.

    Returns:
        ``(..., 3, 3)`` rotation matrices.
    """
    _check_last_dims(rot6d, (ROT6D_DIM,), "rot6d")
    as_3x2 = rot6d.reshape(*rot6d.shape[:-1], 3, 2)
    return roma.special_gramschmidt(as_3x2, epsilon=GRAM_SCHMIDT_EPS)


def rotmat_to_rot6d(rotmat: torch.Tensor) -> torch.Tensor:
    """Rotation matrix → 6D, the exact inverse of :func:`rot6d_to_rotmat` on rotations.

    Keeps the first two columns and flattens them row by row:
    ``(R00, R01, R10, R11, R20, R21)``.

    Args:
        rotmat: ``(..., 3, 3)``.

    Returns:
        ``(..., 6)``.
    """
    _check_last_dims(rotmat, (3, 3), "rotmat")
    return rotmat[..., :, :2].reshape(*rotmat.shape[:-2], ROT6D_DIM)


def quat_to_rotmat(quat: torch.Tensor) -> torch.Tensor:
    """WXYZ quaternion ``(..., 4)`` → ``(..., 3, 3)``; the quaternion is normalised first."""
    _check_last_dims(quat, (QUAT_DIM,), "quat")
    xyzw = roma.quat_wxyz_to_xyzw(quat)
    return roma.unitquat_to_rotmat(roma.quat_normalize(xyzw))


def rotmat_to_quat(rotmat: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3)`` rotation matrix → unit WXYZ quaternion ``(..., 4)`` (sign as roma picks)."""
    _check_last_dims(rotmat, (3, 3), "rotmat")
    return roma.quat_xyzw_to_wxyz(roma.rotmat_to_unitquat(rotmat))


def axis_angle_to_quat(axis_angle: torch.Tensor) -> torch.Tensor:
    """``(..., 3)`` axis-angle → unit WXYZ quaternion ``(..., 4)``."""
    _check_last_dims(axis_angle, (AXIS_ANGLE_DIM,), "axis_angle")
    return roma.quat_xyzw_to_wxyz(roma.rotvec_to_unitquat(axis_angle))


def quat_to_axis_angle(quat: torch.Tensor) -> torch.Tensor:
    """WXYZ quaternion ``(..., 4)`` → ``(..., 3)`` axis-angle with angle in [0, π]."""
    _check_last_dims(quat, (QUAT_DIM,), "quat")
    xyzw = roma.quat_normalize(roma.quat_wxyz_to_xyzw(quat))
    return roma.unitquat_to_rotvec(xyzw, shortest_arc=True)


def nearest_rotation(matrices: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3)`` any matrices → the nearest rotation of each (Frobenius norm; SVD).

    A weighted mean of rotation matrices is not a rotation: this projects it back, which is
    how predictions of overlapping windows are blended.
    """
    _check_last_dims(matrices, (3, 3), "matrices")
    return roma.special_procrustes(matrices)


def smpl_pose_to_rotmats(pose: torch.Tensor) -> torch.Tensor:
    """SMPL pose ``(B, 72)`` axis-angle (joint-major) → ``(B, 24, 3, 3)`` rotation matrices."""
    if pose.dim() != 2 or pose.shape[1] != SMPL_NUM_JOINTS * AXIS_ANGLE_DIM:
        raise ValueError(
            f"SMPL pose must have shape (B, {SMPL_NUM_JOINTS * AXIS_ANGLE_DIM}), "
            f"got {tuple(pose.shape)}"
        )
    return axis_angle_to_rotmat(pose.reshape(pose.shape[0], SMPL_NUM_JOINTS, AXIS_ANGLE_DIM))


def rotmats_to_smpl_pose(rotmats: torch.Tensor) -> torch.Tensor:
    """``(B, 24, 3, 3)`` rotation matrices → SMPL pose ``(B, 72)`` axis-angle (joint-major)."""
    if rotmats.dim() != 4 or tuple(rotmats.shape[1:]) != (SMPL_NUM_JOINTS, 3, 3):
        raise ValueError(
            f"SMPL rotations must have shape (B, {SMPL_NUM_JOINTS}, 3, 3), "
            f"got {tuple(rotmats.shape)}"
        )
    return rotmat_to_axis_angle(rotmats).reshape(rotmats.shape[0], -1)
