"""How accurate `meshcast run` is end to end: a synthetic video with known bodies goes through
the whole pipeline (HOG, SORT, crops, the bundle's graphs) with a bundle trained here, and
`meshcast score` gives MPJPE and PA-MPJPE of the tracked people against the video's truth.

The bundle is a tiny MAED (an encoder that sees the crops, as a bundle must to run on video)
trained for a few seconds on a few synthetic walking videos. What it learns in that time
is the walker's mean pose and orientation, not each frame's pose (its ACCEL is near 0: see the
README's "What the CPU recipes reach"); the bounds below guard that, and the pipeline around it,
against regressions, with a margin over what was measured. They say nothing of the papers'
figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from export.bundle import export_bundle
from tests.meshcast.test_run import meshcast, one_error_line
from tests.support.bundles import TINY_RECIPES, tiny_bundle
from training.recipes import load_recipe
from training.synth.generate import generate_dataset
from training.train.checkpoint import LATEST
from training.train.loop import train

BASE_RECIPE = "maed_tiny"  # 64-pixel crops, a 16-wide backbone: trains and runs in seconds
VIDEO = "video000"  # the test split's only video
# The test video: one person walking, static camera, no occluder, 112-152 pixels tall in a
# 320 × 240 frame. HOG's 64 × 128 window holds a person about 96 pixels tall, so smaller people
# go unseen, and it misses the other clips' crawls and flips. Of the test split's seeds 0-19
# at these settings (one walker, 30 frames), HOG found the walker in all 30 frames for seeds 6,
# 10, 13, 15 and 16; 15 is the one without occluders or a moving camera. 30 frames make a
# track longer than the tracker's 25-frame minimum.
TEST_VIDEO: dict[str, Any] = {
    "num_videos": 1, "frames_per_video": 30, "people": (1, 1), "image_size": (320, 240),
    "clips": ("walk",), "split": "test", "seed": 15, "progress": False,
}  # fmt: skip
# Training: other walkers (the train split's seed 0) at the same size; 64 person-frames.
TRAIN_VIDEOS: dict[str, Any] = {**TEST_VIDEO, "num_videos": 4, "frames_per_video": 16,
                                "split": "train", "seed": 0}  # fmt: skip
TRAINING_STEPS = 60  # 7 s on one core; 20 steps gave PA-MPJPE 128 mm, 60 give 107


def recipe_changes(data: Path) -> dict[str, Any]:
    """What the tiny recipe needs to train here (and to export: its crop size and scale)."""
    return {
        "training": {"clip_length": 4, "clip_stride": 2, "batch_size": 4, "epochs": 1,
                     "iterations_per_epoch": TRAINING_STEPS, "lr": 1e-3, "num_workers": 0},
        "data": {"train": [str(data / "synth_train_db.pt")], "motion": [], "body": "standin",
                 "crop_size": 64, "crop_scale": 1.2},
    }  # fmt: skip


# Measured (`.venv/bin/pytest tests/meshcast/test_run_accuracy.py -s`, the same figures with
# OMP_NUM_THREADS=1 or 2): trained PA-MPJPE 106.7 mm, MPJPE 151.5 mm, 30/30 person-frames
# matched, one track; untrained (the same recipe, tiny_bundle's seeded weights) PA-MPJPE
# 329.1 mm, MPJPE 461.9 mm. The bounds leave about 17 % for other machines' float arithmetic
# and library versions.
MIN_RECALL = 0.9  # measured 1.0; a frame or two that HOG misses and SORT does not bridge
MAX_PA_MPJPE_MM = 125.0
MAX_MPJPE_MM = 180.0


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synth")
    generate_dataset(folder, **TRAIN_VIDEOS)
    generate_dataset(folder, **TEST_VIDEO)
    return folder


@pytest.fixture(scope="module")
def trained_bundle(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("trained")
    recipe_file = folder / "trained.yaml"
    recipe_file.write_text(yaml.safe_dump({"extends": str(TINY_RECIPES / f"{BASE_RECIPE}.yaml"),
                                           "name": "trained", **recipe_changes(data)}))  # fmt: skip
    summary = train(load_recipe(recipe_file), folder / "run", device="cpu")
    assert summary.iterations == TRAINING_STEPS
    export_bundle(folder / "run" / LATEST, "standin", folder / "bundle")
    return folder / "bundle"


@pytest.fixture(scope="module")
def untrained_bundle(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("untrained")
    return tiny_bundle(folder, "untrained", BASE_RECIPE, recipe_changes(data))


def run_and_score(bundle: Path, data: Path, out: Path, label: str) -> tuple[dict[str, Any], str]:
    """`meshcast run` on the test video, then `meshcast score`: the score's JSON and the
    table `meshcast score` printed."""
    video = data / "test" / "videos" / f"{VIDEO}.mp4"
    ran = meshcast("run", str(video), "--bundle", str(bundle), "--out", str(out),
                   "--formats", "npz")  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    scored = meshcast("score", str(out), str(data / "synth_test_db.pt"), "--video", VIDEO,
                      "--json", str(out / "score.json"))  # fmt: skip
    assert scored.returncode == 0, scored.stderr[-3000:]
    score = json.loads((out / "score.json").read_text())
    print(f"\n{label} bundle on {VIDEO}: PA-MPJPE {score['pa_mpjpe']:.1f} mm, "
          f"MPJPE {score['mpjpe']:.1f} mm, {score['matched_frames']}/{score['person_frames']} "
          f"person-frames, {score['predicted_tracks']} track(s)\n{scored.stdout}")  # fmt: skip
    return score, scored.stdout


@pytest.fixture(scope="module")
def trained(trained_bundle: Path, data: Path) -> tuple[dict[str, Any], str]:
    return run_and_score(trained_bundle, data, trained_bundle.parent / "out", "trained")


@pytest.fixture(scope="module")
def untrained(untrained_bundle: Path, data: Path) -> tuple[dict[str, Any], str]:
    return run_and_score(untrained_bundle, data, untrained_bundle.parent / "out", "untrained")


def test_the_walker_is_found_as_one_track(trained) -> None:
    score, _ = trained
    assert score["recall"] >= MIN_RECALL
    assert score["people_found"] == score["people"] == 1
    assert score["predicted_tracks"] == score["people"]
    assert score["identity_switches"] == 0


def test_the_trained_bundle_stays_within_its_measured_errors(trained) -> None:
    score, stdout = trained
    assert score["pa_mpjpe"] <= MAX_PA_MPJPE_MM
    assert score["mpjpe"] <= MAX_MPJPE_MM
    assert score["body"] == "standin"
    assert "PA-MPJPE" in stdout
    assert "MPJPE" in stdout


def test_training_beats_the_untrained_weights(trained, untrained) -> None:
    assert trained[0]["pa_mpjpe"] < untrained[0]["pa_mpjpe"]
    assert trained[0]["mpjpe"] < untrained[0]["mpjpe"]


def test_an_unknown_video_is_one_line(trained_bundle, data) -> None:
    out, dataset = trained_bundle.parent / "out", data / "synth_test_db.pt"
    line = one_error_line(meshcast("score", str(out), str(dataset), "--video", "video042"))
    assert "video042" in line
    assert VIDEO in line  # the videos it has


def test_a_missing_result_is_one_line(data, tmp_path) -> None:
    line = one_error_line(meshcast("score", str(tmp_path), str(data / "synth_test_db.pt"),
                                   "--video", VIDEO))  # fmt: skip
    assert "result.npz" in line
