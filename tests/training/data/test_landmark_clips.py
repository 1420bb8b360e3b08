"""Synthetic landmark clips: what the keypoint families train on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from training.body import BodyModel, load_body_model
from training.body.joint_sets import SPIN49_NAMES
from training.body.landmarks import BLAZEPOSE_NAMES, HIP_LANDMARKS
from training.body.skeleton import SMPL_CHAINS
from training.data.landmark_clips import (
    GUESSED_VISIBILITY,
    LandmarkClips,
    crop_squares,
    failed_frames,
    failed_skeletons,
    in_frame_share,
    swap_chains,
    tilt_body,
    to_crop,
    view_axes,
    world_turns,
)
from training.recipes import LandmarkDataConfig, LandmarkNoise
from training.synth.scene import sample_person

FRAMES = 6
EXACT = LandmarkNoise()
NOISY = LandmarkNoise(
    position=0.03, outlier_probability=0.05, outlier=0.15, world=0.04,
    hidden_probability=0.2, missed_frame_probability=0.2, box_shift=0.04, box_scale=0.08,
)  # fmt: skip


@pytest.fixture(scope="module")
def body() -> BodyModel:
    return load_body_model("standin")


def clips(
    body: BodyModel, noise: LandmarkNoise, cache: Path | None = None, world_axes: str = "camera"
) -> LandmarkClips:
    config = LandmarkDataConfig.model_validate(
        {
            "kind": "landmarks", "clips": ("walk", "jump"), "train_items": 4, "val_items": 2,
            "noise": noise, "world_axes": world_axes,
        }
    )  # fmt: skip
    return LandmarkClips(config, FRAMES, split="train", seed=3, body=body, cache_dir=cache)


def test_a_clip_holds_every_field_a_training_batch_needs(body: BodyModel) -> None:
    clip = clips(body, NOISY)[0]
    assert clip["landmarks"].shape == (FRAMES, 33, 6)
    assert clip["keypoints_2d"].shape == (FRAMES, 49, 3)
    assert clip["joints_3d"].shape == (FRAMES, 49, 4)
    assert clip["pose"].shape == (FRAMES, 72)
    assert clip["betas"].shape == (FRAMES, 10)
    assert all(value.dtype != torch.float64 for value in clip.values())
    assert clip["has_smpl"].all()


@pytest.mark.parametrize("world_axes", ["camera", "view"])
def test_exact_landmarks_agree_with_the_joint_labels_of_the_same_crop(
    body: BodyModel, world_axes: str
) -> None:
    clip = clips(body, EXACT, world_axes=world_axes)[1]
    landmarks, keypoints = clip["landmarks"], clip["keypoints_2d"]
    for name in ("left_hip", "right_knee", "left_wrist", "right_shoulder"):
        # the same joint of the body, projected into the same crop
        torch.testing.assert_close(
            landmarks[:, BLAZEPOSE_NAMES.index(name), :2],
            keypoints[:, SPIN49_NAMES.index(name), :2],
            atol=1e-4,
            rtol=0,
        )
    # the metric points are the points about the hips' midpoint, in the camera's axes or in
    # those of a camera looking straight at the hips
    world = landmarks[..., 3:]
    torch.testing.assert_close(world[:, list(HIP_LANDMARKS)].mean(dim=1), torch.zeros(FRAMES, 3))
    joints = clip["joints_3d"][..., :3].numpy().astype(np.float64)

    def joint(name: str) -> np.ndarray:
        return joints[:, SPIN49_NAMES.index(name)]

    hips = (joint("left_hip") + joint("right_hip")) / 2
    knee_row, ankle_row = BLAZEPOSE_NAMES.index("right_knee"), BLAZEPOSE_NAMES.index("right_ankle")
    shin = (joint("right_knee") - joint("right_ankle"))[:, None]
    if world_axes == "view":
        shin = view_axes(shin, hips)
        assert np.degrees(np.arccos(hips[:, 2] / np.linalg.norm(hips, axis=1))).max() > 1.0
    shin = shin[:, 0]
    torch.testing.assert_close(
        world[:, knee_row] - world[:, ankle_row],
        torch.from_numpy(shin).float(),
        atol=1e-5,
        rtol=0,
    )
    # a tight crop of a person in view: its landmarks lie inside the square
    assert landmarks[..., :2].abs().max() <= 1.0


def test_view_axes_look_straight_at_the_centre_and_keep_lengths() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0.0, 2.0, (50, 3)) + np.array([0.0, 0.0, 6.0])
    points = rng.normal(0.0, 0.5, (50, 7, 3))
    turned = view_axes(np.concatenate([centres[:, None], points], axis=1), centres)
    distance = np.linalg.norm(centres, axis=1)
    np.testing.assert_allclose(turned[:, 0], np.stack([0 * distance, 0 * distance, distance], 1),
                               atol=1e-9)  # fmt: skip
    np.testing.assert_allclose(np.linalg.norm(turned[:, 1:], axis=-1),
                               np.linalg.norm(points, axis=-1))  # fmt: skip
    on_axis = np.array([[0.0, 0.0, 4.0]])
    np.testing.assert_allclose(view_axes(points[:1], on_axis), points[:1], atol=1e-12)


def _angles(turns: np.ndarray) -> np.ndarray:
    return np.degrees(Rotation.from_matrix(turns).magnitude())


def test_failed_frames_come_in_runs_of_the_configured_length_and_share() -> None:
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    assert (failed_frames(50, EXACT, rng) == -1).all()
    assert rng.bit_generator.state == state  # noise that is off draws nothing
    failing = EXACT.model_copy(update={"failure_probability": 0.16, "failure_length": 4.0})
    runs = failed_frames(20_000, failing, rng)
    failed = runs >= 0
    assert failed.mean() == pytest.approx(0.16, abs=0.03)
    assert failed.sum() / len(np.unique(runs[failed])) == pytest.approx(4.0, rel=0.2)
    always = failing.model_copy(update={"failure_probability": 1.0})
    assert (failed_frames(50, always, rng) == 0).all()  # one run, never left


def test_world_turns_drift_as_configured_and_failed_runs_turn_far() -> None:
    rng = np.random.default_rng(2)
    none = np.full(20, -1)
    state = rng.bit_generator.state
    np.testing.assert_allclose(
        world_turns(20, none, EXACT, rng), np.broadcast_to(np.eye(3), (20, 3, 3))
    )
    assert rng.bit_generator.state == state  # a recipe without turns keeps its draws
    drifting = EXACT.model_copy(
        update={"world_drift": (0.0, 10.0, 0.0), "world_drift_correlation": 0.7}
    )
    yaw = Rotation.from_matrix(world_turns(20_000, np.full(20_000, -1), drifting, rng))
    yaw_angles = yaw.as_rotvec()[:, 1]
    assert np.degrees(yaw_angles.std()) == pytest.approx(10.0, rel=0.1)
    assert np.corrcoef(yaw_angles[1:], yaw_angles[:-1])[0, 1] == pytest.approx(0.7, abs=0.05)
    runs = np.array([-1, 0, 0, -1, 1, 1, 1, -1])
    angles = _angles(world_turns(len(runs), runs, EXACT, rng))
    assert (angles[runs >= 0] >= 60.0 - 1e-6).all()
    assert (angles[runs < 0] < 1e-6).all()
    turns = world_turns(len(runs), runs, EXACT, rng)
    np.testing.assert_allclose(turns[1], turns[2])  # one turn a run
    assert not np.allclose(turns[2], turns[4])


def test_failed_skeletons_move_only_failed_frames_and_one_way_a_run() -> None:
    rng = np.random.default_rng(3)
    crop = rng.uniform(-0.8, 0.8, (6, 33, 2))
    runs = np.array([-1, 0, 0, -1, 1, -1])
    wrong = EXACT.model_copy(
        update={"failure_turn": 60.0, "failure_scale": (0.2, 0.9), "failure_shift": 0.1,
                "failure_mirror_probability": 1.0}
    )  # fmt: skip
    moved = failed_skeletons(crop, runs, 1.0, wrong, rng)
    np.testing.assert_array_equal(moved[runs < 0], crop[runs < 0])
    assert not np.allclose(moved[runs >= 0], crop[runs >= 0])

    # frames 1 and 2 share one similarity: distances between landmarks scale alike
    def spread(frame: np.ndarray) -> float:
        return float(np.linalg.norm(frame - frame.mean(axis=0), axis=1).sum())

    assert spread(moved[1]) / spread(crop[1]) == pytest.approx(
        spread(moved[2]) / spread(crop[2]), rel=1e-9
    )
    assert 0.2 - 1e-9 <= spread(moved[1]) / spread(crop[1]) <= 0.9 + 1e-9


def test_noise_hides_landmarks_and_drops_whole_frames(body: BodyModel) -> None:
    noise = NOISY.model_copy(update={"hidden_probability": 1.0})
    landmarks = clips(body, noise)[0]["landmarks"]
    assert (landmarks[..., 2] <= GUESSED_VISIBILITY[1]).all()
    dropped = clips(body, NOISY.model_copy(update={"missed_frame_probability": 1.0}))[0]
    assert (dropped["landmarks"] == 0).all()


def test_an_item_is_fixed_by_its_seed_and_epoch_and_only_its_noise_changes(
    body: BodyModel,
) -> None:
    data = clips(body, NOISY)
    first, again = data[2], data[2]
    torch.testing.assert_close(first["landmarks"], again["landmarks"])
    data.set_epoch(1)
    later = data[2]
    torch.testing.assert_close(later["betas"], first["betas"])  # the same posed clip …
    posed = torch.from_numpy(data.posed.pose[2])  # … whose frames both draws are a window of
    for draw in (first, later):
        starts = [
            start
            for start in range(len(posed) - FRAMES + 1)
            if torch.equal(posed[start : start + FRAMES], draw["pose"])
        ]
        assert starts
    assert not torch.equal(later["landmarks"], first["landmarks"])  # its noise drawn anew


def test_posed_clips_are_cached_and_read_back(body: BodyModel, tmp_path: Path) -> None:
    made = clips(body, EXACT, tmp_path)
    posed = made.posed
    (cached,) = tmp_path.glob("landmarks_train_*.npz")
    read = clips(body, EXACT, tmp_path)
    for name, value in read.posed._asdict().items():
        np.testing.assert_array_equal(value, getattr(posed, name))
    assert cached.stat().st_size > 0


def test_squares_and_crop_coordinates() -> None:
    boxes = np.array([[10.0, 20.0, 30.0, 60.0]])
    squares = crop_squares(boxes, 1.5)
    np.testing.assert_allclose(squares, [[20.0, 40.0, 60.0]])
    edge = to_crop(np.array([[[50.0, 40.0], [20.0, 10.0]]]), squares)
    np.testing.assert_allclose(edge, [[[1.0, 0.0], [0.0, -1.0]]])


def test_a_person_stays_in_the_frame_so_the_crop_coordinates_stay_bounded(
    body: BodyModel,
) -> None:
    data = clips(body, EXACT)
    posed = data.posed
    width, height = posed.frame_size[0]
    for item in range(len(data)):
        boxes = posed.boxes[item]
        assert (boxes[:, 2] - boxes[:, 0] >= 1).all()
        share = in_frame_share(posed.landmark_pixels[item], width, height)
        assert share.min() > 0.3  # the landmarks' box, a little inside the body's
        assert data[item]["keypoints_2d"][..., :2].abs().max() < 3.0


def test_in_frame_share() -> None:
    pixels = np.array([[[-10.0, 0.0], [10.0, 10.0]]])  # half of a 20 × 10 box left of the frame
    np.testing.assert_allclose(in_frame_share(pixels, 100, 100), [0.5])


def test_swapped_chains_play_the_donor_and_the_rest_stays(body: BodyModel) -> None:
    rng = np.random.default_rng(0)
    person = sample_person(rng, FRAMES, 30.0, ("walk",))
    donor = sample_person(rng, FRAMES, 30.0, ("cartwheel",))
    every = swap_chains(person, donor, 1.0, rng).pose.reshape(FRAMES, 24, 3)
    none = swap_chains(person, donor, 0.0, rng).pose.reshape(FRAMES, 24, 3)
    chains = [joint for joints in SMPL_CHAINS.values() for joint in joints]
    np.testing.assert_array_equal(every[:, chains], donor.pose.reshape(FRAMES, 24, 3)[:, chains])
    np.testing.assert_array_equal(every[:, 0], person.pose.reshape(FRAMES, 24, 3)[:, 0])
    np.testing.assert_array_equal(none, person.pose.reshape(FRAMES, 24, 3))


def test_a_tilted_body_turns_whole_about_a_horizontal_axis_within_its_bound() -> None:
    rng = np.random.default_rng(1)
    person = sample_person(rng, FRAMES, 30.0, ("walk",))
    tilted = tilt_body(person, 40.0, rng)
    before, after = person.pose.reshape(FRAMES, 24, 3), tilted.pose.reshape(FRAMES, 24, 3)
    np.testing.assert_array_equal(after[:, 1:], before[:, 1:])
    turn = Rotation.from_rotvec(after[:, 0]) * Rotation.from_rotvec(before[:, 0]).inv()
    angles = turn.magnitude()
    assert 0.0 < angles[0] <= np.radians(40.0) + 1e-6
    np.testing.assert_allclose(angles, angles[0], atol=1e-5)  # one turn for the whole clip
    axes = turn.as_rotvec() / angles[:, None]
    np.testing.assert_allclose(axes[:, 1], 0.0, atol=1e-5)  # horizontal: Y is up


@pytest.mark.parametrize("variety", [{"chain_swap_probability": 1.0}, {"tilt_probability": 1.0}])
def test_only_training_clips_get_the_variety(body: BodyModel, variety: dict[str, float]) -> None:
    def split(name: str, **changes: float) -> LandmarkClips:
        config = LandmarkDataConfig(
            kind="landmarks", clips=("walk", "jump"), train_items=2, val_items=2, **changes
        )
        return LandmarkClips(config, FRAMES, split=name, seed=3, body=body)

    assert not np.array_equal(split("train").posed.pose, split("train", **variety).posed.pose)
    np.testing.assert_array_equal(split("val").posed.pose, split("val", **variety).posed.pose)
