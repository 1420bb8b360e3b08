"""Horizontal flip: permutations by name, involution, and the mirror of a posed body."""

from __future__ import annotations

import numpy as np
import torch

from training.body import load_body_model
from training.body.joint_sets import SPIN49_NAMES
from training.body.skeleton import SMPL_FLIP_PERMUTATION
from training.data.flip import (
    SPIN49_FLIP_PERMUTATION,
    flip_image,
    flip_joints_3d,
    flip_keypoints_2d,
    flip_pose,
)

# Joints of the flipped pose must match the mirrored joints to this (metres); the stand-in
# body's rest skeleton is itself symmetric only to about 0.3 mm.
JOINT_TOLERANCE = 1e-3


def test_spin49_permutation_swaps_sides_by_name():
    perm = SPIN49_FLIP_PERMUTATION
    assert sorted(perm) == list(range(49))
    assert all(perm[perm[i]] == i for i in range(49))
    for i, j in enumerate(perm):
        name, mirror = SPIN49_NAMES[i], SPIN49_NAMES[j]
        assert mirror == name.replace("left", "#").replace("right", "left").replace("#", "right")
    assert SPIN49_NAMES[perm[SPIN49_NAMES.index("op_left_big_toe")]] == "op_right_big_toe"
    assert perm[SPIN49_NAMES.index("h36m_head")] == SPIN49_NAMES.index("h36m_head")


def test_flipping_twice_is_identity():
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(-1, 1, (5, 49, 3)).astype(np.float32)
    joints = rng.normal(size=(5, 49, 4)).astype(np.float32)
    pose = rng.normal(size=(5, 72)).astype(np.float32)
    image = rng.integers(0, 255, (8, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(flip_keypoints_2d(flip_keypoints_2d(keypoints)), keypoints)
    np.testing.assert_array_equal(flip_joints_3d(flip_joints_3d(joints)), joints)
    np.testing.assert_array_equal(flip_pose(flip_pose(pose)), pose)
    np.testing.assert_array_equal(flip_image(flip_image(image)), image)
    assert flip_pose(pose).dtype == np.float32


def test_flip_negates_x_and_keeps_confidence():
    keypoints = np.zeros((49, 3), dtype=np.float32)
    left = SPIN49_NAMES.index("left_wrist")
    keypoints[left] = (0.5, -0.25, 0.7)
    flipped = flip_keypoints_2d(keypoints)
    np.testing.assert_allclose(flipped[SPIN49_NAMES.index("right_wrist")], (-0.5, -0.25, 0.7))


def test_image_flip_moves_a_pixel_to_the_negated_crop_coordinate():
    size = 8
    image = np.zeros((size, size), dtype=np.float32)
    image[3, 1] = 1.0
    u = (1 + 0.5) * 2 / size - 1
    row, column = np.argwhere(flip_image(image))[0]
    assert row == 3
    assert (column + 0.5) * 2 / size - 1 == -u


def test_flipped_pose_poses_the_mirror_image():
    body = load_body_model("standin")
    mirror = np.array([-1.0, 1.0, 1.0])
    betas = torch.zeros(1, 10)
    rest = body(torch.zeros(1, 72), betas).joints[0].numpy()
    assert np.abs((rest * mirror)[list(SMPL_FLIP_PERMUTATION)] - rest).max() < JOINT_TOLERANCE
    pose = (np.random.default_rng(1).normal(size=(1, 72)) * 0.4).astype(np.float32)
    joints = body(torch.from_numpy(pose), betas).joints[0].numpy()
    flipped = body(torch.from_numpy(flip_pose(pose)), betas).joints[0].numpy()
    expected = (joints * mirror)[list(SMPL_FLIP_PERMUTATION)]
    np.testing.assert_allclose(flipped, expected, atol=JOINT_TOLERANCE)
    # the pose moves the joints far more than the tolerance: the check has teeth
    assert np.abs(joints - rest).max() > 50 * JOINT_TOLERANCE
