"""The keypoint families (SPS-Net and MAED on BlazePose landmarks): shapes, and a tiny
configuration of each fitting four exact synthetic clips through the real training loop
(data, losses, discriminator), with no cache written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.models import build_model
from training.models.landmark_input import LandmarkEncoder, LandmarkTokens
from training.recipes import load_recipe
from training.train.loop import train

RECIPES = Path(__file__).parents[2] / "support" / "recipes"
# The total loss after training, as a share of its first value: the networks must fit.
REQUIRED_DROP = 0.8


@pytest.mark.parametrize("name", ["spsnet_keypoints", "maed_keypoints"])
def test_a_keypoint_network_reads_landmarks_of_any_batch(name: str) -> None:
    recipe = load_recipe(RECIPES / f"{name}_tiny.yaml")
    network = build_model(recipe).eval()
    embedding = network.encoder if name.startswith("spsnet") else network.encoder.patch_embed
    assert isinstance(embedding, LandmarkEncoder | LandmarkTokens)
    with torch.no_grad():
        out = network(torch.randn(3, 4, 33, 6))
    assert out["rotmat"].shape == (3, 4, 24, 3, 3)
    assert out["betas"].shape == (3, 4, 10)
    assert out["cam"].shape == (3, 4, 3)


@pytest.mark.parametrize("name", ["spsnet_keypoints", "maed_keypoints"])
def test_a_tiny_keypoint_network_fits_a_few_clips(name: str, tmp_path: Path) -> None:
    recipe = load_recipe(RECIPES / f"{name}_tiny.yaml")
    first = train(recipe, tmp_path / "first", max_iterations=1, device="cpu")
    summary = train(recipe, tmp_path / "run", device="cpu")
    assert summary.losses["total"] < (1 - REQUIRED_DROP) * first.losses["total"]
    print(name, first.losses["total"], summary.losses["total"])
    assert summary.best_validation is not None


@pytest.mark.parametrize("world", [True, False])
def test_the_landmark_encoder_reads_the_metric_points_only_when_asked(world: bool) -> None:
    torch.manual_seed(0)
    encoder = LandmarkEncoder(hidden=32, dim=16, world=world).eval()
    landmarks = torch.randn(5, 33, 6)
    moved = landmarks.clone()
    moved[..., 3:] += 1.0  # other metric points, the same 2D and visibility
    with torch.no_grad():
        changed = not torch.allclose(encoder(landmarks), encoder(moved))
    assert changed == world
