"""The authors' published MAED, SPIN and VIBE checkpoints, turned into meshcast checkpoints.

An importer reads a published file, finds the network's state dict inside it (:func:`unwrap`),
builds the network of a recipe and fills it tensor by tensor from the published one, renaming
only: no reshaping, no defaults. Every key of the published file is either used or ignored
with a reason; a key the network needs that is missing, or that has another shape, is a
:class:`CheckpointMismatchError` naming it. Modules the published network does not have keep
their fresh initialisation, drawn from a seeded generator.

The written file (:func:`save_imported`) is what :func:`training.train.checkpoint.load_network`
reads, ``recipe`` and ``network``, plus a ``provenance`` entry (:class:`Provenance` as a dict).

* ``maed``: MAED's weights (``maed_official_state_dict.tsv``) → recipe ``maed_paper``, renamed
  by :func:`training.models.maed.published_state_dict`.
* ``spin``: SPIN's HMR (``model_checkpoint.pt``: a ResNet-50 and HMR's iterative regressor)
  → recipe ``spsnet_paper``. The ResNet-50 becomes E; the regressor initialises both
  R_pose/R_camera and R_shape, as SPS-Net §4.1 does ("initialised from HMR"); A, F and the
  fusion stay fresh.
* ``vibe``: VIBE's generator (a GRU temporal encoder and SPIN's regressor) → ``spsnet_gru``
  with ``encoder: features`` (:func:`vibe_recipe`). VIBE has no image encoder: it reads the
  2048-d features of SPIN's ResNet-50, precomputed in its dataset files, and so does a
  features model; those features come from ``meshcast import spin`` then ``meshcast
  features``. The GRU becomes SPS-Net's GRU temporal module (Table 4's "Ours (GRU)" is
  VIBE's temporal encoder: same layers, same residual); the regressor initialises both
  regressors, as for SPIN; F and the fusion stay fresh. VIBE's discriminator is ignored:
  SPS-Net trains its own A_D.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from training.models import build_model
from training.models.maed import CHECKPOINT_WRAPPERS, DATA_PARALLEL_PREFIX, published_state_dict
from training.recipes import Recipe, load_recipe

# Where the authors nest the network's weights: VIBE and MAED under "gen_state_dict", SPIN
# under "model" (its CheckpointSaver keys each model by name); or a bare state dict.
WRAPPERS = (*CHECKPOINT_WRAPPERS, "model")
BODY_MODEL_REASON = "SMPL body-model data, not weights: meshcast's body module provides it"
UNKNOWN_REASON = "not part of the published network as meshcast reads it"
# The network's key prefix → the published prefix its tensors come from (the first that
# matches); a key that no prefix matches keeps its fresh initialisation.
MAED_RENAMES = {"": ""}
SPIN_RENAMES = {"encoder.": "", "pose_regressor.": "", "shape_regressor.": ""}
VIBE_RENAMES = {
    "temporal.": "encoder.",
    "pose_regressor.": "regressor.",
    "shape_regressor.": "regressor.",
}
# Published key prefix → why such keys are not used.
VIBE_IGNORED = {
    "regressor.smpl.": BODY_MODEL_REASON,
    "motion_discriminator.": "VIBE's motion discriminator: training only (SPS-Net has its own)",
}
# NumPy scalars (e.g. VIBE's and MAED's "performance"), written by NumPy 1 ("numpy.core") or 2
# ("numpy._core"), may be unpickled safely besides tensors.
_NUMPY_SCALAR = np.float64(0).__reduce__()[0]
SAFE_GLOBALS: list[Any] = [
    _NUMPY_SCALAR,
    (_NUMPY_SCALAR, "numpy.core.multiarray.scalar"),
    np.dtype,
    *(type(np.dtype(kind)) for kind in (np.bool_, np.int32, np.int64, np.float32, np.float64)),
]


class CheckpointMismatchError(ValueError):
    """A published checkpoint cannot be read, or does not fit the layout its family publishes."""


@dataclass(frozen=True)
class Provenance:
    """Where an imported network's tensors come from: saved as a dict beside the network."""

    family: str  # "maed", "spin" or "vibe"
    source_file: str  # the published file's name
    source_sha256: str
    recipe: str
    seed: int  # of the modules initialised fresh
    used: dict[str, list[str]]  # published key → the network's keys it fills
    ignored: dict[str, str]  # published key (or top-level entry of the file) → why
    initialised: dict[str, str]  # the network's keys not in the published file → why


