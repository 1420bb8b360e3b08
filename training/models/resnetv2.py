"""BiT-style ResNetV2 without pre-activation: MAED's hybrid CNN backbone (MAED §3.2, §4.2).

MAED follows ViT's hybrid model (Dosovitskiy et al. 2021): a ResNet-50 whose convolutions are
weight-standardised (Qiao et al. 2019) and followed by GroupNorm instead of BatchNorm, cut
after its third stage and without global pooling, so a 224×224 crop becomes a 14×14 map
(stride 16) of ``4·width·2^(stages−1)`` channels: 1024 for the published (3, 4, 9) layout.

Every convolution and the stem's max-pool pad TensorFlow's "SAME" way (the published
weights were trained in JAX): the output has ``ceil(in/stride)`` pixels and the padding is
split with the odd pixel on the bottom/right, which PyTorch's symmetric padding cannot do.

Module names follow the published state dict (``stem.conv``, ``stages.i.blocks.j.conv1`` …),
so its keys load without renaming.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# GroupNorm of 32 groups (Wu & He 2018), as BiT and the published weights use; a narrower
# test network uses the largest group count that divides its channels (see `group_norm`).
GN_GROUPS = 32
GN_EPS = 1e-5
# Added to the weights' per-output-channel std before dividing, as in the published model.
WS_EPS = 1e-5
STEM_KERNEL = 7
STEM_STRIDE = 2
POOL_KERNEL = 3
POOL_STRIDE = 2
# Bottleneck: 1×1 reduces to `mid` channels, 3×3 at `mid`, 1×1 expands by this factor.
BOTTLENECK_EXPANSION = 4
# Every stage after the first halves the resolution (stride on its first block's 3×3).
STAGE_STRIDE = 2


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """Total padding TF's SAME needs along one axis so the output has ``ceil(size/stride)``."""
    out = math.ceil(size / stride)
    return max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)


def pad_same(x: Tensor, kernel: int, stride: int, dilation: int = 1, value: float = 0.0) -> Tensor:
    """Pad ``x (N, C, H, W)`` for a SAME convolution/pooling; the odd pixel goes bottom/right."""
    pad_h = same_padding(x.shape[-2], kernel, stride, dilation)
    pad_w = same_padding(x.shape[-1], kernel, stride, dilation)
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2], value=value)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm of ``GN_GROUPS`` groups, or of ``gcd(GN_GROUPS, channels)`` for narrow layers."""
    return nn.GroupNorm(math.gcd(GN_GROUPS, channels), channels, eps=GN_EPS)


class StdConv2d(nn.Conv2d):
    """Bias-free conv with per-output-channel weight standardisation and TF SAME padding.

    The kernel ``(O, I, k, k)`` is used as ``(w − mean_o)/(std_o + WS_EPS)`` with the
    population std over ``(I, k, k)``; the stored parameter stays unstandardised.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, bias=False)

    def standardized_weight(self) -> Tensor:
        """The kernel actually convolved with, ``(O, I, k, k)``."""
        std, mean = torch.std_mean(self.weight, dim=(1, 2, 3), keepdim=True, correction=0)
        return (self.weight - mean) / (std + WS_EPS)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, I, H, W)`` → ``(N, O, ceil(H/s), ceil(W/s))``."""
        x = pad_same(x, self.kernel_size[0], self.stride[0])
        return F.conv2d(x, self.standardized_weight(), None, self.stride)


class MaxPool2dSame(nn.Module):
    """Max-pool with TF SAME padding; pads with −∞ so padding never wins the max."""

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` → ``(N, C, ceil(H/s), ceil(W/s))``."""
        x = pad_same(x, self.kernel_size, self.stride, value=-math.inf)
        return F.max_pool2d(x, self.kernel_size, self.stride)


