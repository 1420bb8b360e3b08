"""A body model in SMPL's format: shape blend shapes, a joint regressor and linear blend
skinning over SMPL's 24-joint tree, computed by ``smplx``'s own ``lbs`` function.

The licensed SMPL model and the project's free stand-in are the same kind of object; only
their arrays (and so their vertex count) differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import torch
from smplx.lbs import lbs
from torch import Tensor, nn

from training.body.files import BodyModelFileError
from training.body.joint_sets import (
    JOINT_SET_NAMES,
    PUBLISHED_JOINT_SETS,
    project_joint_regressor,
    published_joint_regressor,
)
from training.body.skeleton import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS

NUM_BETAS = 10
NUM_POSE_PARAMS = NUM_JOINTS * 3  # axis-angle per joint: 72
# smplx's posedirs act on (R - I) of the 23 non-root joints: 23 * 9 = 207 numbers
NUM_POSE_CORRECTIVES = (NUM_JOINTS - 1) * 9


class BodyOutput(NamedTuple):
    """What a body model returns, in metres in the body's frame (Y up, facing +Z)."""

    vertices: Tensor  # (B, V, 3)
    joints: Tensor  # (B, 24, 3) SMPL's joints, in SMPL order


class BodyModel(nn.Module):
    """SMPL-format body: ``forward(pose, betas)`` → vertices and SMPL's 24 joints.

    Attributes:
        name: "smpl", "standin" or the file it came from.
        faces: ``(F, 3)`` long, triangles of the mesh.
        parents: ``(24,)`` long, parent of each joint (-1 for the root).
        joint_names: SMPL's 24 joint names in SMPL order.
        num_vertices: V.
        landmarks: named vertex indices (nose, eyes, ears, toes, heels, fingertips, head_top).
        joint_set_source: "published" when the H36M regressor is the user's file, else "project".
    """

    faces: Tensor
    parents: Tensor
    v_template: Tensor
    shapedirs: Tensor
    posedirs: Tensor
    J_regressor: Tensor
    lbs_weights: Tensor

    def __init__(
        self,
        arrays: Mapping[str, Any],
        *,
        name: str,
        landmarks: Mapping[str, int],
        h36m_regressor: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        v_template = np.asarray(arrays["v_template"], dtype=np.float32)
        num_vertices = v_template.shape[0]
        shapedirs = np.asarray(arrays["shapedirs"], dtype=np.float32)[:, :, :NUM_BETAS]
        posedirs = np.asarray(arrays["posedirs"], dtype=np.float32)
        J_regressor = np.asarray(arrays["J_regressor"], dtype=np.float32)
        weights = np.asarray(arrays["weights"], dtype=np.float32)
        parents = np.asarray(arrays["kintree_table"])[0].astype(np.int64)
        parents[0] = -1
        expected = {
            "shapedirs": (shapedirs.shape, (num_vertices, 3, NUM_BETAS)),
            "posedirs": (posedirs.shape, (num_vertices, 3, NUM_POSE_CORRECTIVES)),
            "J_regressor": (J_regressor.shape, (NUM_JOINTS, num_vertices)),
            "weights": (weights.shape, (num_vertices, NUM_JOINTS)),
        }
        for key, (got, want) in expected.items():
            if got != want:
                raise BodyModelFileError(f"{name}: {key} has shape {got}, expected {want}")
        if tuple(parents.tolist()) != SMPL_PARENTS:
            raise BodyModelFileError(f"{name}: its kinematic tree is not SMPL's 24-joint tree")

        self.name = name
        self.joint_names = SMPL_JOINT_NAMES
        self.num_vertices = num_vertices
        self.landmarks = dict(landmarks)
        self.joint_set_source = "published" if h36m_regressor is not None else "project"
        self.register_buffer("v_template", torch.from_numpy(v_template))
        self.register_buffer("shapedirs", torch.from_numpy(shapedirs))
        # smplx multiplies the pose feature (B, 207) by posedirs laid out as (207, V*3)
        self.register_buffer(
            "posedirs", torch.from_numpy(posedirs.reshape(-1, NUM_POSE_CORRECTIVES).T.copy())
        )
        self.register_buffer("J_regressor", torch.from_numpy(J_regressor))
        self.register_buffer("lbs_weights", torch.from_numpy(weights))
        self.register_buffer("parents", torch.from_numpy(parents))
        self.register_buffer("faces", torch.from_numpy(np.asarray(arrays["f"], dtype=np.int64)))
        self._joint_regressors = {
            joint_set: self._make_joint_regressor(joint_set, J_regressor, h36m_regressor)
            for joint_set in JOINT_SET_NAMES
        }

    def _make_joint_regressor(
        self, joint_set: str, J_regressor: np.ndarray, h36m_regressor: np.ndarray | None
    ) -> np.ndarray:
        if joint_set == "smpl24":
            return J_regressor
        if h36m_regressor is not None and joint_set in PUBLISHED_JOINT_SETS:
            if h36m_regressor.shape[1] != self.num_vertices:
                raise BodyModelFileError(
                    f"the H36M regressor is for {h36m_regressor.shape[1]} vertices, "
                    f"the {self.name} body has {self.num_vertices}"
                )
            return published_joint_regressor(joint_set, h36m_regressor.astype(np.float32))
        return project_joint_regressor(joint_set, J_regressor, self.landmarks)

    def forward(self, pose: Tensor, betas: Tensor) -> BodyOutput:
        """Pose and shape the body.

        Args:
            pose: ``(B, 24, 3, 3)`` rotation matrices or ``(B, 72)`` axis-angle, SMPL order,
                joint 0 the global orientation, the others relative to their parent.
            betas: ``(B, 10)`` shape coefficients.
        """
        batch = betas.shape[0]
        if betas.shape != (batch, NUM_BETAS):
            raise ValueError(f"betas must be (B, {NUM_BETAS}), got {tuple(betas.shape)}")
        if pose.shape == (batch, NUM_POSE_PARAMS):
            as_axis_angle = True
        elif pose.shape == (batch, NUM_JOINTS, 3, 3):
            as_axis_angle = False
        else:
            raise ValueError(
                f"pose must be (B, {NUM_POSE_PARAMS}) axis-angle or (B, {NUM_JOINTS}, 3, 3) "
                f"rotation matrices with B = {batch} as in betas, got {tuple(pose.shape)}"
            )
        vertices, joints = lbs(
            betas, pose, self.v_template, self.shapedirs, self.posedirs,
            self.J_regressor, self.parents, self.lbs_weights, pose2rot=as_axis_angle,
        )  # fmt: skip
        return BodyOutput(vertices=vertices, joints=joints)

    def restricted(self, vertex_ids: np.ndarray) -> BodyModel:
        """The same body computing only the vertices ``vertex_ids``, the named ones and those
        its joint regressor reads: a cheap body for losses and labels that need no whole mesh.

        Skinning is per vertex and the joints are regressed from the vertices the regressor
        reads, so the kept vertices and every joint (and joint set) come out as the whole
        body's. It has no faces, and its joint sets are the project's definitions.
        """
        regressor = self.J_regressor.cpu().numpy()
        named = np.asarray(sorted(set(self.landmarks.values())), dtype=np.int64)
        keep = np.union1d(np.asarray(vertex_ids, dtype=np.int64), named)
        keep = np.union1d(keep, np.flatnonzero(np.abs(regressor).sum(axis=0)))
        posedirs = self.posedirs.cpu().numpy().T.reshape(self.num_vertices, 3, -1)
        arrays = {
            "v_template": self.v_template.cpu().numpy()[keep],
            "shapedirs": self.shapedirs.cpu().numpy()[keep],
            "posedirs": posedirs[keep],
            "J_regressor": regressor[:, keep],
            "weights": self.lbs_weights.cpu().numpy()[keep],
            "kintree_table": np.stack([self.parents.cpu().numpy(), np.arange(NUM_JOINTS)]),
            "f": np.zeros((0, 3), dtype=np.int64),
        }
        row = {int(vertex): index for index, vertex in enumerate(keep.tolist())}
        landmarks = {name: row[vertex] for name, vertex in self.landmarks.items()}
        return BodyModel(arrays, name=f"{self.name} (restricted)", landmarks=landmarks)

    def joint_regressor(self, joint_set: str) -> Tensor:
        """The ``(J, V)`` regressor of ``joint_set``: "smpl24", "lsp14" or "h36m17"."""
        if joint_set not in self._joint_regressors:
            raise ValueError(
                f"unknown joint set {joint_set!r}; choose from {sorted(self._joint_regressors)}"
            )
        return torch.from_numpy(self._joint_regressors[joint_set]).to(self.v_template)

    def regress_joints(self, vertices: Tensor, joint_set: str) -> Tensor:
        """Joints ``(B, J, 3)`` of ``joint_set`` from ``vertices (B, V, 3)``."""
        return torch.einsum("jv,bvc->bjc", self.joint_regressor(joint_set), vertices)
