"""``meshcast record-frontend``: the front-end's output on synthetic videos, as training clips."""

from __future__ import annotations

from pathlib import Path

import click

_EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_EXISTING_FOLDER = click.Path(exists=True, file_okay=False, path_type=Path)


@click.command("record-frontend")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--videos", "pairs", type=(_EXISTING_FILE, _EXISTING_FOLDER), multiple=True,
              required=True, metavar="DATASET_FILE RESULTS",
              help="A `meshcast synth` dataset file and the folder of `meshcast run`'s "
              "VIDEO/result.npz for its videos; repeat for more.")  # fmt: skip
@click.option("--recipe", default="spsnet_keypoints", show_default=True,
              help="The keypoint recipe the clips are for: its crop and clip length.")  # fmt: skip
def command(out: Path, pairs: tuple[tuple[Path, Path], ...], recipe: str) -> None:
    """Write to OUT (.npz) every run of tracked person-frames matched to one true person, as
    the recipe's network reads them and with their truth as labels: training clips of the
    front-end's own error (a recipe's data.recorded)."""
    from training.data.recorded_clips import record_runs
    from training.recipes import load_recipe
    from training.recipes.schema import LandmarkDataConfig
    from training.train.objective import clip_frames

    loaded = load_recipe(recipe)
    if not isinstance(loaded.data, LandmarkDataConfig) or loaded.training is None:
        raise click.BadParameter(f"{recipe} is not a keypoint recipe", param_hint="--recipe")
    frames = clip_frames(loaded, loaded.training.clip_length)
    runs = record_runs(pairs, loaded.data.crop_scale, frames)
    runs.save(out)
    click.echo(
        f"{len(runs.lengths)} runs of {frames} frames or more, {len(runs.pose)} person-frames, "
        f"written to {out}"
    )