class Stem(nn.Module):
    """7×7/2 StdConv → GroupNorm → ReLU → 3×3/2 max-pool: stride 4."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.conv = StdConv2d(in_channels, width, STEM_KERNEL, stride=STEM_STRIDE)
        self.norm = group_norm(width)
        self.pool = MaxPool2dSame(POOL_KERNEL, POOL_STRIDE)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` → ``(N, width, ⌈H/4⌉, ⌈W/4⌉)``."""
        return self.pool(F.relu(self.norm(self.conv(x))))


class Downsample(nn.Module):
    """Projection shortcut of a stage's first block: strided 1×1 StdConv → GroupNorm (no ReLU)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = StdConv2d(in_channels, out_channels, 1, stride=stride)
        self.norm = group_norm(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, I, H, W)`` → ``(N, O, ⌈H/s⌉, ⌈W/s⌉)``."""
        return self.norm(self.conv(x))


class Bottleneck(nn.Module):
    """Post-activation bottleneck (ResNet v1.5 layout: the stride sits on the 3×3).

    ``relu(norm3(conv3(relu(norm2(conv2(relu(norm1(conv1(x)))))))) + shortcut(x))``: the last
    GroupNorm is added to the shortcut before the ReLU.
    """

    def __init__(self, in_channels: int, mid_channels: int, stride: int, project: bool) -> None:
        super().__init__()
        out_channels = mid_channels * BOTTLENECK_EXPANSION
        self.downsample = Downsample(in_channels, out_channels, stride) if project else None
        self.conv1 = StdConv2d(in_channels, mid_channels, 1)
        self.norm1 = group_norm(mid_channels)
        self.conv2 = StdConv2d(mid_channels, mid_channels, 3, stride=stride)
        self.norm2 = group_norm(mid_channels)
        self.conv3 = StdConv2d(mid_channels, out_channels, 1)
        self.norm3 = group_norm(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, I, H, W)`` → ``(N, 4·mid, ⌈H/s⌉, ⌈W/s⌉)``."""
        shortcut = x if self.downsample is None else self.downsample(x)
        x = F.relu(self.norm1(self.conv1(x)))
        x = F.relu(self.norm2(self.conv2(x)))
        x = self.norm3(self.conv3(x))
        return F.relu(x + shortcut)


class Stage(nn.Module):
    """``depth`` bottlenecks; the first projects the shortcut and carries the stride."""

    def __init__(self, in_channels: int, mid_channels: int, depth: int, stride: int) -> None:
        super().__init__()
        out_channels = mid_channels * BOTTLENECK_EXPANSION
        self.blocks = nn.Sequential(
            *(
                Bottleneck(
                    in_channels if i == 0 else out_channels,
                    mid_channels,
                    stride if i == 0 else 1,
                    project=i == 0,
                )
                for i in range(depth)
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        """``(N, I, H, W)`` → ``(N, 4·mid, ⌈H/s⌉, ⌈W/s⌉)``."""
        return self.blocks(x)


class ResNetV2(nn.Module):
    """Stem + stages of bottlenecks; a feature map, no pooling and no head.

    Stage ``i`` has ``width·2^i`` bottleneck channels and ``4·width·2^i`` output channels;
    the first stage keeps the stem's resolution, every later one halves it.

    Args:
        layers: bottlenecks per stage; (3, 4, 9) as published (stride 16).
        width: stem channels (64 for ResNet-50).
        in_channels: image channels.
    """

    def __init__(self, layers: Sequence[int], width: int, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = Stem(in_channels, width)
        stages = []
        channels = width
        for i, depth in enumerate(layers):
            mid = width * STAGE_STRIDE**i
            stages.append(Stage(channels, mid, depth, stride=1 if i == 0 else STAGE_STRIDE))
            channels = mid * BOTTLENECK_EXPANSION
        self.stages = nn.Sequential(*stages)
        self.out_channels = channels
        self.stride = STEM_STRIDE * POOL_STRIDE * STAGE_STRIDE ** (len(layers) - 1)
        for module in self.modules():
            if isinstance(module, StdConv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        """Images ``(N, 3, H, W)`` → feature map ``(N, out_channels, ⌈H/stride⌉, ⌈W/stride⌉)``."""
        return self.stages(self.stem(x))
