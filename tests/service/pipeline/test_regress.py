"""The regression stage on real bundles: a tiny SPS-Net on frames (ResNet-50 on 32-pixel crops,
any window length) and a tiny MAED (a fixed 4-frame window), both on the stand-in body,
exported once for the module; and the keypoint families' tiny bundles, which read each track's
landmarks and no frame. The networks are untrained (seeded): the checks are of the plumbing,
against the graphs run directly and training's own geometry."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from service.bundle import CPU_PROVIDER, Bundle, Sessions, load_bundle
from service.pipeline.body import BodyMeshes
from service.pipeline.crops import cut_crops, square_boxes
from service.pipeline.landmark_features import track_landmark_features
from service.pipeline.landmarks import NUM_LANDMARKS
from service.pipeline.regress import (
    BODY_STAGE,
    ENCODER_STAGE,
    TEMPORAL_STAGE,
    FrameTimeline,
    RegressionConfig,
    regress_tracks,
)
from service.pipeline.result import TrackResult
from service.pipeline.smoothing import OneEuroConfig
from service.pipeline.tracking import Track
from service.pipeline.video import Frame
from tests.support.bundles import landmark_bundle, tiny_bundle
from training.evaluation.predict import window_weights
from training.geometry import (
    axis_angle_to_rotmat,
    nearest_rotation,
    orig_cam_to_crop_cam,
    weak_perspective_project,
)
from training.synth.backgrounds import STREET_PATH

REPO = Path(__file__).resolve().parents[3]
TOLERANCE = 1e-5
WIDTH, HEIGHT, FPS = 160, 120, 25.0
VIDEO_FRAMES = 40
SPSNET_WINDOW = 8
# Tiny recipes: SPS-Net on frames with 32-pixel crops and an 8-frame window; MAED as it is
# (64-pixel crops, 4 frames).
RECIPES = {
    "spsnet": (
        "spsnet_tiny_frames",
        {"data": {"train": ["frames.pt"], "crop_size": 32, "crop_scale": 1.2},
         "training": {"clip_length": SPSNET_WINDOW, "clip_stride": 4}},
    ),
    "maed": ("maed_tiny", {}),
}  # fmt: skip
LANDMARK_FAMILIES = ["spsnet", "maed"]
UNSEEN_EVERY = 4  # rows of a landmark track the keypoint model did not look at
WORLD_STD_M = 0.4  # spread of the metric landmarks around the hips


@dataclass(frozen=True)
class Exported:
    bundle: Bundle
    sessions: Sessions


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def export(folder: Path, name: str) -> Exported:
    """Export RECIPES[name]'s seeded network with the stand-in body; one-thread sessions."""
    bundle = load_bundle(tiny_bundle(folder, name, *RECIPES[name]))
    return Exported(bundle, bundle.sessions(providers=[CPU_PROVIDER], threads=1))


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Exported]:
    return {name: export(tmp_path_factory.mktemp(name), name) for name in RECIPES}


@pytest.fixture(scope="module")
def video() -> list[Frame]:
    """A street photo panning across the frame, 25 fps."""
    street = cv2.resize(cv2.imread(str(STREET_PATH)), (2 * WIDTH, HEIGHT))
    return [
        Frame(index, index / FPS, np.ascontiguousarray(street[:, 3 * index : 3 * index + WIDTH]))
        for index in range(VIDEO_FRAMES)
    ]


def make_track(track_id: int, frames: np.ndarray, start: tuple[float, float]) -> Track:
    """A person box ``30 × 60`` pixels walking right, over ``frames``."""
    steps = np.arange(len(frames), dtype=np.float64)
    x1, y1 = start[0] + 1.5 * steps, start[1] + 0.5 * np.sin(steps)
    boxes = np.stack([x1, y1, x1 + 30.0, y1 + 60.0], axis=1)
    detected = np.ones(len(frames), dtype=bool)
    detected[1::5] = False
    return Track(track_id, frames.astype(np.int64), boxes, np.where(detected, 0.9, 0.0), detected)


