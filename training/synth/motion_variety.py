"""Procedural variety on motion clips: speed, mirroring, blending, smooth noise, looping.

Every function takes and returns a :class:`~training.motion.MotionClip` (pose ``(N, 72)``
axis-angle on SMPL's skeleton, transl ``(N, 3)`` pelvis position, SMPL's world frame: Y up,
the body facing +Z at rest). Rotations are interpolated on the rotation group (slerp between
neighbouring frames), never linearly on axis-angle, which would shorten or flip rotations near
π. Translations are interpolated linearly.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

from training.body.skeleton import NUM_JOINTS, SMPL_FLIP_PERMUTATION
from training.motion import MotionClip

# Mirroring reflects the world across its YZ plane (x → −x), the body's sagittal plane.
_MIRROR = np.array([-1.0, 1.0, 1.0])
# A reflection M maps a rotation R to M R M; the rotation vector (an axial vector) of the
# result is det(M) · M · r = (x, −y, −z) for r = (x, y, z).
_AXIAL_MIRROR = np.array([1.0, -1.0, -1.0])
_UP = np.array([0.0, 1.0, 0.0])
# Index of SMPL's first non-root joint: noise leaves the global orientation alone so that the
# motion's heading and path stay those of the clip.
_FIRST_LOCAL_JOINT = 1


def _rotations(pose: np.ndarray) -> Rotation:
    """``pose (N, 72)`` → a flat Rotation of N·24 elements."""
    return Rotation.from_rotvec(pose.reshape(-1, 3).astype(np.float64))


def _pose(rotations: Rotation, frames: int) -> np.ndarray:
    """Inverse of :func:`_rotations`: ``(frames, 72)`` float32."""
    return rotations.as_rotvec().reshape(frames, NUM_JOINTS * 3).astype(np.float32)


def _slerp(start: Rotation, end: Rotation, weight: np.ndarray) -> Rotation:
    """Per-element slerp along the shortest arc; ``weight`` broadcasts over the elements."""
    step = (start.inv() * end).as_rotvec()
    return start * Rotation.from_rotvec(step * np.asarray(weight)[..., None])


def _yaw(rotations: Rotation) -> np.ndarray:
    """Heading angles (radians, about +Y) of the body's forward axis +Z under ``rotations``."""
    forward = rotations.apply(np.array([0.0, 0.0, 1.0]))
    return np.arctan2(forward[..., 0], forward[..., 2])


def resample(clip: MotionClip, *, speed: float = 1.0, fps: float | None = None) -> MotionClip:
    """Play ``clip`` ``speed`` times faster and sample it at ``fps`` (default: the clip's).

    Output frame k shows the clip at time ``k · speed / fps`` seconds; rotations are slerped
    between the two neighbouring source frames, translations interpolated linearly, so the
    pelvis follows the same path at a different pace. The output covers the clip's duration
    (its last frame is at or before the clip's last).
    """
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    out_fps = clip.fps if fps is None else fps
    if out_fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    frames = clip.num_frames
    if frames < 2:
        return dataclasses.replace(clip, fps=out_fps)
    step = speed * clip.fps / out_fps  # source frames per output frame
    # the tolerance keeps the last source frame when (N − 1) / step is an integer up to rounding
    count = math.floor((frames - 1) / step + 1e-9) + 1
    source = np.arange(count) * step
    low = np.minimum(np.floor(source).astype(int), frames - 2)
    weight = source - low
    rotations = _rotations(clip.pose).as_rotvec().reshape(frames, NUM_JOINTS, 3)
    start = Rotation.from_rotvec(rotations[low].reshape(-1, 3))
    end = Rotation.from_rotvec(rotations[low + 1].reshape(-1, 3))
    pose = _pose(_slerp(start, end, np.repeat(weight, NUM_JOINTS)), count)
    transl = clip.transl[low] + (clip.transl[low + 1] - clip.transl[low]) * weight[:, None]
    return dataclasses.replace(clip, fps=out_fps, pose=pose, transl=transl.astype(np.float32))


