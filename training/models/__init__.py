"""Networks of SPS-Net and MAED, built from a recipe's model config."""

from __future__ import annotations

from torch import nn

from training.recipes import MAEDConfig, ModelConfig, Recipe, SPSNetConfig


def build_model(recipe: Recipe | ModelConfig) -> nn.Module:
    """The network a recipe (or its ``model`` config) describes: SPS-Net or MAED."""
    config = recipe.model if isinstance(recipe, Recipe) else recipe
    if isinstance(config, SPSNetConfig):
        from training.models.spsnet import SPSNet

        return SPSNet(config)
    if isinstance(config, MAEDConfig):
        from training.models.maed import MAED

        return MAED(config)
    raise TypeError(f"no network for a {type(config).__name__}")
