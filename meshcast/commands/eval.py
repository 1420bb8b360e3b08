"""``meshcast eval``: the papers' table for a trained checkpoint, on a dataset file or, for
the keypoint families, on held-out synthetic landmark sequences."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table


@click.command("eval")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--data", "data_file", type=click.Path(path_type=Path), default=None,
              help="A dataset file (VIBE/MAED layout) with ground truth.")  # fmt: skip
@click.option("--synthetic", type=click.Choice(["exact", "noisy"]), default=None,
              help="Keypoint families: held-out synthetic landmark sequences (the recipe's "
                   "val_clips, other seeds), exact or with the recipe's noise.")  # fmt: skip
@click.option("--sequences", type=click.IntRange(min=1), default=32, show_default=True,
              help="With --synthetic: how many sequences.")  # fmt: skip
@click.option("--frames", type=click.IntRange(min=1), default=48, show_default=True,
              help="With --synthetic: frames of each sequence.")  # fmt: skip
@click.option("--seed", type=int, default=1000, show_default=True,
              help="With --synthetic: the sequences' seed.")  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="JSON file for the table; default: beside the checkpoint.")  # fmt: skip
@click.option("--body", default=None,
              help="Body model of the data; default: the recipe's data.body.")  # fmt: skip
@click.option("--device", default="cpu", show_default=True)
@click.option("--stride", type=click.IntRange(min=1), default=None,
              help="Frames between windows; default: half the recipe's clip length.")  # fmt: skip
def command(
    checkpoint: Path,
    data_file: Path | None,
    synthetic: str | None,
    sequences: int,
    frames: int,
    seed: int,
    out: Path | None,
    body: str | None,
    device: str,
    stride: int | None,
) -> None:
    """Evaluate CHECKPOINT on a dataset file (--data) or on synthetic landmark sequences
    (--synthetic): PA-MPJPE, MPJPE, PVE, ACCEL, ACCEL_ERR (mm; PCK and AUC in % for data with
    3D joints but no SMPL). ACCEL is the predicted joints' acceleration (VIBE's and MAED's
    column), ACCEL_ERR its error against the truth."""
    if (data_file is None) == (synthetic is None):
        raise click.UsageError("give one of --data FILE and --synthetic exact|noisy")
    from training.body import load_body_model
    from training.evaluation.predict import default_stride, predict_dataset
    from training.evaluation.scoring import METRIC_COLUMNS, METRIC_TITLES, score
    from training.train.checkpoint import load_network

    recipe, network = load_network(checkpoint)
    body_model = load_body_model(body or (recipe.data.body if recipe.data else "smpl"))
    length = recipe.training.clip_length if recipe.training else 1
    if synthetic is not None:
        from training.evaluation.landmark_sequences import evaluate_on_sequences

        table = evaluate_on_sequences(
            network, recipe, body_model, count=sequences, frames=frames, seed=seed,
            noise="exact" if synthetic == "exact" else "noisy", stride=stride,
        )  # fmt: skip
        data = f"synthetic landmarks ({synthetic}): {sequences} × {frames} frames, seed {seed}"
        name = f"synthetic_{synthetic}"
    else:
        assert data_file is not None
        predictions, truth = predict_dataset(
            network, recipe, data_file, device=device, stride=stride
        )
        table = score(predictions, truth, body_model)
        data, name = str(data_file), data_file.stem
    report = {"checkpoint": str(checkpoint), "recipe": recipe.name, "data": data,
              "window": length, "stride": stride or default_stride(length),
              "body": body_model.name, "joint_set_source": body_model.joint_set_source,
              **{key: round(value, 2) for key, value in table.items()}}  # fmt: skip
    out = out or checkpoint.with_name(f"eval_{name}.json")
    out.write_text(json.dumps(report, indent=2) + "\n")

    shown = [key for key in METRIC_COLUMNS if key in table]
    rich_table = Table(*(METRIC_TITLES[key] for key in shown), "frames",
                       title=f"{recipe.name} on {data} (mm; PCK, AUC in %)")  # fmt: skip
    rich_table.add_row(*(f"{table[key]:.1f}" for key in shown), f"{table['frames']:.0f}")
    Console().print(rich_table)
    click.echo(f"written to {out}")
