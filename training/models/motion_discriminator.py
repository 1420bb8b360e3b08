"""SPS-Net's motion discriminator D (§3.4, Fig. 5): self-attention over [β, θ_i], then a classifier.

``J_i = [β, θ_i] ∈ R^82``; the self-attention A_D (the same module as SPS-Net's A, Eq. 1-2,
with Q and K of hidden ``discriminator_hidden``) gives ``H_i``; their mean over the frames is
the motion representation ``M``; the classifier C_D (FC 82 → 1, sigmoid) says how real the
motion looks. D is trained with Eq. 7 on AMASS sequences (real) against SPS-Net's (fake).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from training.body.skeleton import NUM_JOINTS
from training.models.hmr_regressor import NUM_BETAS
from training.models.spsnet import SelfAttention

POSE_DIM = NUM_JOINTS * 3  # SMPL's θ in axis-angle
JOINT_DIM = NUM_BETAS + POSE_DIM  # 82


class MotionDiscriminator(nn.Module):
    """``pose θ (B, T, 72)`` and ``betas β (B, 10)`` or ``(B, T, 10)`` → P(real) ``(B,)``."""

    def __init__(self, hidden: int = JOINT_DIM) -> None:
        super().__init__()
        self.attention = SelfAttention(JOINT_DIM, hidden)  # A_D
        self.classifier = nn.Linear(JOINT_DIM, 1)  # C_D

    def motion_representation(self, pose: Tensor, betas: Tensor) -> tuple[Tensor, Tensor]:
        """``M (B, 82)``, the mean of ``H_i`` over the frames, and A_D's attention ``(B, T, T)``."""
        if betas.dim() == 2:  # one β per sequence, as the paper's Θ = [θ_1, …, θ_N, β]
            betas = betas[:, None].expand(-1, pose.shape[1], -1)
        joint = torch.cat([betas, pose], dim=-1)  # J_i = [β, θ_i]
        latent, attention = self.attention(joint)
        return latent.mean(dim=1), attention

    def forward(self, pose: Tensor, betas: Tensor) -> Tensor:
        """Probability ``(B,)`` in (0, 1) that the motion ``(θ_1..θ_T, β)`` is real."""
        motion, _ = self.motion_representation(pose, betas)
        return self.classifier(motion).sigmoid().squeeze(-1)