@pytest.fixture(scope="module")
def tracks() -> list[Track]:
    """Longer than the SPS-Net window with frames skipped, shorter than the MAED window, the
    whole video, a few frames."""
    return [
        make_track(1, np.r_[0:12, 14:25], (10.0, 20.0)),  # 23 frames, 2 skipped
        make_track(2, np.arange(20, 23), (90.0, 40.0)),  # 3 frames
        make_track(3, np.arange(VIDEO_FRAMES), (-10.0, 50.0)),  # 40, partly outside the frame
        make_track(4, np.arange(30, 36), (60.0, 10.0)),  # 6 frames
    ]


@pytest.fixture(scope="module")
def results(bundles, video, tracks) -> dict[str, list[TrackResult]]:
    config = RegressionConfig(batch_size=16)
    return {
        name: regress_tracks(iter(video), tracks, case.bundle, case.sessions, config)
        for name, case in bundles.items()
    }


def features_of(case: Exported, video: list[Frame], track: Track) -> np.ndarray:
    """``(N, *feature_shape)``: the track's crops through the encoder, one frame at a time."""
    spec = case.bundle.manifest.input
    squares = square_boxes(track.boxes, spec.crop_scale)
    crops = [
        cut_crops(video[f].image, squares[k : k + 1], spec) for k, f in enumerate(track.frames)
    ]
    return np.concatenate([case.sessions.encoder.run(None, {"crops": c})[0] for c in crops])


def temporal(case: Exported, windows: np.ndarray) -> tuple[np.ndarray, ...]:
    """rotmat, betas, cam of ``(B, T, ...)`` feature windows."""
    return tuple(case.sessions.temporal.run(["rotmat", "betas", "cam"], {"features": windows}))


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_tracked_frame_has_a_result(results, bundles, tracks, name):
    vertices = bundles[name].bundle.manifest.body.num_vertices
    assert [r.track_id for r in results[name]] == [t.id for t in tracks]
    for result, track in zip(results[name], tracks, strict=True):
        n = len(track.frames)
        assert np.array_equal(result.frame_ids, track.frames)
        assert np.array_equal(result.boxes, track.boxes)
        assert result.score == pytest.approx(0.9)  # the detected frames' mean
        shapes = {
            "pose": (n, 72), "rotmat": (n, 24, 3, 3), "betas": (n, 10), "cam": (n, 3),
            "orig_cam": (n, 4), "translation": (n, 3), "joints3d": (n, 24, 3),
            "joints2d": (n, 24, 2), "rest_vertices": (vertices, 3), "rest_joints": (24, 3),
        }  # fmt: skip
        for field, shape in shapes.items():
            value = getattr(result, field)
            assert value.shape == shape, field
            assert value.dtype == np.float32, field
            assert np.isfinite(value).all(), field


@pytest.mark.parametrize("name", list(RECIPES))
def test_rotations_pose_and_body_agree(results, bundles, name):
    case = bundles[name]
    for result in results[name]:
        rotmat = result.rotmat.astype(np.float64)
        assert np.abs(rotmat @ rotmat.swapaxes(-1, -2) - np.eye(3)).max() <= TOLERANCE
        assert np.abs(np.linalg.det(rotmat) - 1.0).max() <= TOLERANCE
        from_pose = axis_angle_to_rotmat(torch.from_numpy(result.pose).reshape(-1, 24, 3))
        assert np.abs(from_pose.numpy() - result.rotmat).max() <= TOLERANCE
        _, joints = case.sessions.body.run(
            None, {"rotmat": result.rotmat[:2], "betas": result.betas[:2]}
        )
        assert np.abs(joints - result.joints3d[:2]).max() <= TOLERANCE
        rest = np.tile(np.eye(3, dtype=np.float32), (1, 24, 1, 1))
        mean_betas = result.betas.mean(axis=0, keepdims=True)
        rest_vertices, _ = case.sessions.body.run(None, {"rotmat": rest, "betas": mean_betas})
        assert np.abs(rest_vertices[0] - result.rest_vertices).max() <= TOLERANCE


