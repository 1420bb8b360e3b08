"""A trained network's per-frame features added to dataset files, as VIBE's files carry SPIN's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from training.data.dataset_file import write_with_fields
from training.evaluation.predict import predict_dataset
from training.train.checkpoint import load_network


@dataclass(frozen=True)
class FeaturesFile:
    path: Path
    rows: int
    dim: int


def add_features(
    checkpoint: Path, data_files: Sequence[Path], suffix: str = "_features"
) -> list[FeaturesFile]:
    """Write each of ``data_files`` again beside itself as ``NAME{suffix}.pt`` with a
    ``features (N, D)`` field: ``checkpoint``'s per-frame features of every row.

    Use a network that sees each frame alone (SPS-Net's encoder, or MAED with spatial blocks),
    so that a temporal model trained on the features gets no temporal context for free.

    Raises:
        FileNotFoundError: the checkpoint or a dataset file is missing.
        ValueError: a dataset file has no rows.
    """
    recipe, network = load_network(checkpoint)
    written = []
    for data_file in data_files:
        predictions, _ = predict_dataset(network, recipe, data_file)
        if predictions.features is None:  # an empty dataset file: nothing was predicted
            raise ValueError(f"{data_file} has no rows to compute features for")
        out = data_file.with_name(f"{data_file.stem}{suffix}.pt")
        write_with_fields(data_file, out, {"features": predictions.features})
        written.append(FeaturesFile(out, *predictions.features.shape))
    return written