@dataclass(frozen=True)
class Imported:
    """A network filled from a published checkpoint, with its recipe and provenance."""

    recipe: Recipe
    network: nn.Module
    provenance: Provenance


def read_checkpoint(path: Path, trust: bool = False) -> Mapping[str, Any]:
    """The contents of a published torch file, unpickled safely unless ``trust`` is set.

    Without ``trust`` only tensors, containers, numbers and NumPy scalars are unpickled (what
    the authors' saving code writes); ``trust`` unpickles anything, which may run code.

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointMismatchError: not a torch file, objects beyond those allowed, or no dict.
    """
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            contents = torch.load(path, map_location="cpu", weights_only=not trust)
    except Exception as error:  # torch raises many kinds of error on a file it cannot read
        if trust:
            message = str(error).strip().partition("\n")[0]
            raise CheckpointMismatchError(
                f"cannot read {path} as a torch checkpoint ({type(error).__name__}: {message})"
            ) from error
        raise CheckpointMismatchError(
            f"cannot read {path} safely: it is no torch checkpoint, or it holds Python objects "
            "besides tensors and numbers; if it comes from a source you trust, import it with "
            "--trust (unpickling may run code)"
        ) from error
    if not isinstance(contents, Mapping):
        raise CheckpointMismatchError(
            f"{path} holds a {type(contents).__name__}, not a checkpoint's dict"
        )
    return contents


def unwrap(checkpoint: Mapping[str, Any]) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The network's state dict inside a published checkpoint, and what else the file holds.

    The state dict is the entry under the first of :data:`WRAPPERS` present, or the checkpoint
    itself; a leading ``module.`` (DataParallel) is dropped from every key.

    Returns:
        The tensors by key, and the file's other top-level entries with why they are ignored.
    """
    wrapper = next((name for name in WRAPPERS if name in checkpoint), None)
    state: Any = checkpoint if wrapper is None else checkpoint[wrapper]
    if not isinstance(state, Mapping):
        raise CheckpointMismatchError(
            f"checkpoint[{wrapper!r}] is a {type(state).__name__}, not a state dict"
        )
    weights: dict[str, Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, Tensor):
            raise CheckpointMismatchError(
                f"state dict entry {key!r} is a {type(value).__name__}, not a tensor"
            )
        weights[key.removeprefix(DATA_PARALLEL_PREFIX)] = value
    if wrapper is None:
        return weights, {}
    return weights, {key: _top_level_reason(key, wrapper) for key in checkpoint if key != wrapper}


def _top_level_reason(key: str, wrapper: str) -> str:
    if "optim" in key:
        return "optimiser state: training only"
    if "disc" in key:
        return "the authors' discriminator: training only (SPS-Net trains its own A_D)"
    return f"training bookkeeping beside the weights under {wrapper!r}"


def import_maed(path: Path, seed: int = 0, trust: bool = False) -> Imported:
    """MAED's published checkpoint as a ``maed_paper`` network (renaming only)."""
    weights, ignored = unwrap(read_checkpoint(path, trust))
    weights, body_model = published_state_dict(weights)
    ignored |= dict.fromkeys(body_model, BODY_MODEL_REASON)
    return _import(
        "maed", path, load_recipe("maed_paper"), weights, ignored, MAED_RENAMES, {}, seed
    )


