"""``meshcast frontend-error``: the front-end's error on synthetic videos, as training noise."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
import yaml

if TYPE_CHECKING:
    from training.evaluation.frontend_error import FrontendError


# What the measurement reports beyond LandmarkNoise's fields.
NOT_NOISE = ("videos", "person_frames", "median_turn", "world_pa_mpjpe")


@click.command("frontend-error")
@click.argument("dataset_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("results", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--body", default="standin", show_default=True,
              help="The body model the videos were rendered with.")  # fmt: skip
@click.option("--json", "json_path", type=click.Path(path_type=Path), default=None,
              help="File for the figures; default: frontend_error.json in RESULTS.")  # fmt: skip
def command(dataset_file: Path, results: Path, body: str, json_path: Path | None) -> None:
    """Measure the front-end's landmarks and metric 3D points against the truth of
    DATASET_FILE's videos (`meshcast synth`), from `meshcast run`'s results in
    RESULTS/VIDEO/result.npz (video000, …), as the keypoint families' training noise (a
    recipe's data.noise)."""
    from training.body import load_body_model
    from training.evaluation.frontend_error import frontend_error
    from training.evaluation.video_scoring import TRACK_NAME

    found = sorted(
        (folder.name, folder / "result.npz")
        for folder in results.iterdir()
        if (folder / "result.npz").is_file() and TRACK_NAME.match(f"{folder.name}_p0")
    )
    if not found:
        raise click.UsageError(f"no VIDEO/result.npz in {results}: run `meshcast run` first")
    measured = frontend_error(found, dataset_file, load_body_model(body))
    json_path = json_path or results / "frontend_error.json"
    json_path.write_text(measured.model_dump_json(indent=2) + "\n")
    click.echo(
        f"{measured.person_frames} person-frames of {measured.videos} videos; median turn of "
        f"the metric points {measured.median_turn:.1f}°, their limb landmarks "
        f"{measured.world_pa_mpjpe:.1f} mm from the body's after alignment (PA-MPJPE). "
        "As a recipe's data.noise:"
    )
    click.echo(_as_noise(measured))
    click.echo(f"written to {json_path}")


def _as_noise(measured: FrontendError) -> str:
    """The figures as YAML a recipe's ``data.noise`` takes, rounded."""
    rounded = {
        name: [round(v, 2) for v in value] if isinstance(value, tuple) else round(value, 3)
        for name, value in measured.model_dump().items()
        if name not in NOT_NOISE
    }
    return yaml.safe_dump(rounded, sort_keys=False, default_flow_style=None).rstrip()
