"""ResNet-50 encoder: SPIN's/torchvision's state-dict layout (without ``fc``) and its feature."""

from __future__ import annotations

import torch

from training.models.resnet import ResNet50

FEATURE = 2048
# torchvision's resnet50 has 25,557,032 parameters, of which fc holds 2048 × 1000 + 1000.
PARAMETERS_WITHOUT_FC = 25_557_032 - (2048 * 1000 + 1000)
BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _bn(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {f"{prefix}.{k}": (channels,) for k in BN_KEYS}
    shapes[f"{prefix}.num_batches_tracked"] = ()
    return shapes


def expected_layout() -> dict[str, tuple[int, ...]]:
    """ResNet-50 as published (He et al. 2016, Table 1) with torchvision's module names."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64)}
    in_channels = 64
    for stage, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512), strict=True)):
        for block in range(blocks):
            p = f"layer{stage + 1}.{block}"
            shapes[f"{p}.conv1.weight"] = (width, in_channels, 1, 1)
            shapes |= _bn(f"{p}.bn1", width)
            shapes[f"{p}.conv2.weight"] = (width, width, 3, 3)
            shapes |= _bn(f"{p}.bn2", width)
            shapes[f"{p}.conv3.weight"] = (4 * width, width, 1, 1)
            shapes |= _bn(f"{p}.bn3", 4 * width)
            if block == 0:
                shapes[f"{p}.downsample.0.weight"] = (4 * width, in_channels, 1, 1)
                shapes |= _bn(f"{p}.downsample.1", 4 * width)
            in_channels = 4 * width
    return shapes


def test_state_dict_matches_torchvision_layout_without_fc() -> None:
    state = ResNet50().state_dict()
    expected = expected_layout()
    assert list(state) == list(expected)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert len(state) == 318  # torchvision's 320 keys less fc.weight and fc.bias


def test_parameter_count() -> None:
    assert sum(p.numel() for p in ResNet50().parameters()) == PARAMETERS_WITHOUT_FC


def test_feature_is_pooled_2048() -> None:
    model = ResNet50().eval()
    with torch.no_grad():
        # Global pooling takes any size; a small image keeps the test fast.
        feature = model(torch.randn(2, 3, 64, 64))
    assert feature.shape == (2, FEATURE)
    assert torch.isfinite(feature).all()
    assert (feature >= 0).all()  # the mean of ReLU outputs
