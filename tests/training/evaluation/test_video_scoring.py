"""Scoring a pipeline result against a synthetic video's truth: matching boxes by IoU,
identity switches, and a hand-made result scored against truth made from its own bodies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from service.outputs.result_files import write_result_npz
from service.pipeline.result import VideoResult
from tests.support.video_results import TRACKS, make_video_result, torch_mesh_vertices
from training.body import BodyModel, load_body_model
from training.data.dataset_file import NUM_JOINTS_49, write_dataset_file
from training.evaluation.video_scoring import (
    MIN_MATCH_IOU,
    VideoNotFoundError,
    VideoScore,
    identity_switches,
    match_by_iou,
    person_names,
    score_video_result,
)

VIDEO = "video000"
# A person the pipeline never found, in the frames of the first track: far to the right.
MISSED_PERSON = "video000_p9"
MISSED_BOX = (1000.0, 1000.0, 20.0, 40.0)  # cx, cy, w, h: outside the frame, IoU 0 with all
EXACT_MM = 1e-3  # float32 joints posed twice by the same body agree to well under a micron


def boxes(*corners: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(corners, dtype=np.float64)


def test_boxes_pair_within_their_frame_only() -> None:
    predicted, true = match_by_iou(
        np.array([0, 1]), boxes((0, 0, 10, 10), (0, 0, 10, 10)),
        np.array([1, 2]), boxes((0, 0, 10, 10), (0, 0, 10, 10)),
    )  # fmt: skip
    assert predicted.tolist() == [1]
    assert true.tolist() == [0]


def test_hungarian_maximises_the_total_overlap() -> None:
    # Boxes of one height side by side, IoU in brackets: prediction A overlaps truth 1 (0.85)
    # a little more than truth 2 (0.79); prediction B overlaps truth 1 (0.43), truth 2 only
    # by 0.25. Greedy would pair A with truth 1 and leave B unmatched; the assignment pairs A
    # with truth 2 and B with truth 1 (0.79 + 0.43 > 0.85 + 0.25).
    truth_1, truth_2 = (0, 0, 10, 10), (2, 0, 12, 10)
    a, b = (0.8, 0, 10.8, 10), (-4, 0, 6, 10)
    predicted, true = match_by_iou(
        np.zeros(2, int), boxes(a, b), np.zeros(2, int), boxes(truth_1, truth_2)
    )
    assert sorted(zip(predicted.tolist(), true.tolist(), strict=True)) == [(0, 1), (1, 0)]


def test_pairs_under_the_minimum_overlap_are_refused() -> None:
    # Two 10 × 10 boxes x apart overlap by IoU (10 − x) / (10 + x): MIN_MATCH_IOU at x_min.
    side, step = 10.0, 0.1
    x_min = side * (1 - MIN_MATCH_IOU) / (1 + MIN_MATCH_IOU)
    true_box = boxes((0, 0, side, side))
    one = np.zeros(1, int)
    for shift, pairs in ((x_min - step, 1), (x_min + step, 0)):
        predicted, _ = match_by_iou(one, boxes((shift, 0, shift + side, side)), one, true_box)
        assert len(predicted) == pairs, shift


def test_nothing_to_match_gives_empty_index_arrays() -> None:
    predicted, true = match_by_iou(np.zeros(0, int), np.zeros((0, 4)), np.zeros(1, int), boxes())
    assert predicted.dtype == true.dtype == np.int64
    assert len(predicted) == len(true) == 0


def test_identity_switches_count_changes_of_a_persons_track() -> None:
    # person a: tracks 1, 1, 2, 1 over frames 0-3 (given out of order): two switches;
    # person b: track 2 then 3 with a gap between: one; person c: one frame, none.
    people = np.array(["a", "b", "a", "a", "b", "a", "c"])
    frames = np.array([3, 0, 0, 2, 5, 1, 4])
    tracks = np.array([1, 2, 1, 2, 3, 1, 7])
    assert identity_switches(people, frames, tracks) == 3
    assert identity_switches(people, frames, np.ones(len(people), int)) == 0


def test_person_names_drop_the_return_suffix() -> None:
    names = np.array(["video003_p1", "video003_p1_2", "my_video_p12"])
    assert person_names(names).tolist() == ["video003_p1", "video003_p1", "my_video_p12"]
    with pytest.raises(ValueError, match="synthetic track"):
        person_names(np.array(["video003"]))


@pytest.fixture(scope="module")
def body() -> BodyModel:
    return load_body_model("standin")


@pytest.fixture(scope="module")
def result(body: BodyModel) -> VideoResult:
    return make_video_result(body)


@pytest.fixture(scope="module")
def files(
    body: BodyModel, result: VideoResult, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """The hand-made result's ``result.npz``, and a dataset file whose truth is its own tracks
    (person ``p{i}`` is track ``i + 1``) and one more person the result missed."""
    folder = tmp_path_factory.mktemp("video_scoring")
    npz = write_result_npz(result, folder / "result.npz", torch_mesh_vertices(body))
    rows: dict[str, list[np.ndarray]] = {"vid_name": [], "frame_id": [], "bbox": [], "j3d": []}
    for person, track in enumerate(result.tracks):
        with torch.no_grad():
            vertices = body(torch.from_numpy(track.rotmat), torch.from_numpy(track.betas)).vertices
            joints = body.regress_joints(vertices, "spin49").numpy()
        centre = (track.boxes[:, :2] + track.boxes[:, 2:]) / 2
        size = track.boxes[:, 2:] - track.boxes[:, :2]
        rows["vid_name"].append(np.full(len(track), f"{VIDEO}_p{person}"))
        rows["frame_id"].append(track.frame_ids)
        rows["bbox"].append(np.concatenate([centre, size], axis=1))
        rows["j3d"].append(joints + track.translation[:, None])  # camera frame, as synth's
    first = result.tracks[0]
    rows["vid_name"].append(np.full(len(first), MISSED_PERSON))
    rows["frame_id"].append(first.frame_ids)
    rows["bbox"].append(np.tile(MISSED_BOX, (len(first), 1)))
    rows["j3d"].append(rows["j3d"][0])
    joints3d = np.concatenate(rows["j3d"])
    count = len(joints3d)
    arrays = {
        "vid_name": np.concatenate(rows["vid_name"]),
        "frame_id": np.concatenate(rows["frame_id"]).astype(np.int64),
        "img_name": np.array([f"frame{i}.jpg" for i in range(count)]),
        "joints2D": np.zeros((count, NUM_JOINTS_49, 3), dtype=np.float32),
        "joints3D": np.concatenate([joints3d, np.ones((*joints3d.shape[:2], 1))], axis=2),
        "bbox": np.concatenate(rows["bbox"]).astype(np.float32),
    }
    dataset = folder / "synth_test_db.pt"
    write_dataset_file(dataset, arrays)
    return npz, dataset


def test_a_result_scored_against_its_own_bodies_is_exact(files, body) -> None:
    npz, dataset = files
    scored = score_video_result(npz, dataset, VIDEO, body=body)
    track_frames = sum(len(spec.frame_ids) for spec in TRACKS)
    missed_frames = len(TRACKS[0].frame_ids)
    assert scored.person_frames == track_frames + missed_frames
    assert scored.predicted_frames == scored.matched_frames == track_frames
    assert scored.recall == pytest.approx(track_frames / scored.person_frames)
    assert scored.precision == 1.0
    assert (scored.people, scored.people_found, scored.predicted_tracks) == (3, 2, len(TRACKS))
    assert scored.identity_switches == 0
    assert scored.mpjpe == pytest.approx(0.0, abs=EXACT_MM)
    assert scored.pa_mpjpe == pytest.approx(0.0, abs=EXACT_MM)
    assert scored.body == "standin"
    assert VideoScore.model_validate_json(scored.model_dump_json()) == scored


def test_an_unknown_video_or_a_missing_file_is_named(files, tmp_path) -> None:
    npz, dataset = files
    with pytest.raises(VideoNotFoundError, match=r"'video007'.*its videos: video000"):
        score_video_result(npz, dataset, "video007")
    with pytest.raises(FileNotFoundError, match="no pipeline result"):
        score_video_result(tmp_path / "result.npz", dataset, VIDEO)
    with pytest.raises(FileNotFoundError, match="no dataset file"):
        score_video_result(npz, tmp_path / "db.pt", VIDEO)