def import_spin(path: Path, seed: int = 0, trust: bool = False) -> Imported:
    """SPIN's HMR as an ``spsnet_paper`` network: its ResNet-50 is E, its regressor both of
    SPS-Net's; the temporal modules keep their fresh initialisation."""
    weights, ignored = unwrap(read_checkpoint(path, trust))
    recipe = load_recipe("spsnet_paper")
    return _import("spin", path, recipe, weights, ignored, SPIN_RENAMES, {}, seed)


def vibe_recipe() -> Recipe:
    """``spsnet_gru`` reading precomputed features, as VIBE's network does (see the module)."""
    base = load_recipe("spsnet_gru").model_dump(mode="json")
    return Recipe.model_validate(
        base
        | {
            "name": "spsnet_gru_features",
            "source": "spsnet_gru on precomputed SPIN features, as VIBE (imported from VIBE)",
            "model": base["model"] | {"encoder": "features"},
        }
    )


def import_vibe(path: Path, seed: int = 0, trust: bool = False) -> Imported:
    """VIBE's generator as an ``spsnet_gru`` features network (:func:`vibe_recipe`): its GRU
    is the temporal module, its regressor both of SPS-Net's; F and the fusion stay fresh."""
    weights, ignored = unwrap(read_checkpoint(path, trust))
    return _import("vibe", path, vibe_recipe(), weights, ignored, VIBE_RENAMES, VIBE_IGNORED, seed)


IMPORTERS: dict[str, Callable[[Path, int, bool], Imported]] = {
    "maed": import_maed,
    "spin": import_spin,
    "vibe": import_vibe,
}


def _import(
    family: str,
    path: Path,
    recipe: Recipe,
    weights: dict[str, Tensor],
    ignored: dict[str, str],
    renames: dict[str, str],
    reasons: dict[str, str],
    seed: int,
) -> Imported:
    """Build ``recipe``'s network from ``seed`` and fill it from the published ``weights``.

    Args:
        ignored: the file's entries already set aside, with why.
        renames: as :data:`SPIN_RENAMES`.
        reasons: as :data:`VIBE_IGNORED`; the published keys left unused get the reason of the
            first prefix they start with, otherwise :data:`UNKNOWN_REASON`.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = build_model(recipe)
    state = network.state_dict()
    used: dict[str, list[str]] = {}
    initialised: dict[str, str] = {}
    problems: list[str] = []
    for key, value in state.items():
        source = _published_name(key, renames)
        if source is None:
            initialised[key] = f"{family} has no such module: fresh initialisation (seed {seed})"
        elif source not in weights:
            problems.append(f"{source!r} is missing (expected shape {tuple(value.shape)})")
        elif weights[source].shape != value.shape:
            problems.append(
                f"{source!r} has shape {tuple(weights[source].shape)}, "
                f"expected {tuple(value.shape)}"
            )
        else:
            state[key] = weights[source]
            used.setdefault(source, []).append(key)
    if problems:
        more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise CheckpointMismatchError(
            f"{path} does not fit {family}'s published layout: {'; '.join(problems[:3])}{more}"
        )
    network.load_state_dict(state)
    unused = {
        key: next(
            (why for prefix, why in reasons.items() if key.startswith(prefix)), UNKNOWN_REASON
        )
        for key in weights.keys() - used.keys()
    }
    provenance = Provenance(
        family=family,
        source_file=path.name,
        source_sha256=_sha256(path),
        recipe=recipe.name,
        seed=seed,
        used=used,
        ignored=dict(sorted((ignored | unused).items())),
        initialised=initialised,
    )
    return Imported(recipe, network.eval(), provenance)


def _published_name(key: str, renames: dict[str, str]) -> str | None:
    for ours, published in renames.items():
        if key.startswith(ours):
            return published + key.removeprefix(ours)
    return None


def _sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def save_imported(imported: Imported, out: Path) -> None:
    """Write ``imported`` where :func:`~training.train.checkpoint.load_network` can read it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "recipe": imported.recipe.model_dump(mode="json"),
            "network": imported.network.state_dict(),
            "provenance": asdict(imported.provenance),
        },
        out,
    )
