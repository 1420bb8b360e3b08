"""``meshcast features``: a trained network's per-frame features, added to dataset files."""

from __future__ import annotations

from pathlib import Path

import click

from training.data.dataset_file import write_with_fields
from training.evaluation.predict import predict_dataset
from training.train.checkpoint import load_network


@click.command("features")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("data_files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--suffix", default="_features", show_default=True,
              help="Written beside each input as NAME{suffix}.pt.")  # fmt: skip
def command(checkpoint: Path, data_files: tuple[Path, ...], suffix: str) -> None:
    """Add CHECKPOINT's per-frame features to DATA_FILES, as VIBE's files carry SPIN's.

    Use a network that sees each frame alone (SPS-Net's encoder, or MAED with spatial blocks),
    so that a temporal model trained on the features gets no temporal context for free.
    """
    recipe, network = load_network(checkpoint)
    for data_file in data_files:
        predictions, _ = predict_dataset(network, recipe, data_file)
        if predictions.features is None:  # an empty dataset file: nothing was predicted
            raise ValueError(f"{data_file} has no rows to compute features for")
        out = data_file.with_name(f"{data_file.stem}{suffix}.pt")
        write_with_fields(data_file, out, {"features": predictions.features})
        rows, dim = predictions.features.shape
        click.echo(f"{out}: {dim}-d features for {rows} rows")