def mirror(clip: MotionClip) -> MotionClip:
    """The clip reflected left ↔ right: joints swapped by ``SMPL_FLIP_PERMUTATION``, every
    rotation vector mapped to ``(x, −y, −z)`` and the path to ``(−x, y, z)``. Mirroring twice
    gives the clip back exactly."""
    pose = clip.pose.reshape(-1, NUM_JOINTS, 3)[:, list(SMPL_FLIP_PERMUTATION)] * _AXIAL_MIRROR
    return dataclasses.replace(
        clip,
        pose=pose.reshape(-1, NUM_JOINTS * 3).astype(np.float32),
        transl=(clip.transl * _MIRROR).astype(np.float32),
    )


def blend(first: MotionClip, second: MotionClip, transition: int) -> MotionClip:
    """``first`` then ``second``, cross-faded over ``transition`` overlapping frames.

    ``second`` is first turned about +Y and moved on the ground so that at its start it has the
    heading and horizontal position ``first`` has where the transition begins; in the overlap
    every rotation is slerped with a smoothstep weight going from 0 to 1, the pelvis height
    interpolated with it, and the steps on the ground (not the positions) blended with it. Both
    clips must share a frame rate (:func:`resample` first) and ``transition ≥ 1``. The result
    has ``len(first) + len(second) − transition`` frames and loops only if both do.
    """
    if not math.isclose(first.fps, second.fps, rel_tol=1e-6):
        raise ValueError(f"blend needs one frame rate, got {first.fps} and {second.fps}")
    if not 1 <= transition <= min(first.num_frames, second.num_frames):
        raise ValueError(f"transition must be within both clips' lengths, got {transition}")
    start = first.num_frames - transition
    first_rot = _rotations(first.pose)
    second_rot = _rotations(second.pose).as_rotvec().reshape(-1, NUM_JOINTS, 3)
    root_first = Rotation.from_rotvec(first.pose[start, :3].astype(np.float64))
    root_second = Rotation.from_rotvec(second.pose[0, :3].astype(np.float64))
    turn = Rotation.from_rotvec(_UP * (_yaw(root_first) - _yaw(root_second)))
    second_rot[:, 0] = (turn * Rotation.from_rotvec(second_rot[:, 0])).as_rotvec()
    second_transl = turn.apply(second.transl - second.transl[0])
    anchor = first.transl[start].astype(np.float64)
    second_transl += anchor * (1.0 - _UP)  # ground position of first, own height of second
    second_transl[:, 1] += second.transl[0, 1]

    ramp = (np.arange(transition) + 1.0) / (transition + 1.0)
    weight = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep: no jerk at either end
    overlap_first = Rotation.from_rotvec(
        first_rot.as_rotvec().reshape(-1, NUM_JOINTS, 3)[start:].reshape(-1, 3)
    )
    overlap_second = Rotation.from_rotvec(second_rot[:transition].reshape(-1, 3))
    overlap = _slerp(overlap_first, overlap_second, np.repeat(weight, NUM_JOINTS))
    pose = np.concatenate(
        [
            first.pose[:start],
            _pose(overlap, transition),
            second_rot[transition:].reshape(-1, NUM_JOINTS * 3).astype(np.float32),
        ]
    )
    transl = np.concatenate([first.transl[:start], second_transl]).astype(np.float64)
    # On the ground the overlap blends the clips' steps, not their positions: two paths moving
    # apart would otherwise add the rate their separation changes at to the speed.
    first_steps = np.diff(first.transl.astype(np.float64), axis=0, prepend=first.transl[:1])
    second_steps = np.diff(second_transl, axis=0, prepend=second_transl[:1])
    for k in range(1 if start == 0 else 0, transition):
        step = first_steps[start + k] * (1.0 - weight[k]) + second_steps[k] * weight[k]
        transl[start + k] = transl[start + k - 1] + step * (1.0 - _UP)
    overlap_heights = (
        first.transl[start:, 1] * (1.0 - weight) + second_transl[:transition, 1] * weight
    )
    transl[start : start + transition, 1] = overlap_heights
    # the rest of the second clip goes on from where the overlap ended
    end = start + transition - 1
    transl[end + 1 :] += (transl[end] - second_transl[transition - 1]) * (1.0 - _UP)
    return MotionClip(
        name=f"{first.name}+{second.name}",
        fps=first.fps,
        pose=pose.astype(np.float32),
        transl=transl.astype(np.float32),
        loop=first.loop and second.loop,
    )


