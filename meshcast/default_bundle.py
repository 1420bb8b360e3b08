"""The default bundle that ``meshcast demo`` runs, made on first use from its plan file.

The plan (``meshcast/default_bundle.yaml``) names a recipe and the trained network that ships
with meshcast (its weights alone, ``meshcast/assets/``). On first use the bundle is exported
from that network, with the pretrained front-end and the body model: seconds, no training.
``--rebuild`` reproduces the network from its recipe instead: it trains it in the runs
folder (an interrupted run goes on where it stopped), evaluates it on held-out synthetic
landmark sequences, writes the weights and a record beside the run, and exports the bundle
from them. Each step is skipped when its output is already there and up to date.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, PositiveInt
from rich.console import Console

from meshcast.config_files import load_yaml_model

DEFAULT_PLAN = Path(__file__).parent / "default_bundle.yaml"
StepName = Literal["pretrain", "train", "evaluate", "export"]
NETWORK_FILE = "network.pt"  # a rebuilt network's weights, beside its run
RECORD_FILE = "record.json"  # what made them and what they reach


class Evaluation(BaseModel):
    """The held-out synthetic landmark sequences a rebuilt network is evaluated on."""

    model_config = ConfigDict(extra="forbid")

    sequences: PositiveInt
    frames: PositiveInt
    seed: int


class BundlePlan(BaseModel):
    """How the default bundle is made. ``network`` and ``record`` are relative to the plan
    file's folder; ``bundle`` and ``runs_dir`` to the working directory."""

    model_config = ConfigDict(extra="forbid")

    bundle: Path
    body: str
    recipe: str
    # The single-frame model the recipe starts from (its ``init_from``), trained first.
    pretrain_recipe: str
    network: Path  # the trained network that ships with meshcast (weights and recipe)
    record: Path  # its record: training, evaluation, digest
    runs_dir: Path
    evaluation: Evaluation
    minutes: dict[StepName, float]  # measured wall time of each step on 2 CPU cores


def load_plan(path: str | Path = DEFAULT_PLAN) -> BundlePlan:
    """Read and validate a plan file; its ``network`` and ``record`` made absolute."""
    path = Path(path)
    plan = load_yaml_model(BundlePlan, path)
    folder = path.resolve().parent
    return plan.model_copy(
        update={"network": folder / plan.network, "record": folder / plan.record}
    )


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
    an image bundle of an earlier meshcast, is exported again)."""
    from service.bundle import read_manifest

    try:
        read_manifest(bundle)
    except ValueError:
        return False
    return True


def _export_step(plan: BundlePlan, network: Path) -> BuildStep:
    def export() -> None:
        from export.bundle import export_bundle

        export_bundle(network, plan.body, plan.bundle)

    exported = _up_to_date([plan.bundle / "manifest.json"], [network])
    return BuildStep(
        "export",
        f"export to {plan.bundle}",
        lambda: exported() and _readable(plan.bundle),
        export,
    )


def rebuilt_network(plan: BundlePlan) -> Path:
    """Where ``--rebuild`` writes the network it trains."""
    return plan.runs_dir / plan.recipe / NETWORK_FILE


def _training_step(plan: BundlePlan, name: StepName, recipe_name: str) -> BuildStep:
    from training.recipes import load_recipe
    from training.train.checkpoint import LATEST, run_is_finished

    recipe = load_recipe(recipe_name)
    run_dir = plan.runs_dir / recipe.name

    def train() -> None:
        from training.train.loop import train as train_recipe

        # An interrupted run goes on exactly where it stopped.
        train_recipe(recipe, run_dir, resume=(run_dir / LATEST).exists(), device="cpu")

    return BuildStep(
        name, f"training {recipe.name}", lambda: run_is_finished(run_dir, recipe), train
    )


def build_steps(plan: BundlePlan, *, rebuild: bool = False) -> list[BuildStep]:
    """The plan's steps in order, each knowing when it is done and how to do it: the export
    of the shipped network, or (``rebuild``) training, evaluation and export."""
    if not rebuild:
        return [_export_step(plan, plan.network)]
    from training.train.checkpoint import BEST

    run_dir = plan.runs_dir / plan.recipe
    network, record = rebuilt_network(plan), run_dir / RECORD_FILE

    def evaluate() -> None:
        write_record(plan, run_dir / BEST, network, record)

    return [
        _training_step(plan, "pretrain", plan.pretrain_recipe),
        _training_step(plan, "train", plan.recipe),
        BuildStep(
            "evaluate",
            "evaluation on held-out synthetic landmarks",
            _up_to_date([network, record], [run_dir / BEST]),
            evaluate,
        ),
        _export_step(plan, network),
    ]


def write_record(plan: BundlePlan, checkpoint: Path, network: Path, record: Path) -> None:
    """The weights of ``checkpoint`` to ``network``, and their record to ``record``: recipe,
    steps, digest, and the papers' table on held-out sequences, exact and noisy."""
    from service.bundle import file_sha256
    from training.body import load_body_model
    from training.evaluation.landmark_sequences import evaluate_on_sequences
    from training.train.checkpoint import load_network, save_network_only

    save_network_only(checkpoint, network)
    recipe, model = load_network(network)
    body = load_body_model(plan.body)
    tables = {
        noise: evaluate_on_sequences(
            model, recipe, body, count=plan.evaluation.sequences,
            frames=plan.evaluation.frames, seed=plan.evaluation.seed, noise=noise,
        )
        for noise in ("exact", "noisy")
    }  # fmt: skip
    from training.train.checkpoint import read_checkpoint

    contents = read_checkpoint(network)
    record.write_text(
        json.dumps(
            {
                "recipe": recipe.name,
                "iterations": contents["iteration"],
                "network_sha256": file_sha256(network),
                "evaluation": {
                    "data": f"{plan.evaluation.sequences} held-out synthetic landmark sequences "
                    f"of {plan.evaluation.frames} frames (seed {plan.evaluation.seed}, the "
                    "recipe's val_clips), scored on the stand-in's 14 LSP joints (mm)",
                    **{
                        noise: {key: round(value, 1) for key, value in table.items()}
                        for noise, table in tables.items()
                    },
                },
                "made_by": "meshcast demo --rebuild --build-only",
            },
            indent=2,
        )
        + "\n"
    )


def _minutes(minutes: float) -> str:
    return f"{minutes:.0f} min" if minutes >= 1 else "a minute or less"


def build_bundle(
    plan: BundlePlan, console: Console | None = None, *, rebuild: bool = False
) -> Path:
    """Make the plan's bundle, running only the steps whose outputs are missing or stale.

    Before the first step, the measured duration of what is left is printed. Returns the
    bundle folder.
    """
    console = console or Console(stderr=True)
    steps = build_steps(plan, rebuild=rebuild)
    todo = [step for step in steps if not step.is_done()]
    if not todo:
        return plan.bundle
    left = sum(plan.minutes[step.name] for step in todo)
    console.print(
        f"Making the default bundle {plan.bundle} ({len(todo)} of {len(steps)} steps left): "
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
