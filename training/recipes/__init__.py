"""Recipes: YAML files beside this module, validated by :mod:`training.recipes.schema`."""

from __future__ import annotations

from pathlib import Path

import yaml

from training.recipes.schema import (
    LossWeights,
    MAEDConfig,
    ModelConfig,
    Recipe,
    SPSNetConfig,
)

RECIPES_DIR = Path(__file__).parent

__all__ = [
    "RECIPES_DIR",
    "LossWeights",
    "MAEDConfig",
    "ModelConfig",
    "Recipe",
    "SPSNetConfig",
    "list_recipes",
    "load_recipe",
]


def list_recipes() -> list[str]:
    """Names of the built-in recipes."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Load a built-in recipe by name (e.g. "spsnet_paper") or a recipe file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = RECIPES_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise LookupError(
                f"unknown recipe {name_or_path!r}; built-in: {', '.join(list_recipes())}"
            )
    with path.open() as stream:
        return Recipe.model_validate(yaml.safe_load(stream))