@pytest.mark.parametrize("name", list(RECIPES))
def test_cameras_round_trip_and_project_the_joints(results, bundles, name):
    """orig_cam → crop cam (training's inverse) gives cam back; joints2d are where training's
    weak perspective puts the joints in the crop, mapped to the frame's pixels."""
    crop_scale = bundles[name].bundle.manifest.input.crop_scale
    for result in results[name]:
        squares = square_boxes(result.boxes, crop_scale)
        back = orig_cam_to_crop_cam(result.orig_cam.astype(np.float64), squares, WIDTH, HEIGHT)
        assert np.abs(back - result.cam).max() <= TOLERANCE
        in_crop = weak_perspective_project(
            result.joints3d.astype(np.float64), result.cam.astype(np.float64)
        )
        expected = squares[:, None, :2] + in_crop * squares[:, None, 2:] / 2
        assert np.abs(result.joints2d - expected).max() <= TOLERANCE * WIDTH
        focal = np.hypot(WIDTH, HEIGHT)  # the default: CLIFF's
        depth = 2 * focal / (WIDTH * result.orig_cam[:, 0])
        assert np.allclose(result.translation[:, 2], depth, rtol=TOLERANCE)


@pytest.mark.parametrize("name", list(RECIPES))
def test_windows_blend_as_evaluation_does(results, bundles, video, tracks, name):
    """The windows run while the video streams, blended as they come, give what evaluation's
    batch blending gives: windows of the bundle's length every ``stride`` frames (the last
    ending with the track), training's weights and nearest rotation over the whole track. A
    track shorter than SPS-Net's window is one run of its own length (MAED pads it: below)."""
    case = bundles[name]
    length, stride = case.bundle.manifest.window.length, case.bundle.manifest.window.stride
    for result, track in zip(results[name], tracks, strict=True):
        features = features_of(case, video, track)
        n = len(features)
        if n < length and not case.bundle.manifest.window.dynamic_length:
            continue
        if n <= length:
            rotmat, betas, cam = temporal(case, features[None])
            expected_rotmat, expected_betas, expected_cam = rotmat[0], betas[0], cam[0]
        else:
            starts = sorted({*range(0, n - length + 1, stride), n - length})
            windows = np.stack([features[s : s + length] for s in starts])
            rotmat, betas, cam = temporal(case, windows)
            weights = np.zeros(n)
            sums = [np.zeros((n, 24, 3, 3)), np.zeros((n, 10)), np.zeros((n, 3))]
            w = window_weights(length).astype(np.float64)
            for k, s in enumerate(starts):
                rows = slice(s, s + length)
                weights[rows] += w
                for total, out in zip(sums, (rotmat, betas, cam), strict=True):
                    total[rows] += w.reshape(-1, *[1] * (out.ndim - 2)) * out[k]
            expected_rotmat = nearest_rotation(torch.from_numpy(sums[0])).numpy()
            expected_betas, expected_cam = sums[1] / weights[:, None], sums[2] / weights[:, None]
        assert np.abs(result.rotmat - expected_rotmat).max() <= TOLERANCE
        assert np.abs(result.betas - expected_betas).max() <= TOLERANCE
        assert np.abs(result.cam - expected_cam).max() <= TOLERANCE


def test_maed_pads_a_short_track_with_its_edge_frames(results, bundles, video, tracks):
    case = bundles["maed"]
    assert (case.bundle.manifest.window.length, case.bundle.manifest.window.dynamic_length) == (
        4,
        False,
    )
    short = tracks[1]  # 3 frames: rows 0, 1, 2, 2
    features = features_of(case, video, short)
    rotmat, betas, cam = temporal(case, features[[0, 1, 2, 2]][None])
    result = results["maed"][1]
    assert np.abs(result.rotmat - rotmat[0, :3]).max() <= TOLERANCE
    assert np.abs(result.betas - betas[0, :3]).max() <= TOLERANCE
    assert np.abs(result.cam - cam[0, :3]).max() <= TOLERANCE


def test_batches_and_progress(bundles, video, tracks, results):
    """Other batch sizes give the same results; every stage reports up to its total."""
    case = bundles["spsnet"]
    reports: list[tuple[str, int, int]] = []
    config = RegressionConfig(batch_size=5)
    got = regress_tracks(
        iter(video), tracks, case.bundle, case.sessions, config, lambda *r: reports.append(r)
    )
    for result, expected in zip(got, results["spsnet"], strict=True):
        for field in ("rotmat", "betas", "cam", "joints3d"):
            assert np.abs(getattr(result, field) - getattr(expected, field)).max() <= TOLERANCE
    person_frames = sum(len(t.frames) for t in tracks)
    last = {stage: (done, total) for stage, done, total in reports}
    assert last[ENCODER_STAGE] == (person_frames, person_frames)
    assert last[BODY_STAGE] == (person_frames, person_frames)
    assert last[TEMPORAL_STAGE][0] == last[TEMPORAL_STAGE][1]
    assert reports[0][0] == ENCODER_STAGE
    assert all(done <= total for _, done, total in reports)


