"""Windows of real motion for SPS-Net's discriminator (SPS-Net §3.5, after VIBE's AMASS).

Each motion (an AMASS-style file, or every built-in clip when none is given) is resampled to
one frame rate, that of the training videos, so that the discriminator compares motions at
the same speed, then cut into windows of T frames starting every ``stride`` frames.
Resampling interpolates every joint's rotation along the shortest arc (slerp) between the two
nearest source frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from torch import Tensor
from torch.utils.data import Dataset

from training.body.skeleton import NUM_JOINTS
from training.motion.library import BUILTIN_DIR, list_builtin_clips, read_motion_file

# The frame rate of the training videos (3DPW, MPI-INF-3DHP and InstaVariety are 25-30 fps;
# VIBE and MAED read AMASS at 30 fps).
DEFAULT_FPS = 30.0
NUM_BETAS = 10
_AXIS_ANGLE_SIZE = 3
# Slack on the last sample time, so that a frame landing exactly on the source's end is kept
# despite rounding.
_TIME_TOLERANCE = 1e-9


class MotionWindow(TypedDict):
    """T frames of real motion and the body that moves."""

    pose: Tensor  # (T, 72) axis-angle, SMPL joint order
    betas: Tensor  # (10,)


def resample_pose(pose: np.ndarray, source_fps: float, target_fps: float) -> np.ndarray:
    """Resample ``(N, 72)`` axis-angle poses from ``source_fps`` to ``target_fps``.

    Returns ``(M, 72)`` float32, frame ``k`` at time ``k / target_fps`` for every such time
    within the source's span ``(N - 1) / source_fps``.
    """
    frames = pose.shape[0]
    duration = (frames - 1) / source_fps
    times = np.arange(int(np.floor(duration * target_fps + _TIME_TOLERANCE)) + 1) / target_fps
    position = np.minimum(times * source_fps, frames - 1)
    before = np.floor(position).astype(np.int64)
    after = np.minimum(before + 1, frames - 1)
    weight = (position - before)[:, None, None]
    rotvecs = pose.reshape(frames, NUM_JOINTS, _AXIS_ANGLE_SIZE).astype(np.float64)
    first = Rotation.from_rotvec(rotvecs[before].reshape(-1, _AXIS_ANGLE_SIZE))
    second = Rotation.from_rotvec(rotvecs[after].reshape(-1, _AXIS_ANGLE_SIZE))
    # The relative rotation's rotation vector is the shortest arc from first to second.
    step = (first.inv() * second).as_rotvec().reshape(len(times), NUM_JOINTS, _AXIS_ANGLE_SIZE)
    partial = Rotation.from_rotvec((step * weight).reshape(-1, _AXIS_ANGLE_SIZE))
    resampled = (first * partial).as_rotvec()
    return resampled.reshape(len(times), NUM_JOINTS * _AXIS_ANGLE_SIZE).astype(np.float32)


def _read_betas(path: Path) -> np.ndarray:
    """The first 10 shape coefficients of a motion file, zeros when it has none."""
    betas = np.zeros(NUM_BETAS, dtype=np.float32)
    with np.load(path) as data:
        if "betas" in data:
            stored = np.asarray(data["betas"], dtype=np.float32).reshape(-1)[:NUM_BETAS]
            betas[: len(stored)] = stored
    return betas


class MotionWindows(Dataset[MotionWindow]):
    """Windows of ``clip_length`` frames of real motion at ``fps`` frames per second.

    ``paths`` are AMASS-style ``.npz`` files; empty: the built-in clips. Motions shorter than
    a window after resampling give none. Windows do not overlap unless ``stride`` is set below
    ``clip_length``.
    """

    def __init__(
        self,
        paths: Sequence[str | Path] = (),
        clip_length: int = 16,
        *,
        fps: float = DEFAULT_FPS,
        stride: int | None = None,
    ) -> None:
        if clip_length < 1 or fps <= 0:
            raise ValueError("clip_length and fps must be positive")
        step = stride if stride is not None else clip_length
        # AMASS is distributed as folders of .npz files: a folder stands for all below it
        files = [
            file
            for path in map(Path, paths)
            for file in (sorted(path.rglob("*.npz")) if path.is_dir() else [path])
        ] or [BUILTIN_DIR / f"{name}.npz" for name in list_builtin_clips()]
        motions = [(read_motion_file(path), _read_betas(path)) for path in files]
        self.poses: list[np.ndarray] = []
        self.betas: list[np.ndarray] = []
        # (motion, first frame) of every window
        self.windows: list[tuple[int, int]] = []
        for motion, betas in motions:
            pose = resample_pose(motion.pose, motion.fps, fps)
            starts = range(0, pose.shape[0] - clip_length + 1, step)
            self.windows += [(len(self.poses), start) for start in starts]
            self.poses.append(pose)
            self.betas.append(betas)
        if not self.windows:
            raise ValueError(f"no motion is {clip_length} frames long at {fps} fps")
        self.clip_length = clip_length

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> MotionWindow:
        motion, start = self.windows[index]
        pose = self.poses[motion][start : start + self.clip_length]
        return MotionWindow(pose=torch.from_numpy(pose), betas=torch.from_numpy(self.betas[motion]))
