"""The default bundle that ``meshcast demo`` runs, built on first use from its plan file.

A trained bundle is far too big for the repository, so the plan
(``meshcast/default_bundle.yaml``) says how to make it here: synthetic data, the
single-frame encoder trained on it, that encoder's features added to the data, the temporal
model trained on the features, and the export. Each step is skipped when its output is
already there and newer than what it was made from, so an interrupted build goes on where it
stopped and a finished one costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, PositiveInt
from rich.console import Console

DEFAULT_PLAN = Path(__file__).parent / "default_bundle.yaml"
StepName = Literal["synth", "encoder", "features", "model", "export"]


class SyntheticSet(BaseModel):
    """One ``meshcast synth`` split."""

    model_config = ConfigDict(extra="forbid")

    split: str
    videos: PositiveInt
    seed: int
    clips: list[str]


class BundlePlan(BaseModel):
    """How the default bundle is made (paths are relative to the working directory, where the
    recipes' own data and ``init_from`` paths point too)."""

    model_config = ConfigDict(extra="forbid")

    bundle: Path
    body: str
    data_dir: Path
    runs_dir: Path
    frames_per_video: PositiveInt
    image_size: tuple[PositiveInt, PositiveInt]  # (W, H)
    people: tuple[PositiveInt, PositiveInt]
    datasets: list[SyntheticSet]
    encoder_recipe: str  # trained on single frames; its features feed the model
    model_recipe: str  # reads the encoder's features
    minutes: dict[StepName, float]  # measured wall time of each step, stated before a build

    def dataset_file(self, split: str) -> Path:
        return self.data_dir / f"synth_{split}_db.pt"

    def features_file(self, split: str) -> Path:
        return self.data_dir / f"synth_{split}_db{FEATURES_SUFFIX}.pt"

    def best_checkpoint(self, recipe: str) -> Path:
        from training.recipes import load_recipe
        from training.train.checkpoint import BEST

        return self.runs_dir / load_recipe(recipe).name / BEST


FEATURES_SUFFIX = "_features"


def load_plan(path: str | Path = DEFAULT_PLAN) -> BundlePlan:
    """Read and validate a plan file."""
    return BundlePlan.model_validate(yaml.safe_load(Path(path).read_text()))


@dataclass(frozen=True)
class BuildStep:
    name: StepName
    title: str
    is_done: Callable[[], bool]
    run: Callable[[], None]


def _up_to_date(outputs: list[Path], inputs: list[Path]) -> Callable[[], bool]:
    """Done when every output exists and none is older than an input (as make decides)."""

    def is_done() -> bool:
        if not all(path.exists() for path in [*outputs, *inputs]):
            return False
        newest_input = max((path.stat().st_mtime for path in inputs), default=0.0)
        return all(path.stat().st_mtime >= newest_input for path in outputs)

    return is_done


def _readable(bundle: Path) -> bool:
    """Whether this meshcast reads the bundle's manifest (a bundle of an older schema, e.g.
    without the front-end, is exported again)."""
    from service.bundle import read_manifest

    try:
        read_manifest(bundle)
    except ValueError:
        return False
    return True


def _training(plan: BundlePlan, name: StepName, recipe_name: str) -> BuildStep:
    from training.recipes import load_recipe
    from training.train.checkpoint import LATEST, run_is_finished
    from training.train.loop import train

    recipe = load_recipe(recipe_name)
    run_dir = plan.runs_dir / recipe.name

    def run() -> None:
        # An interrupted run goes on exactly where it stopped.
        train(recipe, run_dir, resume=(run_dir / LATEST).exists())

    return BuildStep(name, f"training {recipe.name}", lambda: run_is_finished(run_dir, recipe), run)


def build_steps(plan: BundlePlan) -> list[BuildStep]:
    """The plan's steps in order, each knowing when it is done and how to do it."""
    from training.data.features import add_features
    from training.synth import generate_dataset

    encoder_best = plan.best_checkpoint(plan.encoder_recipe)
    model_best = plan.best_checkpoint(plan.model_recipe)
    dataset_files = [plan.dataset_file(d.split) for d in plan.datasets]
    feature_files = [plan.features_file(d.split) for d in plan.datasets]

    def synth() -> None:
        for dataset in plan.datasets:
            if not plan.dataset_file(dataset.split).exists():
                generate_dataset(
                    plan.data_dir,
                    body=plan.body,
                    num_videos=dataset.videos,
                    frames_per_video=plan.frames_per_video,
                    people=plan.people,
                    image_size=plan.image_size,
                    seed=dataset.seed,
                    split=dataset.split,
                    clips=dataset.clips,
                )

    def features() -> None:
        add_features(encoder_best, dataset_files, FEATURES_SUFFIX)

    def export() -> None:
        from export.bundle import export_bundle

        export_bundle(model_best, plan.body, plan.bundle, encoder_checkpoint=encoder_best)

    manifest = plan.bundle / "manifest.json"
    exported = _up_to_date([manifest], [encoder_best, model_best])
    return [
        BuildStep("synth", "synthetic videos", _up_to_date(dataset_files, []), synth),
        _training(plan, "encoder", plan.encoder_recipe),
        BuildStep(
            "features", "encoder features", _up_to_date(feature_files, [encoder_best]), features
        ),
        _training(plan, "model", plan.model_recipe),
        BuildStep(
            "export",
            f"export to {plan.bundle}",
            lambda: exported() and _readable(plan.bundle),
            export,
        ),
    ]


def _minutes(minutes: float) -> str:
    return f"{minutes:.0f} min" if minutes >= 1 else "a minute or less"


def build_bundle(plan: BundlePlan, console: Console | None = None) -> Path:
    """Make the plan's bundle, running only the steps whose outputs are missing or stale.

    Each step shows its own progress bars; before the first, the measured duration of what
    is left is printed. Returns the bundle folder.
    """
    console = console or Console(stderr=True)
    steps = build_steps(plan)
    todo = [step for step in steps if not step.is_done()]
    if not todo:
        return plan.bundle
    left = sum(plan.minutes[step.name] for step in todo)
    console.print(
        f"Building the default bundle {plan.bundle} ({len(todo)} of {len(steps)} steps left): "
        f"about {_minutes(left)} on 2 CPU cores, once; later runs reuse it."
    )
    for number, step in enumerate(steps, start=1):
        if step.is_done():
            continue
        minutes = _minutes(plan.minutes[step.name])
        console.rule(f"[{number}/{len(steps)}] {step.title} (about {minutes})")
        started = time.perf_counter()
        step.run()
        console.print(f"{step.title}: {(time.perf_counter() - started) / 60:.1f} min")
    return plan.bundle
