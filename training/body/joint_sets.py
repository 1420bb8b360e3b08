"""Evaluation joint sets: 14 LSP-style and 17 H36M-style joints, as regressors from vertices.

Every joint set is a matrix ``(J, V)`` applied to a mesh's vertices, so that predicted and
ground-truth meshes are compared at the same points whatever body model made them.

- With the user's ``J_regressor_h36m.npy`` (the published H36M regressor for SMPL, as VIBE,
  SPIN and MAED evaluate), ``h36m17`` is that regressor and ``lsp14`` takes 14 of its rows.
- Without it (and always for the stand-in), both are defined by the project from the body's
  own 24-joint regressor and two named vertices, as :data:`PROJECT_DEFINITIONS` lists. Numbers
  from the two definitions are not comparable with each other.
- ``spin49``, the 49 joints of SPIN's, VIBE's and MAED's dataset files, is always the project's
  definition (from the 24 joints and the named vertices of nose, eyes, ears, toes, heels).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from training.body.skeleton import SMPL_JOINT_NAMES

# The 14 joints of LSP order (the "J14" of the 3DPW and H36M protocols): hips at 2 and 3.
LSP14_NAMES: tuple[str, ...] = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
    "neck", "head_top",
)  # fmt: skip
# The 17 joints of Human3.6M in the order of its published SMPL regressor.
H36M17_NAMES: tuple[str, ...] = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "spine", "thorax", "neck_nose", "head",
    "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
)  # fmt: skip
# SPIN's 49 joints (Kolotouros et al. 2019), the layout of VIBE/MAED dataset files: the 25 of
# OpenPose's BODY_25 followed by 24 from the datasets' own annotations.
OPENPOSE25_NAMES: tuple[str, ...] = (
    "op_nose", "op_neck", "op_right_shoulder", "op_right_elbow", "op_right_wrist",
    "op_left_shoulder", "op_left_elbow", "op_left_wrist", "op_mid_hip", "op_right_hip",
    "op_right_knee", "op_right_ankle", "op_left_hip", "op_left_knee", "op_left_ankle",
    "op_right_eye", "op_left_eye", "op_right_ear", "op_left_ear", "op_left_big_toe",
    "op_left_small_toe", "op_left_heel", "op_right_big_toe", "op_right_small_toe",
    "op_right_heel",
)  # fmt: skip
SPIN24_NAMES: tuple[str, ...] = (
    *LSP14_NAMES, "mpii_pelvis", "mpii_thorax", "h36m_spine", "h36m_jaw", "h36m_head",
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
)  # fmt: skip
SPIN49_NAMES: tuple[str, ...] = OPENPOSE25_NAMES + SPIN24_NAMES
JOINT_SET_NAMES: dict[str, tuple[str, ...]] = {
    "smpl24": SMPL_JOINT_NAMES,
    "lsp14": LSP14_NAMES,
    "h36m17": H36M17_NAMES,
    "spin49": SPIN49_NAMES,
}
# The joint sets the published H36M regressor defines when the user gives it.
PUBLISHED_JOINT_SETS = ("lsp14", "h36m17")
# Which H36M joint serves for each LSP joint when the published H36M regressor is given.
LSP14_FROM_H36M17 = {**{name: name for name in LSP14_NAMES}, "neck": "thorax", "head_top": "head"}

# The project's definition: each joint is the mean of the listed points, where a point is one
# of the body's 24 joints (SMPL name) or a named vertex ("@name", see the body's landmarks).
_TORSO_AND_LIMBS: dict[str, tuple[str, ...]] = {
    name: (name,) for name in SMPL_JOINT_NAMES if name.split("_")[-1] in
    ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")
}  # fmt: skip
_FACE: dict[str, tuple[str, ...]] = {
    "nose": ("@nose",), "left_eye": ("@leye",), "right_eye": ("@reye",),
    "left_ear": ("@lear",), "right_ear": ("@rear",),
}  # fmt: skip
_LSP14: dict[str, tuple[str, ...]] = {
    **_TORSO_AND_LIMBS,
    "neck": ("neck",),
    "head_top": ("@head_top",),
}
_OPENPOSE25: dict[str, tuple[str, ...]] = {
    **{f"op_{name}": points for name, points in {**_TORSO_AND_LIMBS, **_FACE}.items()},
    "op_neck": ("neck",),
    "op_mid_hip": ("left_hip", "right_hip"),
    "op_left_big_toe": ("@LBigToe",), "op_left_small_toe": ("@LSmallToe",),
    "op_left_heel": ("@LHeel",), "op_right_big_toe": ("@RBigToe",),
    "op_right_small_toe": ("@RSmallToe",), "op_right_heel": ("@RHeel",),
}  # fmt: skip
PROJECT_DEFINITIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "lsp14": _LSP14,
    "spin49": {
        **_OPENPOSE25,
        **_LSP14,
        **_FACE,
        "mpii_pelvis": ("left_hip", "right_hip"),
        "mpii_thorax": ("spine3", "neck"),
        "h36m_spine": ("spine2",),
        "h36m_jaw": ("@nose", "neck"),  # the chin lies between them
        "h36m_head": ("head", "@head_top"),
    },
    "h36m17": {
        **_TORSO_AND_LIMBS,
        "pelvis": ("left_hip", "right_hip"),
        "spine": ("spine2",),
        "thorax": ("spine3", "neck"),
        "neck_nose": ("@nose",),
        "head": ("@head_top",),
    },
}


def project_joint_regressor(
    joint_set: str, smpl_regressor: np.ndarray, landmarks: Mapping[str, int]
) -> np.ndarray:
    """The project's ``(J, V)`` regressor for ``joint_set`` ("lsp14" or "h36m17").

    ``smpl_regressor (24, V)`` is the body's own joint regressor; ``landmarks`` names vertices.
    """
    definition = PROJECT_DEFINITIONS[joint_set]
    num_vertices = smpl_regressor.shape[1]
    rows = []
    for joint in JOINT_SET_NAMES[joint_set]:
        points = []
        for point in definition[joint]:
            if point.startswith("@"):
                one_hot = np.zeros(num_vertices, dtype=smpl_regressor.dtype)
                one_hot[landmarks[point[1:]]] = 1.0
                points.append(one_hot)
            else:
                points.append(smpl_regressor[SMPL_JOINT_NAMES.index(point)])
        rows.append(np.mean(points, axis=0))
    return np.stack(rows)


def published_joint_regressor(joint_set: str, h36m_regressor: np.ndarray) -> np.ndarray:
    """The ``(J, V)`` regressor for ``joint_set`` from the published H36M regressor ``(17, V)``."""
    if h36m_regressor.shape[0] != len(H36M17_NAMES):
        raise ValueError(f"an H36M regressor has 17 rows, got shape {h36m_regressor.shape}")
    if joint_set == "h36m17":
        return h36m_regressor
    rows = [H36M17_NAMES.index(LSP14_FROM_H36M17[name]) for name in LSP14_NAMES]
    return h36m_regressor[rows]
