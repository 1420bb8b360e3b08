"""HMR's regressor with iterative error feedback (Kanazawa et al. 2018), in SPIN's layout.

Starting from mean parameters, each of ``iterations`` steps reads the feature together with
the current estimate and adds a correction: ``Θ ← Θ + dec(fc2(fc1([x, Θ])))``. Pose is
SPIN's 6D rotation per joint (Zhou et al. 2019), so a SPIN/VIBE checkpoint's ``fc1``, ``fc2``,
``decpose``, ``decshape``, ``deccam`` and ``init_*`` buffers load by name.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from training.body.skeleton import NUM_JOINTS
from training.geometry import rot6d_to_rotmat, rotmat_to_rot6d

NUM_BETAS = 10
NUM_CAM = 3  # weak-perspective (s, tx, ty)
POSE_6D = NUM_JOINTS * 6
# Mean parameters when no SPIN mean-parameter file is given: every joint at rest, the body
# turned upside down about X (image y points down, the body's Y up: the same convention as
# SPIN's mean global orientation), zero shape, a body filling ~90 % of the crop at its centre.
DEFAULT_CAM_SCALE = 0.9


def default_mean_params() -> tuple[Tensor, Tensor, Tensor]:
    """``init_pose (1, 144)``, ``init_shape (1, 10)``, ``init_cam (1, 3)``."""
    rotmats = torch.eye(3).repeat(NUM_JOINTS, 1, 1)
    rotmats[0] = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])  # R_x(π)
    pose = rotmat_to_rot6d(rotmats).reshape(1, POSE_6D)
    cam = torch.tensor([[DEFAULT_CAM_SCALE, 0.0, 0.0]])
    return pose, torch.zeros(1, NUM_BETAS), cam


class HMRRegressor(nn.Module):
    """Feature ``(N, D)`` → rotations ``(N, 24, 3, 3)``, β ``(N, 10)``, camera ``(N, 3)``."""

    init_pose: Tensor
    init_shape: Tensor
    init_cam: Tensor

    def __init__(
        self, feature_dim: int, hidden: int = 1024, iterations: int = 3, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.iterations = iterations
        self.fc1 = nn.Linear(feature_dim + POSE_6D + NUM_BETAS + NUM_CAM, hidden)
        self.drop1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, hidden)
        self.drop2 = nn.Dropout(dropout)
        self.decpose = nn.Linear(hidden, POSE_6D)
        self.decshape = nn.Linear(hidden, NUM_BETAS)
        self.deccam = nn.Linear(hidden, NUM_CAM)
        # Small output layers so the first estimates stay near the mean (as in SPIN).
        for layer in (self.decpose, self.decshape, self.deccam):
            nn.init.xavier_uniform_(layer.weight, gain=0.01)
        pose, shape, cam = default_mean_params()
        self.register_buffer("init_pose", pose)
        self.register_buffer("init_shape", shape)
        self.register_buffer("init_cam", cam)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Regress SMPL parameters from features ``x (N, D)``.

        Returns ``rotmat (N, 24, 3, 3)``, ``pose6d (N, 144)``, ``betas (N, 10)``, ``cam (N, 3)``.
        """
        n = x.shape[0]
        pose = self.init_pose.expand(n, -1)
        shape = self.init_shape.expand(n, -1)
        cam = self.init_cam.expand(n, -1)
        for _ in range(self.iterations):
            hidden = self.drop1(self.fc1(torch.cat([x, pose, shape, cam], dim=1)))
            hidden = self.drop2(self.fc2(hidden))
            pose = pose + self.decpose(hidden)
            shape = shape + self.decshape(hidden)
            cam = cam + self.deccam(hidden)
        rotmat = rot6d_to_rotmat(pose.reshape(n, NUM_JOINTS, 6))
        return {"rotmat": rotmat, "pose6d": pose, "betas": shape, "cam": cam}
