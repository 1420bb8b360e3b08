"""Checkpoints of a training run: everything needed to continue it exactly.

A checkpoint holds the network, the discriminator, their optimisers and schedulers, the
gradient scaler, the epoch and iteration reached, the best validation figure, the recipe (as
its dict) and every random state the loop draws from (torch's CPU and CUDA generators, NumPy's,
Python's, and the occlusion generator of L_param). The data order needs no state of its own:
it is a function of the seed and the iteration (see :mod:`training.train.loop`).

``latest.pt`` is rewritten at the end of every epoch and when a run stops; ``best.pt`` when
the validation figure improves. Files are written to a temporary name and renamed, so a run
killed while saving leaves the previous checkpoint whole.
"""

from __future__ import annotations

import math
import os
import pickle
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from training.models import build_model
from training.recipes import Recipe

LATEST = "latest.pt"
BEST = "best.pt"


@dataclass
class TrainingState:
    """What a run changes as it trains. ``epoch``: epochs completed; ``iteration``: steps done;
    ``best_validation``: the lowest validation figure so far (``inf`` before the first)."""

    network: nn.Module
    optimizer: Optimizer
    scheduler: LRScheduler
    scaler: torch.amp.GradScaler
    occlusion_generator: torch.Generator
    discriminator: nn.Module | None = None
    discriminator_optimizer: Optimizer | None = None
    discriminator_scheduler: LRScheduler | None = None
    epoch: int = 0
    iteration: int = 0
    best_validation: float = math.inf


def _modules(state: TrainingState) -> dict[str, Any]:
    """Every stateful object of a run by its key in the file (None: this run has none)."""
    return {
        "network": state.network,
        "optimizer": state.optimizer,
        "scheduler": state.scheduler,
        "scaler": state.scaler,
        "discriminator": state.discriminator,
        "discriminator_optimizer": state.discriminator_optimizer,
        "discriminator_scheduler": state.discriminator_scheduler,
    }


def _random_states(state: TrainingState) -> dict[str, Any]:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        # NumPy's legacy global generator: the one data readers' augmentations may draw from.
        "numpy": np.random.get_state(),  # noqa: NPY002
        "python": random.getstate(),
        "occlusion": state.occlusion_generator.get_state(),
    }


def _restore_random_states(states: dict[str, Any], state: TrainingState) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    np.random.set_state(states["numpy"])  # noqa: NPY002
    random.setstate(states["python"])
    state.occlusion_generator.set_state(states["occlusion"])


def save_checkpoint(path: Path, state: TrainingState, recipe: Recipe) -> None:
    """Write ``state`` and ``recipe`` to ``path`` (atomically: temporary file, then rename)."""
    contents = {
        "recipe": recipe.model_dump(mode="json"),
        "epoch": state.epoch,
        "iteration": state.iteration,
        "best_validation": state.best_validation,
        "random": _random_states(state),
        **{
            key: None if module is None else module.state_dict()
            for key, module in _modules(state).items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(contents, partial)
    os.replace(partial, path)


def read_checkpoint(
    path: str | Path, *, mmap: bool = False, keys: tuple[str, ...] = ("recipe", "network")
) -> dict[str, Any]:
    """The contents of a checkpoint meshcast wrote (a training run's, or a network alone),
    which must hold ``keys``; ``mmap`` maps the tensors rather than reading them.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a PyTorch file, or not one of meshcast's checkpoints.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        # Checkpoints hold NumPy and Python random states besides tensors, which the
        # weights-only unpickler refuses; they are meshcast's own files.
        contents = torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, EOFError, UnicodeDecodeError):
        # PyTorch's own reasons ("Memo value not found at index 101") tell a user nothing
        raise ValueError(
            f"{path} is not a checkpoint PyTorch can read (cut short, damaged or another kind "
            "of file); checkpoints come from `meshcast train`, or `meshcast import` for the "
            "authors' files"
        ) from None
    if not isinstance(contents, dict) or not set(keys) <= contents.keys():
        raise ValueError(
            f"{path} is a PyTorch file but not a meshcast checkpoint (no {' and '.join(keys)}); "
            "`meshcast import` turns the authors' MAED, SPIN and VIBE checkpoints into ours"
        )
    return contents


def load_checkpoint(path: Path, state: TrainingState, recipe: Recipe) -> None:
    """Restore ``state`` in place from ``path``, random states included.

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        ValueError: the checkpoint was written for another recipe, or its objects (e.g. a
            discriminator) do not match this run's.
    """
    contents = read_checkpoint(path)
    if contents["recipe"] != recipe.model_dump(mode="json"):
        raise ValueError(f"{path} was written by another recipe than {recipe.name!r}")
    for key, module in _modules(state).items():
        saved = contents[key]
        if (module is None) != (saved is None):
            raise ValueError(f"{path}: '{key}' is in one of the checkpoint and this run only")
        if module is not None:
            module.load_state_dict(saved)
    state.epoch = contents["epoch"]
    state.iteration = contents["iteration"]
    state.best_validation = contents["best_validation"]
    _restore_random_states(contents["random"], state)


def run_is_finished(run_dir: Path, recipe: Recipe) -> bool:
    """Whether ``run_dir`` holds a run of ``recipe`` that reached the end of its schedule."""
    path = Path(run_dir) / LATEST
    if recipe.training is None or not path.is_file():
        return False
    # Memory-mapped: only the two small fields are read, not the weights.
    contents = read_checkpoint(path, mmap=True)
    schedule = recipe.training
    return (
        contents["recipe"] == recipe.model_dump(mode="json")
        and contents["iteration"] >= schedule.epochs * schedule.iterations_per_epoch
    )


def saved_recipe(path: Path) -> Recipe:
    """The recipe a checkpoint was trained with."""
    contents = read_checkpoint(path)
    return Recipe.model_validate(contents["recipe"])


def load_network(path: Path) -> tuple[Recipe, nn.Module]:
    """The recipe and the trained network of a checkpoint, ready for inference (eval mode)."""
    contents = read_checkpoint(path)
    recipe = Recipe.model_validate(contents["recipe"])
    network = build_model(recipe)
    network.load_state_dict(contents["network"])
    return recipe, network.eval()


def save_network_only(source: Path, target: Path) -> None:
    """Write checkpoint ``source``'s recipe, network weights and the step it reached, without
    optimisers, discriminator or random states: what a trained model ships as
    (:func:`load_network` reads it; a run cannot resume from it).

    Floating-point weights are stored in half precision, which halves what ships in the
    repository; :func:`load_network` reads them back into the network's float32 parameters
    (the evaluation in a shipped record is of the stored weights)."""
    contents = read_checkpoint(source)
    weights = {
        name: tensor.half() if tensor.is_floating_point() else tensor
        for name, tensor in contents["network"].items()
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    torch.save(
        {"recipe": contents["recipe"], "network": weights, "iteration": contents["iteration"]},
        partial,
    )
    os.replace(partial, target)


def initialise_from(network: nn.Module, path: str | Path) -> list[str]:
    """Copy into ``network`` every tensor of the checkpoint at ``path`` whose name and shape
    match one of its own; return the names copied. The rest keeps its initialisation.

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        ValueError: no tensor of the checkpoint fits the network.
    """
    source = read_checkpoint(path, keys=("network",))["network"]
    own = network.state_dict()
    matching = {
        name: tensor
        for name, tensor in source.items()
        if name in own and own[name].shape == tensor.shape
    }
    if not matching:
        raise ValueError(f"no tensor of {path} has the name and shape of one of this network's")
    network.load_state_dict(matching, strict=False)
    return sorted(matching)
