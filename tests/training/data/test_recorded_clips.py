"""Recorded front-end output as training clips: runs found, laid out as the service lays them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.outputs.result_files import write_result_npz
from service.pipeline.crops import square_boxes
from service.pipeline.landmark_features import landmark_features
from service.pipeline.result import VideoResult
from tests.meshcast.test_run import meshcast, one_error_line
from tests.support.video_results import make_video_result
from training.body import load_body_model
from training.data.dataset_file import NUM_JOINTS_49, write_dataset_file
from training.data.flip import flip_pose
from training.data.landmark_clips import LandmarkClips, to_crop
from training.data.recorded_clips import (
    RecordedClips,
    RecordedRuns,
    mirror_landmarks,
    record_runs,
    with_recorded,
)
from training.recipes.schema import LandmarkDataConfig

CROP_SCALE = 1.2
VIDEO = "video000"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[VideoResult, dict, Path, Path]:
    """A result whose track ``i + 1`` is person ``p{i}`` of a dataset file (track 1: frames
    0-3; track 2: frames 1, 2 and 4, so two runs), and that dataset file."""
    result = make_video_result(load_body_model("standin"))
    folder = tmp_path_factory.mktemp("recorded")
    (folder / "results" / VIDEO).mkdir(parents=True)
    write_result_npz(result, folder / "results" / VIDEO / "result.npz")
    rng = np.random.default_rng(0)
    rows: dict[str, list[np.ndarray]] = {"vid_name": [], "frame_id": [], "bbox": []}
    for person, track in enumerate(result.tracks):
        centre = (track.boxes[:, :2] + track.boxes[:, 2:]) / 2
        size = track.boxes[:, 2:] - track.boxes[:, :2]
        rows["vid_name"].append(np.full(len(track), f"{VIDEO}_p{person}"))
        rows["frame_id"].append(track.frame_ids)
        rows["bbox"].append(np.concatenate([centre, size], axis=1))
    count = sum(len(track) for track in result.tracks)
    arrays = {
        "vid_name": np.concatenate(rows["vid_name"]),
        "frame_id": np.concatenate(rows["frame_id"]).astype(np.int64),
        "img_name": np.array([f"frame{i}.jpg" for i in range(count)]),
        "joints2D": rng.uniform(0.0, 90.0, (count, NUM_JOINTS_49, 3)).astype(np.float32),
        "joints3D": rng.normal(0.0, 1.0, (count, NUM_JOINTS_49, 4)).astype(np.float32),
        "pose": rng.normal(0.0, 0.3, (count, 72)).astype(np.float32),
        "shape": rng.normal(0.0, 1.0, (count, 10)).astype(np.float32),
        "bbox": np.concatenate(rows["bbox"]).astype(np.float32),
    }
    dataset = folder / "synth_train_db.pt"
    write_dataset_file(dataset, arrays)
    return result, arrays, dataset, folder / "results"


def test_runs_are_consecutive_frames_of_one_person_laid_out_as_the_service_does(
    recorded: tuple[VideoResult, dict, Path, Path],
) -> None:
    result, arrays, dataset, results = recorded
    runs = record_runs([(dataset, results)], CROP_SCALE, min_length=2)
    # track 2 skips frame 3: its frames 1-2 make a run, frame 4 alone is too short
    assert runs.lengths.tolist() == [4, 2]
    assert runs.starts.tolist() == [0, 4]
    first, second = result.tracks
    squares = square_boxes(first.boxes.astype(np.float64), CROP_SCALE)
    expected = landmark_features(
        first.landmarks.astype(np.float64), first.world_landmarks.astype(np.float64), squares
    )
    np.testing.assert_allclose(runs.landmarks[:4], expected, atol=1e-6)
    truth = np.arange(4)  # the dataset rows of person p0
    np.testing.assert_allclose(
        runs.keypoints_2d[:4], to_crop(arrays["joints2D"][truth, :, :2], squares), atol=1e-5
    )
    np.testing.assert_array_equal(runs.joints[:4], arrays["joints3D"][truth, :, :3])
    np.testing.assert_array_equal(runs.pose[4:], arrays["pose"][4:6])
    np.testing.assert_array_equal(runs.betas[4:], arrays["shape"][4:6])
    assert len(second) == 3


def test_too_short_runs_everywhere_are_an_error(recorded) -> None:
    _, _, dataset, results = recorded
    with pytest.raises(ValueError, match="no run of 5"):
        record_runs([(dataset, results)], CROP_SCALE, min_length=5)


def test_runs_survive_a_round_trip_and_a_foreign_file_is_named(recorded, tmp_path) -> None:
    _, _, dataset, results = recorded
    runs = record_runs([(dataset, results)], CROP_SCALE, min_length=2)
    back = RecordedRuns.load(runs.save(tmp_path / "runs.npz"))
    for name in RecordedRuns._fields:
        np.testing.assert_array_equal(getattr(back, name), getattr(runs, name))
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a file of recorded runs"):
        RecordedRuns.load(tmp_path / "other.npz")


def test_clips_are_windows_of_runs_some_mirrored(recorded) -> None:
    _, _, dataset, results = recorded
    runs = record_runs([(dataset, results)], CROP_SCALE, min_length=2)
    clips = RecordedClips(runs, clip_length=3, items=40, seed=0)  # only the 4-frame run fits
    mirrored = 0
    for index in range(len(clips)):
        clip = clips[index]
        landmarks, pose = clip["landmarks"].numpy(), clip["pose"].numpy()
        start = next(
            s
            for s in range(2)
            if np.allclose(pose, runs.pose[s : s + 3])
            or np.allclose(pose, flip_pose(runs.pose[s : s + 3]))
        )
        window = slice(start, start + 3)
        if np.allclose(landmarks, runs.landmarks[window]):
            np.testing.assert_allclose(pose, runs.pose[window])
        else:
            mirrored += 1
            np.testing.assert_allclose(mirror_landmarks(landmarks), runs.landmarks[window])
            np.testing.assert_allclose(flip_pose(pose), runs.pose[window], atol=1e-6)
        # one β a clip
        np.testing.assert_allclose(
            clip["betas"].numpy(), runs.betas[window].mean(0)[None].repeat(3, 0), rtol=1e-6
        )
    assert 5 < mirrored < 35
    # the same draw for the same index and epoch; another epoch draws again
    np.testing.assert_array_equal(clips[7]["landmarks"], clips[7]["landmarks"])
    draws = {clips[7]["landmarks"].numpy().tobytes()}
    for epoch in range(1, 8):
        clips.set_epoch(epoch)
        draws.add(clips[7]["landmarks"].numpy().tobytes())
    assert len(draws) > 1


def test_a_mix_holds_the_share_asked_for_and_tells_every_part_the_epoch(recorded, tmp_path):
    _, _, dataset, results = recorded
    path = record_runs([(dataset, results)], CROP_SCALE, min_length=2).save(tmp_path / "r.npz")
    synthetic = LandmarkClips(
        LandmarkDataConfig(kind="landmarks", clips=("walk",), train_items=12, cache_dir=None),
        3,
        split="train",
        seed=0,
    )
    mixed = with_recorded(synthetic, path, share=0.25, clip_length=3, seed=0)
    assert len(mixed) == 16  # 12 synthetic, 4 recorded
    mixed.set_epoch(3)
    assert synthetic.epoch == 3
    assert mixed.datasets[1].epoch == 3  # type: ignore[attr-defined]
    with pytest.raises(FileNotFoundError, match="make frontend-clips"):
        with_recorded(synthetic, tmp_path / "none.npz", share=0.5, clip_length=3, seed=0)


def test_the_command_records_runs_for_a_recipe(recorded, tmp_path) -> None:
    _, _, dataset, results = recorded
    out = tmp_path / "runs.npz"
    made = meshcast("record-frontend", str(out), "--videos", str(dataset), str(results))
    # the recipe's clips are 17 frames (16 and L_camera's shifted one): the 5-frame video has none
    assert made.returncode == 1
    assert "no run of 17" in one_error_line(made)
    assert not out.exists()
    wrong = meshcast("record-frontend", str(out), "--videos", str(dataset), str(results),
                     "--recipe", "spsnet_cpu")  # fmt: skip
    assert "not a keypoint recipe" in wrong.stderr
