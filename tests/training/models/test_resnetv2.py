"""MAED's BiT-style ResNetV2: weight standardisation, TF SAME padding, GroupNorm, shapes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from training.models.resnetv2 import (
    GN_GROUPS,
    WS_EPS,
    Bottleneck,
    MaxPool2dSame,
    ResNetV2,
    StdConv2d,
    group_norm,
    pad_same,
    same_padding,
)


def test_standardised_weight_has_zero_mean_unit_population_std_per_output_channel() -> None:
    torch.manual_seed(0)
    conv = StdConv2d(8, 16, 3)
    with torch.no_grad():
        conv.weight.mul_(torch.linspace(0.5, 5.0, 16).view(16, 1, 1, 1)).add_(0.3)
    raw_std = conv.weight.std(dim=(1, 2, 3), correction=0)
    w = conv.standardized_weight()
    assert torch.allclose(w.mean(dim=(1, 2, 3)), torch.zeros(16), atol=1e-5)
    # population std (not Bessel's), so exactly 1 up to the eps added to the divisor
    std = w.std(dim=(1, 2, 3), correction=0)
    assert torch.allclose(std, raw_std / (raw_std + WS_EPS), atol=1e-6)
    assert torch.allclose(std, torch.ones(16), atol=1e-3)
    assert conv.bias is None


def test_std_conv_is_a_plain_conv_with_the_standardised_kernel_on_same_padded_input() -> None:
    torch.manual_seed(0)
    conv = StdConv2d(3, 4, 7, stride=2)
    x = torch.randn(2, 3, 10, 9)
    # H = 10: total pad (5-1)·2 + 7 - 10 = 5 → 2 top, 3 bottom; W = 9: 6 → 3, 3.
    expected = F.conv2d(F.pad(x, [3, 3, 2, 3]), conv.standardized_weight(), stride=2)
    assert torch.allclose(conv(x), expected, atol=1e-6)


@pytest.mark.parametrize("size", [5, 6, 7, 8, 14, 56, 224])
@pytest.mark.parametrize(("kernel", "stride"), [(1, 1), (1, 2), (3, 1), (3, 2), (7, 2)])
def test_same_padding_gives_ceil_of_size_over_stride(size: int, kernel: int, stride: int) -> None:
    conv = StdConv2d(1, 1, kernel, stride=stride)
    out = conv(torch.randn(1, 1, size, size + 1))
    assert out.shape[-2:] == (math.ceil(size / stride), math.ceil((size + 1) / stride))


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "before", "after"),
    [
        (8, 3, 2, 0, 1),  # even size, stride 2: one pixel, bottom/right only
        (7, 3, 2, 1, 1),  # odd size: symmetric
        (224, 7, 2, 2, 3),  # the stem: odd total, the extra pixel at the end
        (112, 3, 2, 0, 1),  # the stem's max-pool
        (8, 3, 1, 1, 1),
    ],
)
def test_same_padding_is_asymmetric_with_the_odd_pixel_last(
    size: int, kernel: int, stride: int, before: int, after: int
) -> None:
    assert same_padding(size, kernel, stride) == before + after
    padded = pad_same(torch.ones(1, 1, size, size), kernel, stride)
    rows = padded[0, 0, :, before]  # a column inside the original image
    assert rows[:before].eq(0).all()
    assert rows[before : before + size].eq(1).all()
    assert rows[before + size :].eq(0).all()
    assert padded.shape[-1] == size + before + after


def test_max_pool_pads_with_minus_infinity() -> None:
    x = -1.0 - torch.rand(1, 2, 8, 8)  # all negative: zero padding would win at the border
    out = MaxPool2dSame(3, 2)(x)
    assert out.shape[-2:] == (4, 4)
    assert (out < 0).all()
    assert out[0, 0, -1, -1] == x[0, 0, -2:, -2:].max()


def test_group_norm_uses_32_groups_or_a_divisor_for_narrow_layers() -> None:
    assert group_norm(256).num_groups == GN_GROUPS
    assert group_norm(16).num_groups == 16
    assert group_norm(48).num_groups == 16
    assert group_norm(64).eps == 1e-5


def test_published_layout_gives_a_14x14_map_of_1024_channels_at_stride_16() -> None:
    backbone = ResNetV2((3, 4, 9), 64).eval()
    assert backbone.out_channels == 1024
    assert backbone.stride == 16
    bottlenecks = [m for m in backbone.modules() if isinstance(m, Bottleneck)]
    assert len(bottlenecks) == 3 + 4 + 9
    projecting = [i for i, block in enumerate(bottlenecks) if block.downsample is not None]
    assert projecting == [0, 3, 7]  # the first block of each stage
    assert bottlenecks[3].conv2.stride == (2, 2)  # the stride sits on the 3×3
    assert bottlenecks[3].conv1.stride == (1, 1)
    assert bottlenecks[0].conv2.stride == (1, 1)  # the first stage keeps the stem's stride
    with torch.no_grad():
        out = backbone(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 1024, 14, 14)


def test_bottleneck_output_is_relu_of_last_norm_plus_shortcut() -> None:
    torch.manual_seed(0)
    block = next(m for m in ResNetV2((1,), 16).modules() if isinstance(m, Bottleneck)).eval()
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        h = F.relu(block.norm1(block.conv1(x)))
        h = F.relu(block.norm2(block.conv2(h)))
        assert block.downsample is not None
        expected = F.relu(block.norm3(block.conv3(h)) + block.downsample(x))
        assert torch.allclose(block(x), expected)


def test_tiny_backbone_shapes() -> None:
    backbone = ResNetV2((1, 1, 1), 16)
    out = backbone(torch.randn(3, 3, 64, 64))
    assert out.shape == (3, 256, 4, 4)
    out = backbone(torch.randn(1, 3, 50, 61))  # sizes that are not multiples of 16
    assert out.shape == (1, 256, math.ceil(50 / 16), math.ceil(61 / 16))
