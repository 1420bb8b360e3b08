"""Rotation matrices in numpy: the nearest rotation to any matrix, and axis-angle (SMPL's pose).

Matrices act on column vectors (``y = R @ x``), as in :mod:`training.geometry.rotations`, whose
torch conversions (through ``roma``) these reproduce without torch; conversions go through
scipy's ``Rotation``, as the GLB writer's quaternions do.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def nearest_rotation(matrices: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` any matrices → the nearest rotation of each (Frobenius norm, det +1).

    The SVD ``M = U S Vᵀ`` gives ``U diag(1, 1, det(U Vᵀ)) Vᵀ`` (Umeyama 1991): a weighted mean
    of rotations, or a filtered one, becomes a rotation again.
    """
    u, _, vt = np.linalg.svd(matrices)
    sign = np.where(np.linalg.det(u @ vt) < 0, -1.0, 1.0)  # (...,)
    u = np.concatenate([u[..., :2], u[..., 2:] * sign[..., None, None]], axis=-1)
    return u @ vt


def rotmat_to_axis_angle(rotmat: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotations → axis-angle ``(..., 3)`` float64, angle in [0, π].

    scipy converts through the quaternion, so it is accurate near 0 and near π alike (where
    ``arccos`` of the trace loses half the digits).
    """
    matrices = np.asarray(rotmat, dtype=np.float64)
    rotvecs = Rotation.from_matrix(matrices.reshape(-1, 3, 3)).as_rotvec()
    return rotvecs.reshape(*matrices.shape[:-2], 3)