def add_smooth_noise(
    clip: MotionClip, rng: np.random.Generator, *, max_angle: float, smoothness: float
) -> MotionClip:
    """Perturb every non-root joint by a rotation that is smooth in time and bounded.

    Per joint, white noise ``(N, 3)`` is Gaussian-filtered over time with standard deviation
    ``smoothness`` frames, scaled so its largest rotation angle is ``max_angle`` times a
    uniform draw in [0, 1], and composed before the joint's rotation. Every joint therefore
    moves at most ``max_angle`` radians from the clip. The root is left alone.
    """
    if max_angle < 0 or smoothness <= 0:
        raise ValueError("max_angle must be ≥ 0 and smoothness > 0")
    frames = clip.num_frames
    joints = NUM_JOINTS - _FIRST_LOCAL_JOINT
    noise = gaussian_filter1d(rng.standard_normal((frames, joints, 3)), smoothness, axis=0)
    peak = np.linalg.norm(noise, axis=-1).max(axis=0)  # (joints,)
    scale = max_angle * rng.uniform(0.0, 1.0, joints) / np.maximum(peak, np.finfo(float).tiny)
    noise *= scale[None, :, None]
    rotations = _rotations(clip.pose).as_rotvec().reshape(frames, NUM_JOINTS, 3)
    local = Rotation.from_rotvec(rotations[:, _FIRST_LOCAL_JOINT:].reshape(-1, 3))
    perturbed = Rotation.from_rotvec(noise.reshape(-1, 3)) * local
    rotations[:, _FIRST_LOCAL_JOINT:] = perturbed.as_rotvec().reshape(frames, joints, 3)
    return dataclasses.replace(clip, pose=rotations.reshape(frames, -1).astype(np.float32))


def extend(clip: MotionClip, num_frames: int) -> MotionClip:
    """Exactly ``num_frames`` frames: a looping clip repeats, a non-looping one holds its end.

    Each repetition of a looping clip continues where the previous one left off: it is turned
    about +Y by the heading the clip gains over one cycle and moved by the ground displacement
    of one cycle, so a walk keeps walking forward and a spin keeps turning. One cycle is the
    clip's N frames; its displacement and turn are those from frame 0 to N − 1 extrapolated by
    one frame (the clip's frame N would be the next cycle's frame 0).
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    frames = clip.num_frames
    if num_frames <= frames:
        return dataclasses.replace(
            clip, pose=clip.pose[:num_frames].copy(), transl=clip.transl[:num_frames].copy()
        )
    if not clip.loop or frames < 2:
        extra = num_frames - frames
        return dataclasses.replace(
            clip,
            pose=np.concatenate([clip.pose, np.repeat(clip.pose[-1:], extra, axis=0)]),
            transl=np.concatenate([clip.transl, np.repeat(clip.transl[-1:], extra, axis=0)]),
        )
    per_cycle = frames / (frames - 1.0)
    roots = Rotation.from_rotvec(clip.pose[[0, -1], :3].astype(np.float64))
    yaws = _yaw(roots)
    turn_angle = float(np.angle(np.exp(1j * (yaws[1] - yaws[0])))) * per_cycle
    shift = (clip.transl[-1] - clip.transl[0]).astype(np.float64) * (1.0 - _UP) * per_cycle

    cycles = math.ceil(num_frames / frames)
    poses, transls = [], []
    turn = Rotation.identity()
    offset = np.zeros(3)
    origin = clip.transl[0].astype(np.float64) * (1.0 - _UP)
    for _ in range(cycles):
        pose = clip.pose.reshape(frames, NUM_JOINTS, 3).astype(np.float64).copy()
        pose[:, 0] = (turn * Rotation.from_rotvec(pose[:, 0])).as_rotvec()
        poses.append(pose.reshape(frames, -1))
        transls.append(turn.apply(clip.transl - origin) + origin + offset)
        offset = offset + turn.apply(shift)
        turn = Rotation.from_rotvec(_UP * turn_angle) * turn
    return dataclasses.replace(
        clip,
        pose=np.concatenate(poses)[:num_frames].astype(np.float32),
        transl=np.concatenate(transls)[:num_frames].astype(np.float32),
    )
