"""MAED's Spatial-Temporal Encoder (STE, MAED §3.2–3.3, Fig. 2–3, Table 2).

A clip ``(B, T, 3, H, W)`` goes through the hybrid patch embedding (ResNetV2 feature map →
1×1 conv to ``d`` → ``hw`` tokens), a cls token is prepended (``N = hw + 1`` tokens a frame),
the spatial positional encoding ``E^S_pos (1, N, d)`` and then the temporal one
``E^T_pos (T, 1, d)`` are added, and ``depth`` STE blocks follow. The final LayerNorm's cls
token through Linear + Tanh (``pre_logits``) is the per-frame feature ``x ∈ R^d`` that the
decoder reads (§3.4, Eq. 4).

Tokens live as ``(B·T, N, d)`` with the frames of one clip on consecutive rows ``b·T + t``.
One qkv projection serves all attention variants of a block (as in the published model):

- MSA-S: each frame's ``N`` tokens attend to each other (heatmap ``T×N×N``);
- MSA-T: each token position attends across the ``T`` frames (heatmap ``N×T×T``);
- MSA-C: all ``T·N`` tokens of a clip attend to each other.

Blocks (``MAEDConfig.block``): "parallel" (MSA-S and MSA-T side by side, merged by attentive
addition, or by their plain mean for STE_parallelV1), "series" (MSA-S, then MSA-T on its
output through the same qkv), "coupling" (MSA-C) and "spatial" (MSA-S only: Table 2's SE,
which has no temporal encoding). For a single image (``T = 1``) MSA-T is bypassed (§3.3):
neither the temporal encoding nor MSA-T nor the attentive weights are used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.models.landmark_input import LandmarkTokens
from training.models.resnetv2 import ResNetV2
from training.recipes.schema import MAEDConfig

LN_EPS = 1e-6
# Truncated-normal std of the embeddings and linear weights at initialisation (ViT's).
INIT_STD = 0.02
QKV = 3  # query, key, value


class DropPath(nn.Module):
    """Stochastic depth: drops a sample's whole residual branch with probability ``p``."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """``(N, ...)`` → same shape; identity in eval mode or when ``p = 0``."""
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Module):
    """Transformer MLP: Linear → GELU → dropout → Linear → dropout."""

    def __init__(self, dim: int, hidden: int, drop: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., dim)`` → ``(..., dim)``."""
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class STAttention(nn.Module):
    """MSA-S / MSA-T / MSA-C of one STE block, sharing one qkv projection (MAED §3.3).

    Args:
        dim: token width ``C``.
        num_heads: heads; ``C`` splits as ``(heads, C/heads)``.
        block: "parallel", "series", "coupling" or "spatial" (see the module docstring).
        attentive_addition: for "parallel", merge by attentive weights (V2) or plain mean (V1).
        qkv_bias, attn_drop, proj_drop: as in ViT.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        block: str,
        attentive_addition: bool,
        qkv_bias: bool,
        attn_drop: float,
        proj_drop: float,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.block = block
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, QKV * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        # Attentive addition (Fig. 3a): from the token-mean of both branches of a frame, a
        # Linear(2C → 2C) whose output is read as C pairs (spatial, temporal), each pair
        # softmax-normalised into α^S_c, α^T_c ∈ R^{T×1×d}.
        self.ts_attn = (
            nn.Linear(2 * dim, 2 * dim) if block == "parallel" and attentive_addition else None
        )

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(BT, N, C)`` → q, k, v each ``(BT, heads, N, C/heads)``; qkv splits (3, heads, c)."""
        bt, n, c = x.shape
        qkv = self.qkv(x).reshape(bt, n, QKV, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, v

    def _attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """softmax(q kᵀ · head_dim^-0.5) v over the second-to-last axis, any batch axes.

        The fused kernel's default scale is head_dim^-0.5, the published one; it equals the
        written-out product to float precision (tests/training/models/test_ste.py).
        """
        drop = self.attn_drop if self.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, dropout_p=drop)

    @staticmethod
    def _merge_heads(x: Tensor) -> Tensor:
        """``(BT, heads, N, c)`` → ``(BT, N, heads·c)``."""
        bt, h, n, c = x.shape
        return x.transpose(1, 2).reshape(bt, n, h * c)

    def _spatial(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """MSA-S: attention among the N tokens of each frame. ``(BT, h, N, c)`` → ``(BT, N, C)``."""
        return self._merge_heads(self._attend(q, k, v))

    def _temporal(self, q: Tensor, k: Tensor, v: Tensor, frames: int) -> Tensor:
        """MSA-T: each token position attends across the clip's frames → ``(BT, N, C)``."""
        bt, h, n, c = q.shape

        # Heads and positions share one batch axis: attention is 4-D, which the ONNX exporter
        # needs (it translates no other scaled_dot_product_attention).
        def by_position(x: Tensor) -> Tensor:  # (B·T, h, N, c) → (B, h·N, T, c)
            return x.reshape(bt // frames, frames, h, n, c).permute(0, 2, 3, 1, 4).flatten(1, 2)

        x = self._attend(by_position(q), by_position(k), by_position(v)).unflatten(1, (h, n))
        return x.permute(0, 3, 2, 1, 4).reshape(bt, n, h * c)  # (B, h, N, T, c) → (B·T, N, C)

    def _coupling(self, q: Tensor, k: Tensor, v: Tensor, frames: int) -> Tensor:
        """MSA-C: all T·N tokens of a clip attend to each other → ``(BT, N, C)``."""
        bt, h, n, c = q.shape

        def flatten(x: Tensor) -> Tensor:  # (B·T, h, N, c) → (B, h, T·N, c)
            return (
                x.reshape(bt // frames, frames, h, n, c)
                .transpose(1, 2)
                .reshape(-1, h, frames * n, c)
            )

        x = self._attend(flatten(q), flatten(k), flatten(v))
        x = x.reshape(bt // frames, h, frames, n, c).transpose(1, 2).reshape(bt, h, n, c)
        return self._merge_heads(x)

    def _parallel(self, x_s: Tensor, x_t: Tensor) -> Tensor:
        """Merge MSA-S and MSA-T outputs ``(BT, N, C)``: attentive addition or plain mean."""
        if self.ts_attn is None:
            return (x_s + x_t) / 2
        bt, _, c = x_s.shape
        pooled = torch.cat([x_s, x_t], dim=-1).mean(dim=1, keepdim=True)  # (BT, 1, 2C)
        alpha = self.ts_attn(pooled).reshape(bt, 1, c, 2).softmax(dim=-1)
        return x_s * alpha[..., 0] + x_t * alpha[..., 1]

    def forward(self, x: Tensor, frames: int) -> Tensor:
        """Tokens ``(B·T, N, C)`` of clips of ``frames`` frames → ``(B·T, N, C)``."""
        q, k, v = self._heads(x)
        if self.block == "coupling":
            out = self._coupling(q, k, v, frames)
        else:
            out = self._spatial(q, k, v)
            if frames > 1 and self.block == "parallel":
                out = self._parallel(out, self._temporal(q, k, v, frames))
            elif frames > 1 and self.block == "series":
                out = self._temporal(*self._heads(out), frames)
        return self.proj_drop(self.proj(out))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, config: MAEDConfig, drop_path: float) -> None:
        super().__init__()
        dim = config.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = STAttention(
            dim,
            config.num_heads,
            config.block,
            config.attentive_addition,
            config.qkv_bias,
            config.attn_drop_rate,
            config.drop_rate,
        )
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio), config.drop_rate)

    def forward(self, x: Tensor, frames: int) -> Tensor:
        """``(B·T, N, C)`` → ``(B·T, N, C)``."""
        x = x + self.drop_path(self.attn(self.norm1(x), frames))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class HybridEmbed(nn.Module):
    """ResNetV2 feature map → 1×1 conv to ``d`` → one token per feature-map cell."""

    def __init__(self, config: MAEDConfig) -> None:
        super().__init__()
        self.backbone = ResNetV2(config.backbone_layers, config.backbone_width)
        self.proj = nn.Conv2d(self.backbone.out_channels, config.embed_dim, kernel_size=1)
        side = -(-config.image_size // self.backbone.stride)  # ceil: SAME padding throughout
        self.num_patches = side * side

    def forward(self, images: Tensor) -> Tensor:
        """``(N, 3, H, W)`` → ``(N, hw, d)``."""
        return self.proj(self.backbone(images)).flatten(2).transpose(1, 2)


class SpatialTemporalEncoder(nn.Module):
    """Clip ``(B, T, 3, H, W)`` → per-frame feature ``(B, T, d)`` (MAED §3.2–3.3)."""

    def __init__(self, config: MAEDConfig) -> None:
        super().__init__()
        dim = config.embed_dim
        self.num_frames = config.num_frames
        self.patch_embed: HybridEmbed | LandmarkTokens = (
            HybridEmbed(config) if config.tokens == "patches" else LandmarkTokens(dim)
        )
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, dim))
        # SE (MSA-S only) has no temporal reasoning, hence no temporal encoding either.
        self.temp_embed = (
            nn.Parameter(torch.zeros(1, config.num_frames, 1, dim))
            if config.block != "spatial"
            else None
        )
        self.pos_drop = nn.Dropout(config.drop_rate)
        # Stochastic depth grows linearly with depth, from 0 to drop_path_rate.
        rates = torch.linspace(0.0, config.drop_path_rate, config.depth).tolist()
        self.blocks = nn.ModuleList(Block(config, rate) for rate in rates)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.pre_logits = nn.Sequential()
        self.pre_logits.add_module("fc", nn.Linear(dim, dim))
        self.pre_logits.add_module("act", nn.Tanh())
        self._init_weights()

    def _init_weights(self) -> None:
        """ViT's initialisation for the transformer part; the backbone keeps its own."""
        for p in (self.cls_token, self.pos_embed, self.temp_embed):
            if p is not None:
                nn.init.trunc_normal_(p, std=INIT_STD)
        for module in [*self.blocks.modules(), *self.pre_logits.modules()]:
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=INIT_STD)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, frames: Tensor) -> Tensor:
        """Clip ``(B, T, 3, H, W)`` → feature of each frame ``(B, T, d)``, T ≤ num_frames."""
        return self.encode_tokens(self.embed(frames))

    def embed(self, frames: Tensor) -> Tensor:
        """The per-frame part: clip ``(B, T, 3, H, W)`` → patch tokens ``(B, T, hw, d)``
        (with landmark tokens: ``(B, T, 33, 6)`` → ``(B, T, 33, d)``)."""
        b, t = frames.shape[:2]
        return self.patch_embed(frames.flatten(0, 1)).unflatten(0, (b, t))

    def encode_tokens(self, tokens: Tensor) -> Tensor:
        """The part across frames: patch tokens ``(B, T, hw, d)`` → features ``(B, T, d)``.

        The cls token and the spatial and temporal encodings are added, the STE blocks run, and
        the final norm's cls token goes through ``pre_logits``.
        """
        b, t = tokens.shape[:2]
        if t > self.num_frames:
            raise ValueError(f"clip of {t} frames, but the temporal encoding has {self.num_frames}")
        x = tokens.flatten(0, 1)  # (B·T, hw, d)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        if t > 1 and self.temp_embed is not None:
            n, d = x.shape[1:]
            x = (x.reshape(b, t, n, d) + self.temp_embed[:, :t]).reshape(b * t, n, d)
        x = self.pos_drop(x)
        for block in self.blocks:
            x = block(x, t)
        cls = self.norm(x)[:, 0]  # final LayerNorm before the cls token is taken
        return self.pre_logits(cls).reshape(b, t, -1)
