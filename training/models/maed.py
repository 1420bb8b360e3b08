"""MAED: Spatial-Temporal Encoder + Kinematic Topology Decoder (MAED §3.2, Fig. 2; Table 2).

``MAED(config)`` maps a clip ``(B, T, 3, H, W)`` to SMPL parameters of every frame. The
module tree mirrors the authors' (``encoder.*``, ``decoder.*``, same names inside), so their
checkpoint loads by renaming only: :func:`load_published_state_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor, nn

from training.models.hmr_regressor import HMRRegressor
from training.models.ktd import KTD, KinematicTree
from training.models.ste import SpatialTemporalEncoder
from training.recipes.schema import MAEDConfig

# Where the authors' training script nests the network's weights in a checkpoint file.
CHECKPOINT_WRAPPERS = ("gen_state_dict", "state_dict")
# Left by torch.nn.DataParallel / DistributedDataParallel in front of every key.
DATA_PARALLEL_PREFIX = "module."
# The published KTD holds an SMPL body model; its buffers (mesh template, blend shapes,
# regressor …) are body-model data, which this project's body module provides, not weights.
BODY_MODEL_PREFIX = "decoder.smpl."


class MAED(nn.Module):
    """Clip ``(B, T, 3, H, W)`` → per-frame SMPL rotations, shape and weak-perspective camera.

    ``config.decoder`` picks KTD over ``config.kinematic_tree`` or HMR's iterative regressor
    (Table 2); both read the STE's per-frame feature.
    """

    decoder: KTD | HMRRegressor

    def __init__(self, config: MAEDConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = SpatialTemporalEncoder(config)
        if config.decoder == "ktd":
            tree = KinematicTree.named(config.kinematic_tree, config.tree_seed)
            self.decoder = KTD(
                config.embed_dim, config.decoder_hidden, config.decoder_dropout, tree
            )
        else:
            self.decoder = HMRRegressor(
                config.embed_dim,
                config.decoder_hidden,
                config.regressor_iterations,
                config.decoder_dropout,
            )

    def forward(self, frames: Tensor) -> dict[str, Tensor]:
        """Decode a batch of clips ``frames (B, T, 3, H, W)``, ``T ≤ config.num_frames``.

        Returns ``rotmat (B, T, 24, 3, 3)``, ``pose6d (B, T, 144)``, ``betas (B, T, 10)``,
        ``cam (B, T, 3)`` (s, tx, ty) and ``features (B, T, d)``, the STE output per frame.
        """
        return self.decode_tokens(self.encoder.embed(frames))

    def decode_tokens(self, tokens: Tensor) -> dict[str, Tensor]:
        """As :meth:`forward` from the per-frame patch tokens ``(B, T, hw, d)`` of
        ``encoder.embed``: the part of the network that looks across frames."""
        b, t = tokens.shape[:2]
        features = self.encoder.encode_tokens(tokens)
        decoded = self.decoder(features.flatten(0, 1))
        out = {name: value.reshape(b, t, *value.shape[1:]) for name, value in decoded.items()}
        out["features"] = features
        return out


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_published_state_dict` did."""

    loaded: int  # tensors copied into the model (all of its state)
    ignored: tuple[str, ...]  # the authors' body-model buffers under BODY_MODEL_PREFIX


def published_state_dict(
    checkpoint: Mapping[str, object],
) -> tuple[dict[str, Tensor], tuple[str, ...]]:
    """The network weights of an authors' checkpoint under this model's key names.

    Rename rules: take the dict under ``gen_state_dict`` or ``state_dict`` if the checkpoint
    nests it there; drop a leading ``module.``; every other key is already this model's name.

    Returns:
        The weights, and the body-model buffers' keys (``decoder.smpl.*``) left out.
    """
    for wrapper in CHECKPOINT_WRAPPERS:
        if wrapper in checkpoint:
            nested = checkpoint[wrapper]
            if not isinstance(nested, Mapping):
                raise TypeError(f"checkpoint[{wrapper!r}] is {type(nested).__name__}, not a dict")
            checkpoint = nested
            break
    weights: dict[str, Tensor] = {}
    ignored: list[str] = []
    for key, value in checkpoint.items():
        name = key.removeprefix(DATA_PARALLEL_PREFIX)
        if name.startswith(BODY_MODEL_PREFIX):
            ignored.append(name)
        elif isinstance(value, Tensor):
            weights[name] = value
        else:
            raise TypeError(f"checkpoint entry {key!r} is {type(value).__name__}, not a tensor")
    return weights, tuple(ignored)


def load_published_state_dict(model: MAED, checkpoint: Mapping[str, object]) -> LoadReport:
    """Load the authors' MAED weights (as listed in ``maed_official_state_dict.tsv``).

    Renaming only (see :func:`published_state_dict`): no reshaping, no defaults. Raises
    ``KeyError`` naming every missing or unexpected key and ``ValueError`` naming every key
    whose shape differs, before touching the model.
    """
    weights, ignored = published_state_dict(checkpoint)
    expected = model.state_dict()
    missing = sorted(expected.keys() - weights.keys())
    unexpected = sorted(weights.keys() - expected.keys())
    if missing or unexpected:
        raise KeyError(f"missing keys {missing}; unexpected keys {unexpected}")
    misshaped = [
        f"{key}: checkpoint {tuple(weights[key].shape)} vs model {tuple(value.shape)}"
        for key, value in expected.items()
        if weights[key].shape != value.shape
    ]
    if misshaped:
        raise ValueError("misshaped keys: " + "; ".join(misshaped))
    model.load_state_dict(weights, strict=True)
    return LoadReport(loaded=len(weights), ignored=ignored)
