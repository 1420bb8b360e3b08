"""``meshcast eval``: the papers' table for a trained checkpoint on a dataset file."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from training.body import load_body_model
from training.evaluation.predict import default_stride, predict_dataset
from training.evaluation.scoring import METRIC_COLUMNS, METRIC_TITLES, score
from training.train.checkpoint import load_network


@click.command("eval")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--data", "data_file", type=click.Path(path_type=Path), required=True,
              help="A dataset file (VIBE/MAED layout) with ground truth.")  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="JSON file for the table; default: beside the checkpoint.")  # fmt: skip
@click.option("--body", default=None,
              help="Body model of the data; default: the recipe's data.body.")  # fmt: skip
@click.option("--device", default="cpu", show_default=True)
@click.option("--stride", type=click.IntRange(min=1), default=None,
              help="Frames between windows; default: half the recipe's clip length.")  # fmt: skip
def command(
    checkpoint: Path,
    data_file: Path,
    out: Path | None,
    body: str | None,
    device: str,
    stride: int | None,
) -> None:
    """Evaluate CHECKPOINT on a dataset file: PA-MPJPE, MPJPE, PVE, ACCEL, ACCEL_ERR (mm;
    PCK and AUC in % for data with 3D joints but no SMPL). ACCEL is the predicted joints'
    acceleration (VIBE's and MAED's column), ACCEL_ERR its error against the truth."""
    recipe, network = load_network(checkpoint)
    body_model = load_body_model(body or (recipe.data.body if recipe.data else "smpl"))
    predictions, truth = predict_dataset(network, recipe, data_file, device=device, stride=stride)
    table = score(predictions, truth, body_model)
    length = recipe.training.clip_length if recipe.training else 1
    report = {"checkpoint": str(checkpoint), "recipe": recipe.name, "data": str(data_file),
              "window": length, "stride": stride or default_stride(length),
              "body": body_model.name, "joint_set_source": body_model.joint_set_source,
              **{name: round(value, 2) for name, value in table.items()}}  # fmt: skip
    out = out or checkpoint.with_name(f"eval_{data_file.stem}.json")
    out.write_text(json.dumps(report, indent=2) + "\n")

    shown = [name for name in METRIC_COLUMNS if name in table]
    rich_table = Table(*(METRIC_TITLES[name] for name in shown), "frames",
                       title=f"{recipe.name} on {data_file.name} (mm; PCK, AUC in %)")  # fmt: skip
    rich_table.add_row(*(f"{table[name]:.1f}" for name in shown), f"{table['frames']:.0f}")
    Console().print(rich_table)
    click.echo(f"written to {out}")
