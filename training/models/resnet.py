"""ResNet-50 (He et al. 2016) as the image encoder E of HMR, SPIN and SPS-Net.

The module names are torchvision's and SPIN's (``conv1``, ``bn1``, ``layer1`` … ``layer4``,
bottlenecks of ``conv1/bn1/conv2/bn2/conv3/bn3`` with a ``downsample`` of conv + BN), so the
encoder half of a SPIN/HMR checkpoint loads by name. There is no classifier: the output is the
globally average-pooled 2048-d feature. The stride of a stage sits on the 3×3 convolution
(torchvision's "ResNet v1.5", as in SPIN).
"""

from __future__ import annotations

from torch import Tensor, nn

EXPANSION = 4  # a bottleneck's output has 4× the channels of its 3×3 convolution
STEM_WIDTH = 64
STEM_KERNEL = 7
STEM_STRIDE = 2
POOL_KERNEL = 3
POOL_STRIDE = 2
# ResNet-50: blocks per stage and the width of each stage's 3×3 convolution.
STAGE_BLOCKS = (3, 4, 6, 3)
STAGE_WIDTHS = (64, 128, 256, 512)
FEATURE_DIM = STAGE_WIDTHS[-1] * EXPANSION  # 2048


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 (carries the stride) → 1×1 expand, each with BN; ReLU after the sum."""

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = width * EXPANSION
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        # A projection shortcut only where the identity cannot be added (new size or stride).
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, H, W)`` → ``(N, 4·width, H/stride, W/stride)``."""
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + shortcut)


def _stage(in_channels: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    """One stage: the first bottleneck changes size (and stride), the others keep it."""
    layers = [Bottleneck(in_channels, width, stride)]
    layers += [Bottleneck(width * EXPANSION, width) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet50(nn.Module):
    """Images ``(N, 3, H, W)`` → globally average-pooled features ``(N, 2048)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(
            3, STEM_WIDTH, STEM_KERNEL, stride=STEM_STRIDE, padding=STEM_KERNEL // 2, bias=False
        )
        self.bn1 = nn.BatchNorm2d(STEM_WIDTH)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(POOL_KERNEL, stride=POOL_STRIDE, padding=POOL_KERNEL // 2)
        in_channels = STEM_WIDTH
        stages = []
        for index, (blocks, width) in enumerate(zip(STAGE_BLOCKS, STAGE_WIDTHS, strict=True)):
            # Every stage but the first halves the resolution (the stem's max-pool did it there).
            stages.append(_stage(in_channels, width, blocks, stride=1 if index == 0 else 2))
            in_channels = width * EXPANSION
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        # He initialisation for a network trained from scratch; a checkpoint overwrites it.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, images: Tensor) -> Tensor:
        """``images (N, 3, H, W)`` (normalised RGB, 224×224 in the papers) → ``(N, 2048)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)
