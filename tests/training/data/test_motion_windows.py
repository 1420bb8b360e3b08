"""Motion windows for the discriminator: resampling by slerp, windows, betas, built-in clips."""

from __future__ import annotations

import numpy as np
import pytest

from training.data.motion_windows import MotionWindows, resample_pose

SOURCE_FPS = 60.0
ANGULAR_SPEED = 1.5  # rad/s about z, on the left knee (SMPL joint 4)
KNEE = 4


def spinning_pose(frames: int, fps: float) -> np.ndarray:
    pose = np.zeros((frames, 72), dtype=np.float32)
    pose[:, 3 * KNEE + 2] = ANGULAR_SPEED * np.arange(frames) / fps
    return pose


def write_motion(path, frames: int = 121, betas=None) -> None:
    extra = {} if betas is None else {"betas": betas}
    np.savez(
        path,
        poses=np.concatenate([spinning_pose(frames, SOURCE_FPS), np.zeros((frames, 84))], 1),
        trans=np.zeros((frames, 3)),
        mocap_framerate=SOURCE_FPS,
        **extra,
    )


@pytest.mark.parametrize("target_fps", [30.0, 24.0, 100.0])
def test_resampling_follows_the_motion_in_time(target_fps):
    resampled = resample_pose(spinning_pose(121, SOURCE_FPS), SOURCE_FPS, target_fps)
    assert resampled.shape == (int(2.0 * target_fps) + 1, 72)  # 2 s of motion
    times = np.arange(resampled.shape[0]) / target_fps
    np.testing.assert_allclose(resampled[:, 3 * KNEE + 2], ANGULAR_SPEED * times, atol=1e-5)
    others = np.delete(resampled, 3 * KNEE + 2, axis=1)
    assert np.abs(others).max() < 1e-6


def test_resampling_at_half_the_rate_keeps_every_other_frame():
    pose = (np.random.default_rng(0).normal(size=(40, 72)) * 0.5).astype(np.float32)
    np.testing.assert_allclose(resample_pose(pose, 60.0, 30.0), pose[::2], atol=1e-5)


def test_windows_from_files(tmp_path):
    write_motion(tmp_path / "a.npz", betas=np.arange(16, dtype=np.float32))
    write_motion(tmp_path / "b.npz", frames=20)  # 10 frames at 30 fps: shorter than a window
    windows = MotionWindows([tmp_path / "a.npz", tmp_path / "b.npz"], clip_length=16)
    assert len(windows) == 61 // 16  # 61 frames at 30 fps, non-overlapping
    item = windows[1]
    assert item["pose"].shape == (16, 72)
    np.testing.assert_allclose(item["betas"].numpy(), np.arange(10))
    expected = ANGULAR_SPEED * np.arange(16, 32) / 30.0
    np.testing.assert_allclose(item["pose"][:, 3 * KNEE + 2].numpy(), expected, atol=1e-5)
    overlapping = MotionWindows([tmp_path / "b.npz", tmp_path / "a.npz"], 16, stride=8)
    assert len(overlapping) == (61 - 16) // 8 + 1
    assert overlapping[0]["betas"].sum() == 45


def test_builtin_clips_by_default():
    windows = MotionWindows(clip_length=16, fps=25.0)
    assert len(windows) > 0
    item = windows[len(windows) - 1]
    assert item["pose"].shape == (16, 72)
    assert item["betas"].shape == (10,)
    assert item["pose"].abs().sum() > 0


def test_too_long_windows_are_an_error(tmp_path):
    write_motion(tmp_path / "a.npz", frames=20)
    with pytest.raises(ValueError, match="16 frames"):
        MotionWindows([tmp_path / "a.npz"], clip_length=16)


def test_a_folder_stands_for_the_motion_files_below_it(tmp_path):
    from training.motion import load_builtin_clip, write_motion_file

    (tmp_path / "subject" / "trial").mkdir(parents=True)
    for name in ("walk", "run"):
        write_motion_file(tmp_path / "subject" / "trial" / f"{name}.npz", load_builtin_clip(name))
    from_folder = MotionWindows([tmp_path], clip_length=8)
    from_files = MotionWindows(sorted((tmp_path / "subject" / "trial").glob("*.npz")), 8)
    assert len(from_folder) == len(from_files) > 0
