"""Recipes: YAML files beside this module, validated by :mod:`training.recipes.schema`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshcast.config_files import read_yaml_mapping, validate_model
from training.recipes.schema import (
    DataConfig,
    LandmarkDataConfig,
    LandmarkNoise,
    LossWeights,
    MAEDConfig,
    ModelConfig,
    Recipe,
    ReportedFigures,
    SPSNetConfig,
    TrainingConfig,
)

RECIPES_DIR = Path(__file__).parent

__all__ = [
    "RECIPES_DIR",
    "DataConfig",
    "LandmarkDataConfig",
    "LandmarkNoise",
    "LossWeights",
    "MAEDConfig",
    "ModelConfig",
    "Recipe",
    "ReportedFigures",
    "SPSNetConfig",
    "TrainingConfig",
    "list_recipes",
    "load_recipe",
]


def list_recipes() -> list[str]:
    """Names of the built-in recipes."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Load a built-in recipe by name (e.g. "spsnet_paper") or a recipe file by path.

    A recipe may name another in ``extends``: it then holds only what differs (an ablation is
    its base recipe with one switch changed), merged key by key over the base; only the
    figures the paper ``reported`` are never inherited.
    """
    return validate_model(Recipe, _read_recipe(name_or_path), source=str(name_or_path))


def _read_recipe(name_or_path: str | Path) -> dict[str, Any]:
    path = Path(name_or_path)
    if not path.suffix:
        path = RECIPES_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise LookupError(
                f"unknown recipe {name_or_path!r}; built-in: {', '.join(list_recipes())}"
            )
    fields = read_yaml_mapping(path)
    base = fields.pop("extends", None)
    if not base:
        return fields
    inherited = _read_recipe(base)
    inherited.pop("reported", None)  # a paper's figures belong to one configuration
    return deep_merged(inherited, fields)


def deep_merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` laid over it, mappings merged key by key (as a recipe extends
    another, and as Helm lays values files over each other); a mapping that names another
    ``kind`` than the one it replaces (another kind of data) replaces it whole."""
    merged = dict(base)
    for key, value in changes.items():
        if (
            isinstance(value, dict)
            and isinstance(merged.get(key), dict)
            and value.get("kind", merged[key].get("kind")) == merged[key].get("kind")
        ):
            merged[key] = deep_merged(merged[key], value)
        else:
            merged[key] = value
    return merged
