"""SPS-Net (Lee et al., "SPS-Net", §3): self-attention, forecasting and fusion over a video.

Per frame the encoder E gives ``f_i``; the self-attention module A mixes all frames into
``h_i`` (Eq. 1-2); the forecasting module F predicts ``f'_{i+1} = F(f_i)`` (trained by Eq. 3);
the fusion weighs ``h_i`` against ``f'_i`` (``F_1 = h_1``); HMR's iterative regressor then reads
pose and camera from each ``F_i`` and one shape β from the whole video.

Readings of the paper, chosen because they reproduce Tables 3 and 4 (with ``feature_dim`` 2048,
the encoder counted, the discriminator not):

* Q, K and F are ``Linear(d, hidden) → LeakyReLU → Linear(hidden, d) → LeakyReLU`` (§4.1: "2 FC
  layers … each followed by a LeakyReLU"). With ``attention_hidden = 2048`` A has 16.79 M
  parameters: exactly Table 3's gap between "Ours" and "w/o A" (51.43 − 34.64).
* Table 3's gap for F (51.43 − 47.23 = 4.20 M, F plus the fusion) is what F has with
  ``forecast_hidden = 1024`` (2048 → 1024 → 2048), not with §4.1's 2048 (8.39 M): the counts
  of the paper's tables come with ``forecast_hidden: 1024``, which ``spsnet_paper`` uses.
* R_shape is a second HMR regressor (a video-level one, read on the mean of the fused features)
  next to the per-frame one that gives R_pose and R_camera: "the regressors are initialised
  from HMR" and the remaining 30.45 M of "w/o A" is the ResNet-50 (23.51 M) plus two HMR
  regressors (2 × 3.47 M).
* The GRU of Table 4 is VIBE's temporal encoder (2-layer GRU of 1024, a linear layer back to d,
  a residual): 52.49 M where Table 4 says 50.88 M. No usual GRU layout has Table 4's 16.24 M
  (without the linear layer, and so without the residual, it would be 50.39 M).
"""

from __future__ import annotations

from typing import Self

import torch
from torch import Tensor, nn

from training.body.skeleton import NUM_JOINTS
from training.geometry import rotmats_to_smpl_pose
from training.models.hmr_regressor import HMRRegressor
from training.models.landmark_input import LandmarkEncoder
from training.models.resnet import FEATURE_DIM, ResNet50
from training.recipes.schema import SPSNetConfig


