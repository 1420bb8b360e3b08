"""Synthetic data → readers → training → checkpoint → resume → evaluation, on CPU."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from training.body import load_body_model
from training.evaluation.predict import predict_dataset
from training.evaluation.scoring import score
from training.recipes import load_recipe
from training.synth.generate import generate_dataset
from training.train.checkpoint import BEST, LATEST, load_network
from training.train.loop import train

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "support" / "recipes"
STEPS_BEFORE_RESUME, STEPS = 2, 4


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synth")
    common = {"frames_per_video": 10, "people": (1, 2), "image_size": (160, 120), "progress": False}
    generate_dataset(folder, num_videos=2, seed=0, split="train", **common)
    generate_dataset(folder, num_videos=1, seed=1, split="val", **common)
    return folder


def recipe_file(tmp_path: Path, base: str, data: Path) -> Path:
    path = tmp_path / f"{base}_e2e.yaml"
    recipe = {
        "extends": str(TINY / f"{base}.yaml"),
        "name": f"{base}_e2e",
        "training": {"clip_length": 4, "clip_stride": 2, "batch_size": 2, "epochs": 2,
                     "iterations_per_epoch": 2, "lr": 1e-3, "num_workers": 0},
        "data": {"train": [str(data / "synth_train_db.pt")],
                 "val": [str(data / "synth_val_db.pt")],
                 "motion": [], "body": "standin", "crop_size": 64, "crop_scale": 1.2},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.parametrize("base", ["maed_tiny", "spsnet_tiny_frames"])
def test_synthesize_train_resume_evaluate(tmp_path, data, base):
    recipe = load_recipe(recipe_file(tmp_path, base, data))
    run = tmp_path / "run"
    first = train(recipe, run, max_iterations=STEPS_BEFORE_RESUME, device="cpu")
    assert first.iterations == STEPS_BEFORE_RESUME
    assert (run / LATEST).is_file()
    resumed = train(recipe, run, resume=True, device="cpu")
    assert resumed.iterations == STEPS
    assert (run / BEST).is_file()
    assert all(math.isfinite(value) for value in resumed.losses.values())

    loaded_recipe, network = load_network(run / BEST)
    assert loaded_recipe == recipe
    predictions, truth = predict_dataset(network, recipe, data / "synth_val_db.pt")
    table = score(predictions, truth, load_body_model("standin"))
    assert table["frames"] == len(truth["vid_name"])
    for column in ("pa_mpjpe", "mpjpe", "pve", "accel", "accel_error"):
        assert math.isfinite(table[column])
        assert table[column] > 0  # an untrained network is not exact


def test_eval_command_prints_and_writes_the_table(tmp_path, data):
    recipe = load_recipe(recipe_file(tmp_path, "maed_tiny", data))
    train(recipe, tmp_path / "run", max_iterations=1, device="cpu")
    out = tmp_path / "table.json"
    result = subprocess.run(
        [sys.executable, "-m", "meshcast", "eval", str(tmp_path / "run" / LATEST),
         "--data", str(data / "synth_val_db.pt"), "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "PA-MPJPE" in result.stdout
    assert "ACCEL_ERR" in result.stdout
    report = json.loads(out.read_text())
    assert report["recipe"] == "maed_tiny_e2e"
    assert report["body"] == "standin"
    assert report["pa_mpjpe"] > 0


def test_features_command_adds_per_frame_features(tmp_path, data):
    recipe = load_recipe(recipe_file(tmp_path, "maed_tiny", data))
    train(recipe, tmp_path / "run", max_iterations=1, device="cpu")
    result = subprocess.run(
        [sys.executable, "-m", "meshcast", "features", str(tmp_path / "run" / LATEST),
         str(data / "synth_val_db.pt"), "--suffix", f"_{tmp_path.name}"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    from training.data.dataset_file import read_dataset_file

    arrays = read_dataset_file(data / f"synth_val_db_{tmp_path.name}.pt")
    assert arrays["features"].shape == (len(arrays["vid_name"]), recipe.model.embed_dim)
    assert Path(arrays["img_name"][0]).is_file()


def test_torchrun_trains_with_two_processes(tmp_path, data):
    """DDP as users launch it (`torchrun … meshcast train`), on CPU over gloo: two processes
    share the steps, only rank 0 writes, and the checkpoint holds one network."""
    recipe_path = recipe_file(tmp_path, "spsnet_tiny_frames", data)
    run = tmp_path / "run"
    result = subprocess.run(
        [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node", "2",
         "--no-python", str(Path(sys.executable).with_name("meshcast")), "train",
         str(recipe_path), "--run-dir", str(run), "--device", "cpu", "--max-iterations", "2"],
        capture_output=True, text=True, cwd=REPO, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    contents = torch.load(run / LATEST, weights_only=False)
    assert contents["iteration"] == 2
    assert not any(name.startswith("module.") for name in contents["network"])
    assert load_network(run / LATEST)[0].name == "spsnet_tiny_frames_e2e"
