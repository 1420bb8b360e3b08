"""Procedural motion variety: mirroring, speed, blending, noise, looping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from training.body import load_body_model
from training.body.skeleton import SMPL_FLIP_PERMUTATION
from training.motion import MotionClip, load_builtin_clip
from training.synth.motion_variety import add_smooth_noise, blend, extend, mirror, resample


def _angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation angle between axis-angle arrays (..., 72), per joint."""
    ra = Rotation.from_rotvec(a.reshape(-1, 3).astype(np.float64))
    rb = Rotation.from_rotvec(b.reshape(-1, 3).astype(np.float64))
    return (ra.inv() * rb).magnitude().reshape(*a.shape[:-1], -1)


@pytest.fixture(scope="module")
def walk() -> MotionClip:
    return load_builtin_clip("walk")


def test_mirroring_twice_is_identity(walk: MotionClip) -> None:
    twice = mirror(mirror(walk))
    np.testing.assert_array_equal(twice.pose, walk.pose)
    np.testing.assert_array_equal(twice.transl, walk.transl)


def test_mirroring_reflects_the_body() -> None:
    body = load_body_model("standin")
    clip = load_builtin_clip("dance_a")
    frames = slice(0, None, 20)
    pose = torch.from_numpy(np.ascontiguousarray(clip.pose[frames]))
    mirrored = torch.from_numpy(np.ascontiguousarray(mirror(clip).pose[frames]))
    betas = torch.zeros(len(pose), 10)
    joints = body(pose, betas).joints.numpy()
    joints_mirrored = body(mirrored, betas).joints.numpy()
    reflected = joints[:, list(SMPL_FLIP_PERMUTATION)] * np.array([-1.0, 1.0, 1.0])
    # the stand-in's rest skeleton is symmetric to within millimetres
    np.testing.assert_allclose(joints_mirrored, reflected, atol=0.01)


def test_speed_change_keeps_the_path(walk: MotionClip) -> None:
    double = resample(walk, speed=2.0)
    np.testing.assert_allclose(double.transl, walk.transl[::2], atol=1e-6)
    assert np.all(_angles(double.pose, walk.pose[::2]) < 1e-5)
    half = resample(walk, speed=0.5)
    assert half.num_frames == 2 * walk.num_frames - 1
    midpoints = (walk.transl[:-1] + walk.transl[1:]) / 2
    np.testing.assert_allclose(half.transl[1::2], midpoints, atol=1e-6)
    # slerp: the in-between rotation is halfway along the arc between its neighbours
    np.testing.assert_allclose(
        _angles(walk.pose[:-1], half.pose[1::2]), _angles(half.pose[1::2], walk.pose[1:]), atol=1e-4
    )


def test_resampling_to_another_frame_rate_keeps_the_duration(walk: MotionClip) -> None:
    at_60 = resample(walk, fps=2 * walk.fps)
    assert at_60.fps == 2 * walk.fps
    assert at_60.num_frames == 2 * walk.num_frames - 1
    np.testing.assert_allclose(at_60.transl[-1], walk.transl[-1], atol=1e-6)


def test_blend_starts_as_the_first_and_ends_as_the_second(walk: MotionClip) -> None:
    run = resample(load_builtin_clip("run"), fps=walk.fps)
    transition = 10
    mixed = blend(walk, run, transition)
    assert mixed.num_frames == walk.num_frames + run.num_frames - transition
    start = walk.num_frames - transition
    np.testing.assert_array_equal(mixed.pose[:start], walk.pose[:start])
    # after the transition: the second clip's joints, its path turned and moved but rigidly
    assert np.all(_angles(mixed.pose[-5:, 3:], run.pose[-5:, 3:]) < 1e-5)
    steps = np.linalg.norm(np.diff(mixed.transl, axis=0), axis=1)
    own_steps = np.linalg.norm(np.diff(run.transl, axis=0), axis=1)
    np.testing.assert_allclose(steps[-5:], own_steps[-5:], atol=1e-5)
    # no jump anywhere: no step longer than the longer of the clips' own
    walk_steps = np.linalg.norm(np.diff(walk.transl, axis=0), axis=1)
    assert steps.max() <= max(own_steps.max(), walk_steps.max()) + 1e-3


def test_noise_is_bounded_smooth_and_spares_the_root(walk: MotionClip) -> None:
    bound = 0.2
    noisy = add_smooth_noise(walk, np.random.default_rng(0), max_angle=bound, smoothness=5.0)
    angles = _angles(noisy.pose, walk.pose)
    assert np.all(angles[:, 0] < 1e-6)
    assert angles.max() <= bound + 1e-5
    assert angles.max() > bound / 4
    # smooth in time: the perturbation changes much less from frame to frame than its size
    change = np.abs(np.diff(angles, axis=0)).max()
    assert change < angles.max() / 2


def test_looping_carries_the_translation_on(walk: MotionClip) -> None:
    frames = walk.num_frames
    longer = extend(walk, 3 * frames)
    assert longer.num_frames == 3 * frames
    assert np.all(_angles(longer.pose[frames : 2 * frames, 3:], walk.pose[:, 3:]) < 1e-5)
    cycle = np.linalg.norm((walk.transl[-1] - walk.transl[0])[[0, 2]]) * frames / (frames - 1)
    travelled = np.linalg.norm((longer.transl[-1] - longer.transl[0])[[0, 2]])
    assert travelled == pytest.approx(3 * cycle - cycle / frames, rel=0.05)
    steps = np.linalg.norm(np.diff(longer.transl, axis=0), axis=1)
    assert steps.max() < 3 * np.median(steps)  # no jump back at the seams


def test_a_clip_that_does_not_loop_holds_its_last_frame() -> None:
    kick = load_builtin_clip("kick")
    longer = extend(kick, kick.num_frames + 5)
    np.testing.assert_array_equal(longer.pose[-5:], np.repeat(kick.pose[-1:], 5, axis=0))
    np.testing.assert_array_equal(longer.transl[-1], kick.transl[-1])
