"""The default bundle and `meshcast demo`: the plan in the repository and the network it ships,
and, on a plan of its own (the shipped network, a bundle in a temporary folder), the export on
first use, its reuse, its staleness, and the demo's run on the committed clip, whose meshes must
sit on the walkers. `--rebuild` trains the real recipes for about 50 minutes: make test-slow."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from rich.console import Console

from meshcast.default_bundle import BundlePlan, build_bundle, build_steps, load_plan
from service.bundle import LandmarkInputSpec, file_sha256, load_bundle
from tests.meshcast.test_run import meshcast, one_error_line
from tests.support.walkers import write_walkers_video
from training.evaluation.landmark_agreement import landmark_agreement
from training.train.checkpoint import load_network

pytestmark = pytest.mark.usefixtures("one_torch_thread")
MIN_WALKERS = 6  # tracks on the committed clip: the default bundle's run keeps 9
# The limb joints' median distance from the detected landmarks on the clip, as a share of the
# box height: 2.8 % measured (docs/results.md), 3.1 % and 4.0 % with the earlier networks; room
# for other machines.
MAX_MEDIAN_DISAGREEMENT = 0.035
RECORD_TOLERANCE_MM = 0.5  # the record's figures are rounded to 0.1 mm; float arithmetic
# The README's whole-pipeline videos (held-out motions, seed 100, 640×480, 64 frames); video000
# (two people): recall 1.00, PA-MPJPE 97.5 mm, MPJPE 171.8 mm measured (102.7 and 181.5 with the
# network before); room for other machines.
HELD_OUT_VIDEO = [
    "--split", "test", "--videos", "2", "--frames", "64", "--size", "640x480", "--people", "1-3",
    "--seed", "100", "--clips", "run,kick,dance_b,getup_faceup",
]  # fmt: skip
MIN_RECALL = 0.95
# video001: a kicking person who fills the frame and leaves it; tracks of 8 frames keep him
# (recall 0.55 measured), VIBE's 25 found nobody.
MIN_CLOSE_UP_RECALL = 0.45
MAX_PIPELINE_PA_MPJPE_MM = 105.0
MAX_PIPELINE_MPJPE_MM = 190.0
# video000 regressed with the truth's metric points (40.1 mm measured) and all its landmarks
# (37.7 mm; 56.4 and 53.3 with the network before): docs/results.md, "What the front-end's
# error costs".
MAX_TRUE_WORLD_PA_MPJPE_MM = 50.0
MAX_TRUE_PA_MPJPE_MM = 48.0


def tiny_plan(root: Path) -> Path:
    """A plan file under ``root`` whose bundle, record and runs are there, and whose network is
    a copy of the shipped one (the tests touch it)."""
    network = root / "network.pt"
    shutil.copyfile(load_plan().network, network)
    plan = {
        **yaml.safe_load(load_plan().model_dump_json()),
        "bundle": str(root / "bundle"),
        "network": str(network),
        "record": str(root / "record.json"),
        "runs_dir": str(root / "runs"),
    }
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


def test_the_plan_in_the_repository_ships_its_trained_network_and_record() -> None:
    plan = load_plan()
    assert set(plan.minutes) == {step.name for step in build_steps(plan, rebuild=True)}
    recipe, _ = load_network(plan.network)
    assert recipe.name == plan.recipe
    record = json.loads(plan.record.read_text())
    assert record["recipe"] == plan.recipe
    assert record["network_sha256"] == file_sha256(plan.network)
    contents = torch.load(plan.network, map_location="cpu", weights_only=False)
    assert set(contents) == {"recipe", "network", "iteration"}  # weights only, no optimiser
    assert record["iterations"] == contents["iteration"]
    # the bounds, which the README's figures meet (44.7 and 63.5 mm)
    assert record["evaluation"]["exact"]["pa_mpjpe"] <= 45.0
    assert record["evaluation"]["exact"]["mpjpe"] <= 80.0


def test_the_shipped_network_scores_what_its_record_says_on_held_out_landmarks() -> None:
    from training.body import load_body_model
    from training.evaluation.landmark_sequences import evaluate_on_sequences

    plan = load_plan()
    recipe, network = load_network(plan.network)
    evaluation = plan.evaluation
    table = evaluate_on_sequences(
        network, recipe, load_body_model(plan.body), count=evaluation.sequences,
        frames=evaluation.frames, seed=evaluation.seed, noise="exact",
    )  # fmt: skip
    recorded = json.loads(plan.record.read_text())["evaluation"]["exact"]
    for metric in ("pa_mpjpe", "mpjpe", "accel_error"):
        assert table[metric] == pytest.approx(recorded[metric], abs=RECORD_TOLERANCE_MM)


def test_first_use_exports_a_landmark_bundle_that_loads(built) -> None:
    plan, _, log = built
    assert "[1/1] export" in log
    assert all(step.is_done() for step in build_steps(plan))
    bundle = load_bundle(plan.bundle)
    assert isinstance(bundle.manifest.input, LandmarkInputSpec)
    assert bundle.manifest.variants["fp32"].encoder is None
    assert str(plan.network) in json.dumps(bundle.manifest.provenance.model_dump(mode="json"))


def test_a_second_use_exports_nothing(built) -> None:
    plan, _, _ = built
    manifest = plan.bundle / "manifest.json"
    before = manifest.stat().st_mtime_ns
    console = Console(record=True)
    build_bundle(plan, console)
    assert console.export_text() == ""
    assert manifest.stat().st_mtime_ns == before


def test_a_newer_network_or_an_older_schema_makes_the_bundle_stale(built) -> None:
    plan, _, _ = built
    (export,) = build_steps(plan)
    manifest = plan.bundle / "manifest.json"
    written = manifest.read_text()
    plan.network.touch()
    try:
        assert not export.is_done()
    finally:
        manifest.touch()
    assert export.is_done()
    try:
        manifest.write_text(written.replace('"schema_version": 3', '"schema_version": 2', 1))
        assert not export.is_done()
    finally:
        manifest.write_text(written)


def test_demo_puts_a_body_on_the_clips_walkers(built, tmp_path) -> None:
    _, plan_file, _ = built
    out = tmp_path / "out"
    result = meshcast("demo", "--plan", str(plan_file), "--out", str(out), "--formats", "npz")
    assert result.returncode == 0, result.stderr
    agreement = landmark_agreement(out / "result.npz")
    assert agreement.tracks >= MIN_WALKERS
    # The meshes sit on the people: their limb joints against the detected landmarks.
    assert agreement.median is not None
    assert agreement.median <= MAX_MEDIAN_DISAGREEMENT


def test_the_whole_pipeline_follows_the_people_of_held_out_synthetic_videos(
    built, tmp_path
) -> None:
    plan, _, _ = built
    data = tmp_path / "synth"
    made = meshcast("synth", str(data), *HELD_OUT_VIDEO)
    assert made.returncode == 0, made.stderr

    def run_and_score(video: str) -> dict[str, float]:
        out = tmp_path / video
        ran = meshcast("run", str(data / "test" / "videos" / f"{video}.mp4"), "--bundle",
                       str(plan.bundle), "--out", str(out), "--formats", "npz")  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        scored = meshcast("score", str(out), str(data / "synth_test_db.pt"), "--video", video)
        assert scored.returncode == 0, scored.stderr
        return json.loads((out / f"score_{video}.json").read_text())

    score = run_and_score("video000")
    assert score["people_found"] == score["people"] == 2
    assert score["recall"] >= MIN_RECALL
    assert score["pa_mpjpe"] <= MAX_PIPELINE_PA_MPJPE_MM
    assert score["mpjpe"] <= MAX_PIPELINE_MPJPE_MM

    def score_with_truth(video: str, swap: str) -> dict[str, float]:
        swapped = meshcast("score", str(tmp_path / video), str(data / "synth_test_db.pt"),
                           "--video", video, "--truth-landmarks", swap,
                           "--bundle", str(plan.bundle))  # fmt: skip
        assert swapped.returncode == 0, swapped.stderr
        return json.loads((tmp_path / video / f"score_{video}_truth_{swap}.json").read_text())

    # The same tracks regressed again with the truth's metric points, then all its landmarks:
    # the front-end's error, not the network, is most of the pipeline's.
    for swap, bound in (("world", MAX_TRUE_WORLD_PA_MPJPE_MM), ("all", MAX_TRUE_PA_MPJPE_MM)):
        truth = score_with_truth("video000", swap)
        assert truth["matched_frames"] == score["matched_frames"]
        assert truth["pa_mpjpe"] <= bound < score["pa_mpjpe"]
    close_up = run_and_score("video001")
    assert close_up["people_found"] == close_up["people"] == 1
    assert close_up["recall"] >= MIN_CLOSE_UP_RECALL
    # BlazePose fails on some of the kicker's frames: without them the meshes come closer.
    without_failures = score_with_truth("video001", "failed")
    assert without_failures["matched_frames"] == close_up["matched_frames"]
    assert without_failures["pa_mpjpe"] < close_up["pa_mpjpe"]


def test_demo_with_a_missing_plan_is_one_line(tmp_path) -> None:
    line = one_error_line(meshcast("demo", "--plan", str(tmp_path / "none.yaml")))
    assert "none.yaml" in line


# The rebuilt network's figures may differ from the shipped one's by this much (mm): the
# training is seeded, but a run on other cores, threads or library versions sums in another
# order and drifts.
REBUILD_TOLERANCE_MM = 10.0
REBUILD_TIMEOUT_S = 3 * 3600


@pytest.mark.slow
def test_rebuild_reproduces_the_shipped_network_from_its_recipes(tmp_path: Path) -> None:
    """`meshcast demo --rebuild --build-only` from scratch: about 50 minutes on 2 cores."""
    plan = load_plan()
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(
        yaml.safe_dump(
            {
                **yaml.safe_load(plan.model_dump_json()),
                "bundle": str(tmp_path / "bundle"),
                "runs_dir": "runs",  # the recipes' init_from paths are relative to runs/
            }
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "meshcast", "demo", "--plan", str(plan_file), "--rebuild",
         "--build-only"],
        capture_output=True, text=True, cwd=tmp_path, timeout=REBUILD_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rebuilt = json.loads((tmp_path / "runs" / plan.recipe / "record.json").read_text())
    shipped = json.loads(plan.record.read_text())
    for noise in ("exact", "noisy"):
        for metric in ("pa_mpjpe", "mpjpe"):
            assert rebuilt["evaluation"][noise][metric] == pytest.approx(
                shipped["evaluation"][noise][metric], abs=REBUILD_TOLERANCE_MM
            )
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.manifest.recipe == plan.recipe


def test_truth_landmarks_without_a_bundle_is_a_usage_error(tmp_path) -> None:
    scored = meshcast("score", str(tmp_path), str(tmp_path / "db.pt"), "--video", "video000",
                      "--truth-landmarks", "world")  # fmt: skip
    assert scored.returncode == 2  # click's usage errors
    assert "meshcast score: error: --truth-landmarks needs the --bundle" in scored.stderr


def test_run_without_a_bundle_makes_and_uses_the_default_one(tmp_path) -> None:
    """`meshcast run VIDEO`, as the README's first screen has it: the default bundle made in
    the working directory on first use, the outputs in out/VIDEO-NAME."""
    video = write_walkers_video(tmp_path / "walkers.mp4", frames=12)
    result = subprocess.run(
        [sys.executable, "-m", "meshcast", "run", video.name, "--formats", "json"],
        capture_output=True, text=True, cwd=tmp_path, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Making the default bundle bundles/default" in result.stderr
    assert load_bundle(tmp_path / "bundles" / "default").manifest.recipe == load_plan().recipe
    people = json.loads((tmp_path / "out" / "walkers" / "result.json").read_text())["tracks"]
    assert len(people) >= 1
