"""DeepMimic clips retargeted onto SMPL: parsing, and a walk that looks like a walk (via FK)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from training.body.skeleton import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS
from training.motion import MotionClip, load_deepmimic_clip
from training.motion.deepmimic import (
    FRAME_WIDTH,
    MOTIONS_DIR_ENV,
    list_source_clips,
    load_source_clip,
    motions_dir,
    retarget_frames,
)

# Approximate rest positions (metres, SMPL frame: left at +X, up +Y, facing +Z; a T-pose with
# level arms) of SMPL's left-side and centre joints; the right side mirrors x. Only directions
# matter here.
_REST_LEFT_AND_CENTRE = {
    "pelvis": (0.0, 0.0, 0.0),
    "left_hip": (0.06, -0.09, 0.0),
    "spine1": (0.0, 0.11, 0.0),
    "left_knee": (0.10, -0.46, 0.0),
    "spine2": (0.0, 0.25, 0.0),
    "left_ankle": (0.08, -0.86, -0.04),
    "spine3": (0.0, 0.31, 0.0),
    "left_foot": (0.12, -0.92, 0.10),
    "neck": (0.0, 0.52, 0.0),
    "left_collar": (0.08, 0.42, 0.0),
    "head": (0.0, 0.60, 0.05),
    "left_shoulder": (0.18, 0.45, 0.0),
    "left_elbow": (0.44, 0.45, 0.0),
    "left_wrist": (0.70, 0.45, 0.0),
    "left_hand": (0.78, 0.45, 0.0),
}
REST_JOINTS = np.array(
    [
        _REST_LEFT_AND_CENTRE.get(name)
        or np.multiply(_REST_LEFT_AND_CENTRE[name.replace("right_", "left_")], (-1, 1, 1))
        for name in SMPL_JOINT_NAMES
    ]
)
WALK_FRAMES = 39
WALK_FPS = 30.0
# A walking knee bends ~75° at most; a straight-legged clip would show less than this.
MIN_PEAK_KNEE_FLEXION_RAD = 0.8
# Tolerance for "one-sided" flexion: a knee or elbow may hyperextend by this little at most.
HYPEREXTENSION_TOLERANCE_RAD = 0.1
# Feet must swap the lead by at least this much (metres) for a stride.
MIN_STRIDE_LEAD_M = 0.2


def joint_index(name: str) -> int:
    return SMPL_JOINT_NAMES.index(name)


def forward_kinematics(pose: np.ndarray, transl: np.ndarray) -> np.ndarray:
    """Joint positions ``(N, 24, 3)`` of ``REST_JOINTS`` posed by ``pose (N, 72)``."""
    local = Rotation.from_rotvec(pose.reshape(-1, 3)).as_matrix().reshape(-1, NUM_JOINTS, 3, 3)
    world = np.zeros_like(local)
    positions = np.zeros((len(pose), NUM_JOINTS, 3))
    for joint, parent in enumerate(SMPL_PARENTS):
        if parent < 0:
            world[:, joint] = local[:, joint]
            positions[:, joint] = transl
            continue
        world[:, joint] = world[:, parent] @ local[:, joint]
        offset = REST_JOINTS[joint] - REST_JOINTS[parent]
        positions[:, joint] = positions[:, parent] + world[:, parent] @ offset
    return positions


@pytest.fixture(scope="module")
def walk() -> MotionClip:
    return load_source_clip("walk")


@pytest.fixture(scope="module")
def walk_joints(walk: MotionClip) -> np.ndarray:
    return forward_kinematics(walk.pose, walk.transl)


def identity_frames(num_frames: int) -> np.ndarray:
    """DeepMimic frames with every joint at rest (identity quaternions, zero hinge angles)."""
    frames = np.zeros((num_frames, FRAME_WIDTH))
    frames[:, 0] = 1.0 / WALK_FPS
    quat_columns = [4, 8, 12, 16, 21, 25, 30, 35, 39]  # w of every quaternion, root first
    frames[:, quat_columns] = 1.0
    return frames


def test_builtin_clips_are_listed() -> None:
    names = list_source_clips()
    assert "walk" in names
    assert all(not n.startswith("humanoid3d_") and not n.endswith(".txt") for n in names)


def test_unknown_clip_names_the_available_ones() -> None:
    with pytest.raises(KeyError, match="walk"):
        load_source_clip("moonwalk")


def test_motions_dir_can_be_overridden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = identity_frames(3)
    frames[-1, 0] = 0.0  # DeepMimic's last frame has no duration
    clip_file = tmp_path / "humanoid3d_stand.txt"
    clip_file.write_text(json.dumps({"Loop": "none", "Frames": frames.tolist()}))
    monkeypatch.setenv(MOTIONS_DIR_ENV, str(tmp_path))
    assert motions_dir() == tmp_path
    assert list_source_clips() == ["stand"]
    clip = load_source_clip("stand")
    assert clip.num_frames == 3
    assert clip.fps == pytest.approx(WALK_FPS)
    assert not clip.loop


def test_walk_parses(walk: MotionClip) -> None:
    assert walk.name == "walk"
    assert walk.num_frames == WALK_FRAMES
    assert walk.fps == pytest.approx(WALK_FPS, rel=1e-3)
    assert walk.loop
    assert walk.pose.shape == (WALK_FRAMES, 3 * NUM_JOINTS)
    assert walk.transl.shape == (WALK_FRAMES, 3)
    assert walk.pose.dtype == np.float32
    assert walk.transl.dtype == np.float32
    assert np.isfinite(walk.pose).all()
    assert np.isfinite(walk.transl).all()


@pytest.mark.parametrize("name", list_source_clips())
def test_every_builtin_clip_loads(name: str) -> None:
    clip = load_source_clip(name)
    assert clip.pose.shape == (clip.num_frames, 3 * NUM_JOINTS)
    assert np.isfinite(clip.pose).all()


def test_rest_pose_hangs_the_arms_and_keeps_the_rest_at_identity() -> None:
    pose, transl = retarget_frames(identity_frames(1))
    joints = forward_kinematics(pose, transl)[0]
    for side in ("left", "right"):
        arm = joints[joint_index(f"{side}_wrist")] - joints[joint_index(f"{side}_shoulder")]
        np.testing.assert_allclose(arm / np.linalg.norm(arm), [0, -1, 0], atol=1e-6)
    arms = [joint_index(f"{s}_{p}") for s in ("left", "right") for p in ("shoulder", "elbow")]
    others = [j for j in range(NUM_JOINTS) if j not in arms]
    np.testing.assert_allclose(pose.reshape(NUM_JOINTS, 3)[others], 0.0, atol=1e-6)


def test_hinges_turn_about_the_lateral_axis() -> None:
    frames = identity_frames(1)
    angle = 0.5
    frames[:, 20] = -angle  # right knee, as DeepMimic stores a flexed knee
    pose, _ = retarget_frames(frames)
    # Body-left axis (+X): positive rotation swings the shin backward.
    np.testing.assert_allclose(
        pose.reshape(NUM_JOINTS, 3)[joint_index("right_knee")], [angle, 0, 0], atol=1e-6
    )


def test_walk_faces_its_direction_of_travel(walk: MotionClip) -> None:
    travel = walk.transl[-1] - walk.transl[0]
    travel /= np.linalg.norm(travel)
    facing = Rotation.from_rotvec(walk.pose[:, :3]).apply([0.0, 0.0, 1.0])
    assert (facing @ travel > 0.9).all()
    assert abs(travel[1]) < 0.05  # walks on level ground


def test_walk_wrists_below_shoulders_and_beside_the_body(
    walk: MotionClip, walk_joints: np.ndarray
) -> None:
    heading = Rotation.from_rotvec(walk.pose[:, :3])
    for side, lateral_sign in (("left", 1.0), ("right", -1.0)):
        wrist, shoulder = (
            walk_joints[:, joint_index(f"{side}_wrist")],
            walk_joints[:, joint_index(f"{side}_shoulder")],
        )
        assert (wrist[:, 1] < shoulder[:, 1] - 0.3).all()
        # In the pelvis frame the left wrist stays at +X, the right at −X.
        local = heading.inv().apply(wrist - walk_joints[:, joint_index("pelvis")])
        assert (lateral_sign * local[:, 0] > 0.1).all()


def test_walk_ankles_below_hips(walk_joints: np.ndarray) -> None:
    for side in ("left", "right"):
        ankle, hip = (
            walk_joints[:, joint_index(f"{side}_ankle")],
            walk_joints[:, joint_index(f"{side}_hip")],
        )
        assert (ankle[:, 1] < hip[:, 1] - 0.5).all()


def hinge_flexion(walk: MotionClip, joint: str, axis: tuple[float, float, float]) -> np.ndarray:
    """Signed flexion angle ``(N,)`` of a hinge-like joint about ``axis`` (its local frame)."""
    return walk.pose.reshape(-1, NUM_JOINTS, 3)[:, joint_index(joint)] @ np.asarray(axis)


@pytest.mark.parametrize(
    ("joint", "axis"),
    [
        # Knees flex about +X (the body's left): the shin swings backward.
        ("left_knee", (1, 0, 0)),
        ("right_knee", (1, 0, 0)),
        # Arms hang down; a forward bend turns the left forearm about −Y, the right about +Y.
        ("left_elbow", (0, -1, 0)),
        ("right_elbow", (0, 1, 0)),
    ],
)
def test_walk_flexion_is_one_sided(walk: MotionClip, joint: str, axis: tuple) -> None:
    flexion = hinge_flexion(walk, joint, axis)
    assert (flexion > -HYPEREXTENSION_TOLERANCE_RAD).all()
    if "knee" in joint:
        assert flexion.max() > MIN_PEAK_KNEE_FLEXION_RAD


def test_walk_knees_bend_backward_and_elbows_forward(
    walk: MotionClip, walk_joints: np.ndarray
) -> None:
    heading = Rotation.from_rotvec(walk.pose[:, :3])
    forward = heading.apply([0.0, 0.0, 1.0])

    def direction(a: str, b: str) -> np.ndarray:
        d = walk_joints[:, joint_index(b)] - walk_joints[:, joint_index(a)]
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    for side in ("left", "right"):
        thigh, shin = (
            direction(f"{side}_hip", f"{side}_knee"),
            direction(f"{side}_knee", f"{side}_ankle"),
        )
        bent = np.einsum("ni,ni->n", thigh, shin) < np.cos(MIN_PEAK_KNEE_FLEXION_RAD / 2)
        # A bent knee leaves the shin pointing more backward than the thigh.
        assert bent.any()
        lead = np.einsum("ni,ni->n", shin - thigh, forward)
        assert (lead[bent] < 0).all()

        upper, fore = (
            direction(f"{side}_shoulder", f"{side}_elbow"),
            direction(f"{side}_elbow", f"{side}_wrist"),
        )
        lead = np.einsum("ni,ni->n", fore - upper, forward)
        assert lead.mean() > 0


def test_walk_feet_alternate(walk: MotionClip, walk_joints: np.ndarray) -> None:
    forward = Rotation.from_rotvec(walk.pose[:, :3]).apply([0.0, 0.0, 1.0])
    lead = np.einsum(
        "ni,ni->n",
        walk_joints[:, joint_index("left_ankle")] - walk_joints[:, joint_index("right_ankle")],
        forward,
    )
    assert lead.max() > MIN_STRIDE_LEAD_M
    assert lead.min() < -MIN_STRIDE_LEAD_M


def test_load_from_path(walk: MotionClip) -> None:
    clip = load_deepmimic_clip(motions_dir() / "humanoid3d_walk.txt")
    np.testing.assert_array_equal(clip.pose, walk.pose)