def test_frames_are_read_up_to_the_last_tracked_one(bundles, video, tracks):
    case = bundles["maed"]
    read: list[int] = []

    def frames() -> Iterator[Frame]:
        for frame in video:
            read.append(frame.index)
            yield frame

    regress_tracks(frames(), tracks[1:2], case.bundle, case.sessions)
    assert read == list(range(23))  # the track ends on frame 22
    with pytest.raises(ValueError, match="ended before frame 39"):
        regress_tracks(iter(video[:30]), tracks[2:3], case.bundle, case.sessions)
    assert regress_tracks(iter(video), [], case.bundle, case.sessions) == []


def test_smoothing_keeps_rotations_and_cameras_consistent(bundles, video, tracks, results):
    case = bundles["spsnet"]
    config = RegressionConfig(batch_size=16, smoothing=OneEuroConfig())
    smoothed = regress_tracks(iter(video), tracks[2:3], case.bundle, case.sessions, config)[0]
    raw = results["spsnet"][2]
    rotmat = smoothed.rotmat.astype(np.float64)
    assert np.abs(np.linalg.det(rotmat) - 1.0).max() <= TOLERANCE
    assert not np.allclose(smoothed.rotmat, raw.rotmat)
    assert np.abs(smoothed.rotmat[0] - raw.rotmat[0]).max() <= TOLERANCE  # the filter's start
    # sy follows sx, and cam is still the crop camera of the (smoothed) frame camera.
    assert np.allclose(
        smoothed.orig_cam[:, 1], smoothed.orig_cam[:, 0] * WIDTH / HEIGHT, rtol=TOLERANCE
    )
    squares = square_boxes(smoothed.boxes, case.bundle.manifest.input.crop_scale)
    back = orig_cam_to_crop_cam(smoothed.orig_cam.astype(np.float64), squares, WIDTH, HEIGHT)
    assert np.abs(back - smoothed.cam).max() <= TOLERANCE
    accel = lambda x: np.abs(np.diff(x, n=2, axis=0)).mean()  # noqa: E731
    assert accel(smoothed.joints3d) < accel(raw.joints3d)


def test_body_meshes_pose_in_batches_as_one_run(bundles, results):
    """The on-demand body: vertices and joints in runs of 3 frames equal one run of the graph;
    the rest pose is the identity rotations at one β."""
    case = bundles["maed"]
    result = results["maed"][2]  # 40 frames
    rotmat, betas = result.rotmat[:7], result.betas[:7]
    vertices, joints = case.sessions.body.run(None, {"rotmat": rotmat, "betas": betas})
    body = BodyMeshes(case.sessions.body, batch_size=3)
    runs: list[int] = []
    assert np.abs(body(rotmat, betas) - vertices).max() <= TOLERANCE
    assert np.abs(body.joints(rotmat, betas, runs.append) - joints).max() <= TOLERANCE
    assert runs == [3, 3, 1]
    rest_vertices, rest_joints = body.rest(result.betas.mean(axis=0))
    assert np.abs(rest_vertices - result.rest_vertices).max() <= TOLERANCE
    assert np.abs(rest_joints - result.rest_joints).max() <= TOLERANCE


def test_the_stage_needs_neither_torch_nor_training():
    code = (
        "import sys, service.pipeline.regress, service.pipeline.body, service.outputs; "
        "assert not {'torch', 'training'} & set(sys.modules), 'torch or training imported'"
    )
    probe = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert probe.returncode == 0, probe.stderr


@pytest.fixture(scope="module")
def landmark_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Exported]:
    """The keypoint families' tiny bundles (tests/support/bundles.py), one-thread sessions."""
    exported = {}
    for family in LANDMARK_FAMILIES:
        bundle = load_bundle(
            landmark_bundle(tmp_path_factory.mktemp(f"{family}_landmarks"), family)
        )
        exported[family] = Exported(bundle, bundle.sessions(providers=[CPU_PROVIDER], threads=1))
    return exported


