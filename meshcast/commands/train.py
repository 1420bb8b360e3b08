"""``meshcast train``: train a recipe's network, with checkpoints and TensorBoard logs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from training.recipes.schema import DataConfig, LandmarkDataConfig

# Where runs go when --run-dir is not given: one folder per recipe.
DEFAULT_RUNS_DIR = Path("runs")
# How the data files that built-in recipes read are made, by where those recipes keep them.
HOW_TO_MAKE = {
    "data/synth/": "`make results-cpu` makes the CPU recipes' synthetic data and trains them "
    "in order (meshcast synth; meshcast features for the *_features.pt files)",
    "data/frontend_clips": "`make frontend-clips` records the front-end on synthetic videos",
}
OTHER_DATA = (
    "a dataset file in VIBE's and MAED's layout: the README's 'Data, training, evaluation' "
    "says where the published ones come from"
)


@click.command("train")
@click.argument("recipe")
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    default=None,
    help=f"Folder of the run (checkpoints, tb/); default {DEFAULT_RUNS_DIR}/RECIPE-NAME.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir where it stopped.")
@click.option("--max-iterations", type=click.IntRange(min=1), default=None,
              help="Stop after this many steps of the run (resumed steps included).")  # fmt: skip
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="Default: CUDA when available.")  # fmt: skip
@click.option(
    "--body", default=None, help="Body model (smpl, standin, a file); default: the recipe's."
)
def command(
    recipe: str,
    run_dir: Path | None,
    resume: bool,
    max_iterations: int | None,
    device: str | None,
    body: str | None,
) -> None:
    """Train RECIPE (a built-in recipe's name or a recipe file) on the data it names."""
    from training.recipes import load_recipe
    from training.train.loop import train

    loaded = load_recipe(recipe)
    missing = [name for name in ("training", "data") if getattr(loaded, name) is None]
    if missing:
        raise click.UsageError(
            f"recipe {loaded.name!r} has no {' or '.join(missing)} section: add "
            "'training:' (clips, batches, schedule) and 'data:' (dataset files) to train it"
        )
    absent = [path for path in _data_files(loaded.data) if not Path(path).exists()]
    if absent:
        more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
        how = next((hint for where, hint in HOW_TO_MAKE.items() if absent[0].startswith(where)),
                   OTHER_DATA)  # fmt: skip
        raise FileNotFoundError(
            f"recipe {loaded.name!r} reads {absent[0]}{more}, which is not there: {how}"
        )
    summary = train(
        loaded,
        run_dir or DEFAULT_RUNS_DIR / loaded.name,
        resume=resume,
        max_iterations=max_iterations,
        device=device,
        body=body,
    )
    best = "none" if summary.best_validation is None else f"{summary.best_validation:.1f} mm"
    click.echo(
        f"{summary.iterations} steps, {summary.epochs} epochs; best PA-MPJPE {best}; "
        f"checkpoints in {summary.run_dir}"
    )


def _data_files(data: DataConfig | LandmarkDataConfig | None) -> list[str]:
    """The files (motion: files or folders) a recipe's data section names (synthetic landmark
    clips need none)."""
    if data is None:
        return []
    if data.kind == "files":
        return [*data.train, *data.val, *data.motion]
    return [path for path in (data.recorded, data.recorded_val) if path is not None]
