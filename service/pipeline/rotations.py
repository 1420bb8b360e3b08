"""Rotation matrices in numpy: the nearest rotation to any matrix, and axis-angle (SMPL's pose).

Matrices act on column vectors (``y = R @ x``), as in :mod:`training.geometry.rotations`, whose
torch conversions (through ``roma``) these reproduce without torch.
"""

from __future__ import annotations

import numpy as np

# Below this sine of half the angle, axis-angle = 2 v / w (the first term of the series of
# 2 atan2(|v|, w) / |v|): the next term is |v|² / 3 w² ≈ 3e-17 relative, under float64's epsilon.
_SMALL_HALF_SINE = 1e-8


def nearest_rotation(matrices: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` any matrices → the nearest rotation of each (Frobenius norm, det +1).

    The SVD ``M = U S Vᵀ`` gives ``U diag(1, 1, det(U Vᵀ)) Vᵀ`` (Umeyama 1991): a weighted mean
    of rotations, or a filtered one, becomes a rotation again.
    """
    u, _, vt = np.linalg.svd(matrices)
    sign = np.where(np.linalg.det(u @ vt) < 0, -1.0, 1.0)  # (...,)
    u = np.concatenate([u[..., :2], u[..., 2:] * sign[..., None, None]], axis=-1)
    return u @ vt


def rotmat_to_quaternion(rotmat: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations → unit quaternions ``(..., 4)``, scalar first, ``w ≥ 0``.

    Shepperd's method (1978): of the four expressions ``4 q_k q`` the one with the largest
    ``q_k`` is used, so no division is by a small number, whatever the angle (π included).
    """
    m = rotmat.astype(np.float64)
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    candidates = np.stack(  # (..., 4, 4): row k is 4 q_k (w, x, y, z)
        [
            np.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
            np.stack([m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20], -1),
            np.stack([m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21], -1),
            np.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], -1),
        ],
        axis=-2,
    )
    best = np.argmax(np.diagonal(candidates, axis1=-2, axis2=-1), axis=-1)  # (...,)
    quat = np.take_along_axis(candidates, best[..., None, None], axis=-2)[..., 0, :]
    quat /= np.linalg.norm(quat, axis=-1, keepdims=True)
    return np.where(quat[..., :1] < 0, -quat, quat)


def rotmat_to_axis_angle(rotmat: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations → axis-angle ``(..., 3)`` float64, angle in [0, π].

    Through the quaternion ``(w, v)``: the angle is ``2 atan2(|v|, w)``, accurate near 0 and
    near π alike (where ``arccos`` of the trace loses half the digits).
    """
    quat = rotmat_to_quaternion(rotmat)
    w, v = quat[..., :1], quat[..., 1:]
    half_sine = np.linalg.norm(v, axis=-1, keepdims=True)  # (..., 1)
    small = half_sine < _SMALL_HALF_SINE
    angle_per_sine = np.where(
        small,
        2.0 / np.where(small, w, 1.0),
        2.0 * np.arctan2(half_sine, w) / np.where(small, 1.0, half_sine),
    )
    return v * angle_per_sine