@pytest.fixture(scope="module")
def landmark_tracks(tracks) -> list[Track]:
    """The tracks with landmarks in their boxes; every few rows unseen (NaN, visibility 0)."""
    rng = np.random.default_rng(0)
    seen = []
    for track in tracks:
        n = len(track.frames)
        low, high = track.boxes[:, None, :2], track.boxes[:, None, 2:]  # (N, 1, 2) each
        pixels = low + rng.uniform(0.0, 1.0, (n, NUM_LANDMARKS, 2)) * (high - low)
        visibility = rng.uniform(0.0, 1.0, (n, NUM_LANDMARKS, 1))
        landmarks = np.concatenate([pixels, visibility], axis=-1).astype(np.float32)
        world = rng.normal(0.0, WORLD_STD_M, (n, NUM_LANDMARKS, 3)).astype(np.float32)
        scores = np.ones(n, dtype=np.float32)
        unseen = np.arange(n) % UNSEEN_EVERY == 1
        landmarks[unseen, :, :2], landmarks[unseen, :, 2] = np.nan, 0.0
        world[unseen], scores[unseen] = np.nan, 0.0
        seen.append(
            replace(track, landmarks=landmarks, world_landmarks=world, keypoint_scores=scores)
        )
    return seen


def unread_frames() -> Iterator[Frame]:
    """Frames that must not be read: a landmark bundle needs none."""
    raise AssertionError("a landmark bundle read the video's frames")
    yield  # a generator: the error comes on the first read, not on the call


TIMELINE = FrameTimeline(np.arange(VIDEO_FRAMES) / FPS, WIDTH, HEIGHT)


@pytest.mark.parametrize("family", LANDMARK_FAMILIES)
def test_a_landmark_bundle_regresses_tracks_without_reading_frames(
    landmark_bundles, landmark_tracks, family
):
    """Finite results for tracks with unseen rows; a track no longer than a window equals one
    run of the temporal graph on its landmark features (MAED: padded with its last row)."""
    case = landmark_bundles[family]
    reports: list[tuple[str, int, int]] = []
    config = RegressionConfig(batch_size=16, smoothing=OneEuroConfig())
    results = regress_tracks(
        unread_frames(),
        landmark_tracks,
        case.bundle,
        case.sessions,
        config,
        lambda *report: reports.append(report),
        timeline=TIMELINE,
    )
    assert [r.track_id for r in results] == [t.id for t in landmark_tracks]
    for result, track in zip(results, landmark_tracks, strict=True):
        assert np.array_equal(result.frame_ids, track.frames)
        for field in ("rotmat", "betas", "cam", "orig_cam", "translation", "joints3d", "joints2d"):
            value = getattr(result, field)
            assert len(value) == len(track.frames), field
            assert np.isfinite(value).all(), field
    assert ENCODER_STAGE not in {stage for stage, _, _ in reports}
    last = {stage: (done, total) for stage, done, total in reports}
    person_frames = sum(len(t.frames) for t in landmark_tracks)
    assert last[BODY_STAGE] == (person_frames, person_frames)

    raw = regress_tracks(
        unread_frames(), landmark_tracks, case.bundle, case.sessions, timeline=TIMELINE
    )
    short = landmark_tracks[1]  # 3 frames, row 1 unseen: within either family's window
    window = case.bundle.manifest.window.length
    features = track_landmark_features(short, case.bundle.manifest.input.crop_scale)
    if len(features) < window and not case.bundle.manifest.window.dynamic_length:
        features = features[np.minimum(np.arange(window), len(features) - 1)]
    rotmat, betas, cam = temporal(case, features[None])
    rows = len(short.frames)
    assert np.abs(raw[1].rotmat - rotmat[0, :rows]).max() <= TOLERANCE
    assert np.abs(raw[1].betas - betas[0, :rows]).max() <= TOLERANCE
    assert np.abs(raw[1].cam - cam[0, :rows]).max() <= TOLERANCE


def test_a_landmark_bundle_needs_the_frames_times(landmark_bundles, landmark_tracks):
    case = landmark_bundles["spsnet"]
    with pytest.raises(ValueError, match="times and size"):
        regress_tracks(unread_frames(), landmark_tracks, case.bundle, case.sessions)
    cut_short = FrameTimeline(TIMELINE.times[:30], WIDTH, HEIGHT)
    with pytest.raises(ValueError, match="ended before frame 39"):
        regress_tracks(
            unread_frames(), landmark_tracks, case.bundle, case.sessions, timeline=cut_short
        )
