"""Seeded, untrained checkpoints of the tiny recipes, and bundles exported from them.

Parity and plumbing need no trained weights; these make the networks in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from export.bundle import export_bundle
from service.bundle import Bundle, Sessions
from training.models import build_model
from training.models.spsnet import SPSNet
from training.recipes import Recipe, load_recipe

TINY_RECIPES = Path(__file__).parent / "recipes"
# The service's tests' bundle: SPS-Net on tiny crops and short windows, exported in seconds.
SERVICE_BUNDLE_BASE = "spsnet_tiny_frames"
SERVICE_BUNDLE_CHANGES: dict[str, Any] = {
    "data": {"train": ["frames.pt"], "crop_size": 32, "crop_scale": 1.2},
    "training": {"clip_length": 8, "clip_stride": 4},
}
# The keypoint families' test bundles: the built-in landmark recipes with tiny widths, SPS-Net
# on 8-frame windows (any length), MAED on 4 (its only one).
LANDMARK_BUNDLES: dict[str, tuple[str, dict[str, Any]]] = {
    "spsnet": (
        "spsnet_keypoints",
        {
            "model": {"landmark_hidden": 32, "feature_dim": 32, "attention_hidden": 32,
                      "forecast_hidden": 32, "regressor_hidden": 64, "dropout": 0.0},
            "training": {"clip_length": 8, "clip_stride": 4},
        },
    ),
    "maed": (
        "maed_keypoints",
        {
            "model": {"num_frames": 4, "embed_dim": 32, "depth": 2, "num_heads": 4,
                      "decoder_hidden": 64, "decoder_dropout": 0.0},
            "training": {"clip_length": 4, "clip_stride": 2},
        },
    ),
}  # fmt: skip


def tiny_checkpoint(folder: Path, name: str, base: str, changes: dict[str, Any]) -> Path:
    """A checkpoint ``folder/NAME.pt`` of the recipe ``base`` (a tiny one of
    ``tests/support/recipes``, else a built-in one) with ``changes`` merged over it section by
    section, its network drawn with seed 0, as ``load_network`` reads it."""
    tiny = TINY_RECIPES / f"{base}.yaml"
    recipe_file = folder / f"{name}.yaml"
    recipe_file.write_text(
        yaml.safe_dump({"extends": str(tiny) if tiny.is_file() else base, **changes})
    )
    recipe = load_recipe(recipe_file)
    torch.manual_seed(0)
    network = build_model(recipe)
    path = folder / f"{name}.pt"
    torch.save({"recipe": recipe.model_dump(mode="json"), "network": network.state_dict()}, path)
    return path


def tiny_bundle(
    folder: Path, name: str, base: str, changes: dict[str, Any], *, fp16: bool = False
) -> Path:
    """:func:`tiny_checkpoint` exported with the stand-in body to ``folder/bundle`` (with
    float16 variants when ``fp16``)."""
    checkpoint = tiny_checkpoint(folder, name, base, changes)
    export_bundle(checkpoint, "standin", folder / "bundle", fp16=fp16)
    return folder / "bundle"


def service_bundle(folder: Path) -> Path:
    """The tiny SPS-Net bundle that the service's tests run (workers, gateway, end to end)."""
    return tiny_bundle(folder, "spsnet", SERVICE_BUNDLE_BASE, SERVICE_BUNDLE_CHANGES)


def landmark_bundle(folder: Path, family: str = "spsnet", *, fp16: bool = False) -> Path:
    """A tiny keypoint-family bundle (no encoder: its temporal graph reads landmarks) of
    ``family``, "spsnet" or "maed" (:data:`LANDMARK_BUNDLES`)."""
    return tiny_bundle(folder, f"{family}_keypoints", *LANDMARK_BUNDLES[family], fp16=fp16)


@dataclass(frozen=True)
class Exported:
    """A bundle, its fp32 sessions on the CPU, and the network(s) it came from."""

    bundle: Bundle
    sessions: Sessions
    recipe: Recipe
    network: nn.Module
    encoder: SPSNet | None = None  # the network whose ResNet-50 a features-reading SPS-Net reads