def two_layer_mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """Two FC layers each followed by a LeakyReLU (§4.1): ``(..., in_dim)`` → ``(..., out_dim)``."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.LeakyReLU(), nn.Linear(hidden, out_dim), nn.LeakyReLU()
    )


class SelfAttention(nn.Module):
    """SPS-Net's self-attention (§3.2, Eq. 1-2), used by A (d = 2048) and by A_D (d = 82).

    ``q_i = Q(f_i)``, ``k_l = K(f_l)``, ``w_i^l = q_i · k_l`` (unscaled, as in the paper), ``a_i^l``
    = softmax over the frames l (Eq. 1), ``h_i = f_i + Σ_l a_i^l f_l`` (Eq. 2). Q and K differ, so
    the attention of frame i to frame l need not equal that of l to i (§3.2). Without the
    1/√d of scaled dot-product attention the softmax saturates (one-hot, no gradient to Q and K)
    on large features, e.g. an untrained ResNet's (~15 a channel).
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.query = two_layer_mlp(dim, hidden, dim)
        self.key = two_layer_mlp(dim, hidden, dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x (B, T, d)`` → ``h (B, T, d)`` and the attention ``a (B, T, T)`` (rows sum to one)."""
        weights = self.query(x) @ self.key(x).transpose(1, 2)  # w_i^l, (B, T, T)
        attention = weights.softmax(dim=-1)  # Eq. 1
        return x + attention @ x, attention  # Eq. 2


class TemporalGRU(nn.Module):
    """Table 4's alternative to A, VIBE-style: ``h_i = f_i + Linear(ReLU(GRU(f)_i))``.

    Unidirectional, so ``h_i`` sees frames 1..i only (as in VIBE).
    """

    def __init__(self, dim: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.gru = nn.GRU(dim, hidden, num_layers=layers, batch_first=True)
        self.relu = nn.ReLU()
        self.linear = nn.Linear(hidden, dim)  # back to d, so the residual can be added

    def forward(self, x: Tensor) -> Tensor:
        """``x (B, T, d)`` → ``h (B, T, d)``."""
        states, _ = self.gru(x)
        return x + self.linear(self.relu(states))


class FeatureFusion(nn.Module):
    """§3.4, Fig. 4: ``F_i = a_h h_i + a_f f'_i`` with ``(a_h, a_f)`` = softmax of a shared FC.

    ``F_1 = h_1``, since no forecast of frame 1 exists.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        # Shared by both inputs: one score per input feature. No bias: the softmax over the two
        # scores cancels a bias they share, so it could never learn.
        self.score = nn.Linear(dim, 1, bias=False)

    def forward(self, latent: Tensor, forecast: Tensor) -> Tensor:
        """``latent h (B, T, d)``, ``forecast f' (B, T-1, d)`` of frames 2..T → ``F (B, T, d)``."""
        later = latent[:, 1:]
        scores = torch.cat([self.score(later), self.score(forecast)], dim=-1)  # (B, T-1, 2)
        weights = scores.softmax(dim=-1)
        fused = weights[..., :1] * later + weights[..., 1:] * forecast
        return torch.cat([latent[:, :1], fused], dim=1)


class SPSNet(nn.Module):
    """SPS-Net (§3) built from :class:`SPSNetConfig`; see the module docstring for its readings.

    ``encoder`` is E (None with ``encoder: features``); ``temporal`` is A, the GRU or None;
    ``forecaster`` is F and ``fusion`` the fusion (both None without F); ``pose_regressor`` is
    R_pose and R_camera (per frame); ``shape_regressor`` is R_shape (per video).
    """

    def __init__(self, config: SPSNetConfig) -> None:
        super().__init__()
        dim = config.feature_dim
        self.encoder: ResNet50 | LandmarkEncoder | None = None
        self.frozen_encoder = False
        if config.encoder == "landmarks":
            self.encoder = LandmarkEncoder(
                config.landmark_hidden, dim, config.landmark_blocks, config.dropout,
                world=config.landmark_world,
            )  # fmt: skip
        elif config.encoder == "resnet50":
            if dim != FEATURE_DIM:
                raise ValueError(f"ResNet-50 gives {FEATURE_DIM}-d features, not feature_dim={dim}")
            self.encoder = ResNet50()
            self.frozen_encoder = config.freeze_encoder
            self.encoder.requires_grad_(not config.freeze_encoder)
        self.temporal: SelfAttention | TemporalGRU | None = None
        if config.temporal == "attention":
            self.temporal = SelfAttention(dim, config.attention_hidden)
        elif config.temporal == "gru":
            self.temporal = TemporalGRU(dim, config.gru_hidden, config.gru_layers)
        self.forecaster: nn.Sequential | None = None
        self.fusion: FeatureFusion | None = None
        if config.forecasting:
            self.forecaster = two_layer_mlp(dim, config.forecast_hidden, dim)
            self.fusion = FeatureFusion(dim)
        self.pose_regressor = HMRRegressor(
            dim, config.regressor_hidden, config.regressor_iterations, config.dropout
        )
        self.shape_regressor = HMRRegressor(
            dim, config.regressor_hidden, config.regressor_iterations, config.dropout
        )
        if self.frozen_encoder:
            self.train()  # puts the frozen encoder in eval mode from the start

    def train(self, mode: bool = True) -> Self:
        """As ``nn.Module.train``, but a frozen encoder stays in eval mode (fixed BN statistics)."""
        super().train(mode)
        if self.encoder is not None and self.frozen_encoder:
            self.encoder.eval()
        return self

    def encode(self, frames: Tensor) -> Tensor:
        """E: ``frames (B, T, 3, H, W)`` (or landmarks ``(B, T, 33, 6)``) → ``f (B, T, d)``; no
        autograd graph when frozen."""
        if self.encoder is None:
            raise ValueError("this SPS-Net has no image encoder (encoder: features): pass features")
        b, t = frames.shape[:2]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen_encoder):
            features = self.encoder(frames.flatten(0, 1))
        return features.reshape(b, t, -1)

    def forward(
        self, frames: Tensor | None = None, features: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Estimate SMPL per frame from ``frames (B, T, 3, 224, 224)`` (or, with the landmark
        encoder, landmarks ``(B, T, 33, 6)``) or ``features (B, T, d)``.

        Returns ``rotmat (B, T, 24, 3, 3)``, ``pose6d (B, T, 144)``, ``pose (B, T, 72)``
        (axis-angle θ), ``betas (B, T, 10)`` (the video's one β repeated), ``cam (B, T, 3)`` (this
        is R_camera(F_i) of Eq. 6 and 8), ``features`` f ``(B, T, d)``, ``fused`` F ``(B, T, d)``;
        with F, ``forecast (B, T-1, d)``: f'_{i+1} = F(f_i) for frames 2..T (Eq. 3's targets are
        ``features[:, 1:]``); with A, ``attention (B, T, T)``.
        """
        if frames is not None and features is not None:
            raise ValueError("pass frames or features, not both")
        if frames is not None:
            f = self.encode(frames)
        elif features is not None:
            f = features
        else:
            raise ValueError("pass frames or features")
        b, t, d = f.shape
        out: dict[str, Tensor] = {"features": f}

        latent = f
        if isinstance(self.temporal, SelfAttention):
            latent, out["attention"] = self.temporal(f)
        elif isinstance(self.temporal, TemporalGRU):
            latent = self.temporal(f)

        fused = latent
        if self.forecaster is not None and self.fusion is not None:
            out["forecast"] = self.forecaster(f[:, :-1])
            fused = self.fusion(latent, out["forecast"])
        out["fused"] = fused

        per_frame = self.pose_regressor(fused.reshape(b * t, d))
        # One β per video: R_shape reads the mean of all F_i. The mean treats every frame alike
        # and does not depend on T, and keeps HMR's regressor (and its weights) unchanged.
        per_video = self.shape_regressor(fused.mean(dim=1))
        out["rotmat"] = per_frame["rotmat"].reshape(b, t, NUM_JOINTS, 3, 3)
        out["pose6d"] = per_frame["pose6d"].reshape(b, t, -1)
        out["pose"] = rotmats_to_smpl_pose(per_frame["rotmat"]).reshape(b, t, -1)
        out["cam"] = per_frame["cam"].reshape(b, t, -1)
        out["betas"] = per_video["betas"][:, None].expand(b, t, -1)
        return out
