"""The default bundle's build and `meshcast demo`, on a tiny plan: the real steps (synthetic
data, two trainings, features, export) at a size that runs in seconds, then the demo's run
on the committed clip with the bundle they made."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from meshcast.default_bundle import BundlePlan, build_bundle, build_steps, load_plan
from service.bundle import load_bundle
from tests.meshcast.test_run import meshcast, one_error_line
from training.train.checkpoint import BEST, LATEST

TINY = Path(__file__).resolve().parents[1] / "support" / "recipes"
pytestmark = pytest.mark.usefixtures("one_torch_thread")
STEPS = 2  # training steps of each tiny recipe
TINY_TRAINING = {"clip_stride": 2, "batch_size": 2, "epochs": 1, "iterations_per_epoch": STEPS,
                 "lr": 1e-3, "num_workers": 0}  # fmt: skip


def tiny_plan(root: Path) -> Path:
    """A plan file under ``root`` with the default plan's steps at a tiny size."""
    data, runs = root / "data", root / "runs"
    common = {"motion": [], "body": "standin", "crop_size": 64, "crop_scale": 1.2}
    # The default plan's recipes with the tiny recipes' widths and a few steps.
    widths = yaml.safe_load((TINY / "spsnet_tiny.yaml").read_text())["model"]
    del widths["encoder"], widths["feature_dim"]
    encoder = {
        "extends": "spsnet_image_cpu",
        "name": "tiny_encoder",
        "model": widths,
        "training": {**TINY_TRAINING, "clip_length": 1},
        "data": {"train": [str(data / "synth_train_db.pt")],
                 "val": [str(data / "synth_val_db.pt")], **common},
    }  # fmt: skip
    model = {
        "extends": "spsnet_cpu",
        "name": "tiny_model",
        "model": widths,
        "training": {**TINY_TRAINING, "clip_length": 4,
                     "init_from": str(runs / "tiny_encoder" / BEST)},
        "data": {"train": [str(data / "synth_train_db_features.pt")],
                 "val": [str(data / "synth_val_db_features.pt")], **common},
    }  # fmt: skip
    for recipe in (encoder, model):
        (root / f"{recipe['name']}.yaml").write_text(yaml.safe_dump(recipe))
    plan = {
        **yaml.safe_load(load_plan().model_dump_json()),
        "bundle": str(root / "bundle"),
        "data_dir": str(data),
        "runs_dir": str(runs),
        "frames_per_video": 8,
        "image_size": [160, 120],
        "datasets": [{"split": "train", "videos": 2, "seed": 0, "clips": ["walk"]},
                     {"split": "val", "videos": 1, "seed": 1, "clips": ["walk"]}],
        "encoder_recipe": str(root / "tiny_encoder.yaml"),
        "model_recipe": str(root / "tiny_model.yaml"),
    }  # fmt: skip
    path = root / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[BundlePlan, Path, str]:
    plan_file = tiny_plan(tmp_path_factory.mktemp("plan"))
    plan = load_plan(plan_file)
    console = Console(record=True, width=200)
    build_bundle(plan, console)
    return plan, plan_file, console.export_text()


def test_the_built_plan_in_the_repository_is_valid() -> None:
    plan = load_plan()
    assert {d.split for d in plan.datasets} >= {"train", "val"}
    assert set(plan.minutes) == {step.name for step in build_steps(plan)}


def test_a_build_runs_every_step_and_makes_a_bundle_that_loads(built) -> None:
    plan, _, log = built
    for number in range(1, 6):
        assert f"[{number}/5]" in log
    assert all(step.is_done() for step in build_steps(plan))
    bundle = load_bundle(plan.bundle)
    assert bundle.manifest.recipe == "tiny_model"
    encoder_run = plan.runs_dir / "tiny_encoder"
    assert str(encoder_run / BEST) in json.dumps(bundle.manifest.provenance.model_dump(mode="json"))


def test_a_second_build_runs_nothing(built) -> None:
    plan, _, _ = built
    latest = plan.runs_dir / "tiny_model" / LATEST
    before = latest.stat().st_mtime_ns
    console = Console(record=True)
    build_bundle(plan, console)
    assert console.export_text() == ""
    assert latest.stat().st_mtime_ns == before


def test_a_newer_encoder_makes_its_features_and_the_bundle_stale(built) -> None:
    plan, _, _ = built
    steps = {step.name: step for step in build_steps(plan)}
    encoder_best = plan.runs_dir / "tiny_encoder" / BEST
    encoder_best.touch()
    try:
        assert steps["encoder"].is_done()
        assert steps["model"].is_done()
        assert not steps["features"].is_done()
        assert not steps["export"].is_done()
    finally:
        for stale in (*plan.data_dir.glob("*_features.pt"), plan.bundle / "manifest.json"):
            stale.touch()


def test_a_bundle_of_an_older_schema_is_exported_again(built) -> None:
    plan, _, _ = built
    steps = {step.name: step for step in build_steps(plan)}
    manifest = plan.bundle / "manifest.json"
    written = manifest.read_text()
    assert steps["export"].is_done()
    try:
        manifest.write_text(written.replace('"schema_version": 2', '"schema_version": 1', 1))
        assert not steps["export"].is_done()
    finally:
        manifest.write_text(written)


def test_demo_runs_the_clip_with_the_built_bundle(built, tmp_path) -> None:
    _, plan_file, _ = built
    out = tmp_path / "out"
    result = meshcast("demo", "--plan", str(plan_file), "--out", str(out))
    assert result.returncode == 0, result.stderr
    document = json.loads((out / "result.json").read_text())
    assert len(document["tracks"]) >= 2  # the clip's walkers
    assert list((out / "tracks").glob("*.glb"))
    assert (out / "preview.mp4").is_file()


def test_demo_with_a_missing_plan_is_one_line(tmp_path) -> None:
    line = one_error_line(meshcast("demo", "--plan", str(tmp_path / "none.yaml")))
    assert "none.yaml" in line
