"""``meshcast features``: a trained network's per-frame features, added to dataset files."""

from __future__ import annotations

from pathlib import Path

import click


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
    from training.data.features import add_features

    for written in add_features(checkpoint, data_files, suffix):
        click.echo(f"{written.path}: {written.dim}-d features for {written.rows} rows")
