"""Horizontal flip of everything a clip holds: keypoints, 3D joints, SMPL pose, images, masks.

A mirror image swaps the body's left and right, so every joint-indexed array is permuted (left
↔ right by name) as well as reflected in x. The permutations are derived from the joint names
so that they cannot drift from the joint lists.

Conventions: 2D keypoints are in crop coordinates normalised to [-1, 1] (0 at the crop's
centre, see :mod:`training.data.crops`), so the mirror is ``x → -x``; 3D joints are in the
camera frame, mirrored in its x axis; an axis-angle rotation conjugated by that reflection
becomes ``(x, -y, -z)`` (a reflection reverses the sense of rotation and mirrors the axis).
"""

from __future__ import annotations

import numpy as np

from training.body.joint_sets import SPIN49_NAMES
from training.body.skeleton import NUM_JOINTS, SMPL_FLIP_PERMUTATION

# A placeholder that appears in no joint name, used to swap "left" and "right" in one pass.
_SWAP_MARK = "@"


def _mirror_name(name: str) -> str:
    """The name of the joint on the other side ("op_left_eye" → "op_right_eye")."""
    return name.replace("left", _SWAP_MARK).replace("right", "left").replace(_SWAP_MARK, "right")


# Index of each of SPIN's 49 joints' mirror image (itself for joints on the midline).
SPIN49_FLIP_PERMUTATION: tuple[int, ...] = tuple(
    SPIN49_NAMES.index(_mirror_name(name)) for name in SPIN49_NAMES
)
# The sign change of an axis-angle vector under the reflection x → -x.
_ROTATION_MIRROR = np.array([1.0, -1.0, -1.0])
_AXIS_ANGLE_SIZE = 3


def flip_keypoints_2d(keypoints: np.ndarray) -> np.ndarray:
    """Mirror ``(..., 49, 3)`` keypoints in normalised crop coordinates; confidence kept."""
    flipped = keypoints[..., SPIN49_FLIP_PERMUTATION, :].copy()
    flipped[..., 0] = -flipped[..., 0]
    return flipped


def flip_joints_3d(joints: np.ndarray) -> np.ndarray:
    """Mirror ``(..., 49, 4)`` camera-frame joints (x, y, z, validity) in x; validity kept."""
    flipped = joints[..., SPIN49_FLIP_PERMUTATION, :].copy()
    flipped[..., 0] = -flipped[..., 0]
    return flipped


def flip_pose(pose: np.ndarray) -> np.ndarray:
    """Mirror ``(..., 72)`` SMPL axis-angle pose: joints swapped, each rotation reflected."""
    per_joint = pose.reshape(*pose.shape[:-1], NUM_JOINTS, _AXIS_ANGLE_SIZE)
    flipped = per_joint[..., SMPL_FLIP_PERMUTATION, :] * _ROTATION_MIRROR
    return flipped.reshape(pose.shape).astype(pose.dtype)


def flip_image(image: np.ndarray) -> np.ndarray:
    """Mirror an ``(H, W)`` or ``(H, W, C)`` image or mask left to right."""
    return np.ascontiguousarray(image[:, ::-1])
