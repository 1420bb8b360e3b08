"""Seeded, untrained checkpoints of the tiny recipes, and bundles exported from them.

Parity and plumbing need no trained weights; these make the networks in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from export.bundle import export_bundle
from training.models import build_model
from training.recipes import load_recipe

TINY_RECIPES = Path(__file__).parent / "recipes"
# The service's tests' bundle: SPS-Net on tiny crops and short windows, exported in seconds.
SERVICE_BUNDLE_BASE = "spsnet_tiny_frames"
SERVICE_BUNDLE_CHANGES: dict[str, Any] = {
    "data": {"train": ["frames.pt"], "crop_size": 32, "crop_scale": 1.2},
    "training": {"clip_length": 8, "clip_stride": 4},
}


def tiny_checkpoint(folder: Path, name: str, base: str, changes: dict[str, Any]) -> Path:
    """A checkpoint ``folder/NAME.pt`` of the tiny recipe ``base`` with ``changes`` merged over
    it section by section, its network drawn with seed 0, as ``load_network`` reads it."""
    recipe_file = folder / f"{name}.yaml"
    recipe_file.write_text(
        yaml.safe_dump({"extends": str(TINY_RECIPES / f"{base}.yaml"), **changes})
    )
    recipe = load_recipe(recipe_file)
    torch.manual_seed(0)
    network = build_model(recipe)
    path = folder / f"{name}.pt"
    torch.save({"recipe": recipe.model_dump(mode="json"), "network": network.state_dict()}, path)
    return path


def tiny_bundle(folder: Path, name: str, base: str, changes: dict[str, Any]) -> Path:
    """:func:`tiny_checkpoint` exported with the stand-in body to ``folder/bundle``."""
    checkpoint = tiny_checkpoint(folder, name, base, changes)
    export_bundle(checkpoint, "standin", folder / "bundle")
    return folder / "bundle"


def service_bundle(folder: Path) -> Path:
    """The tiny SPS-Net bundle that the service's tests run (workers, gateway, end to end)."""
    return tiny_bundle(folder, "spsnet", SERVICE_BUNDLE_BASE, SERVICE_BUNDLE_CHANGES)
