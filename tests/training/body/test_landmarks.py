"""BlazePose's landmarks made from the body's mesh, and the restricted body that makes them
cheaply."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.body import BodyModel, load_body_model
from training.body.landmarks import (
    BLAZEPOSE_FLIP_PERMUTATION,
    BLAZEPOSE_NAMES,
    NUM_LANDMARKS,
    landmark_regressor,
)
from training.body.skeleton import SMPL_JOINT_NAMES


@pytest.fixture(scope="module")
def body() -> BodyModel:
    return load_body_model("standin")


def rest_landmarks(body: BodyModel) -> dict[str, np.ndarray]:
    regressor = landmark_regressor(body.J_regressor.numpy(), body.landmarks)
    points = regressor @ body.v_template.numpy()
    return dict(zip(BLAZEPOSE_NAMES, points, strict=True))


def test_every_landmark_is_an_affine_combination_of_the_mesh(body: BodyModel) -> None:
    regressor = landmark_regressor(body.J_regressor.numpy(), body.landmarks)
    assert regressor.shape == (NUM_LANDMARKS, body.num_vertices)
    # weights summing to one: the landmarks move with the body, whatever its place
    np.testing.assert_allclose(regressor.sum(axis=1), 1.0, atol=1e-5)


def test_the_landmarks_sit_where_their_names_say_on_the_rest_body(body: BodyModel) -> None:
    points = rest_landmarks(body)
    # the body faces +Z with its left at +X, Y up
    for name in BLAZEPOSE_NAMES:
        if name.startswith("left_") and name.replace("left_", "right_") in points:
            assert points[name][0] > points[name.replace("left_", "right_")][0], name
    assert points["mouth_left"][0] > points["mouth_right"][0]
    assert points["left_eye_outer"][0] > points["left_eye"][0] > points["left_eye_inner"][0]
    assert points["nose"][2] > points["left_eye"][2]  # the nose tip is in front of the eyes
    assert points["left_eye"][1] > points["nose"][1] > points["mouth_left"][1]
    assert points["mouth_left"][1] > points["left_shoulder"][1] > points["left_hip"][1]
    assert points["left_hip"][1] > points["left_knee"][1] > points["left_ankle"][1]
    assert points["left_foot_index"][2] > points["left_heel"][2]  # toes forward of the heel
    joint = SMPL_JOINT_NAMES.index("left_wrist")
    wrist = body.J_regressor.numpy()[joint] @ body.v_template.numpy()
    np.testing.assert_allclose(points["left_wrist"], wrist, atol=1e-6)


def test_the_flip_permutation_pairs_left_with_right() -> None:
    for index, mirror in enumerate(BLAZEPOSE_FLIP_PERMUTATION):
        name, other = BLAZEPOSE_NAMES[index], BLAZEPOSE_NAMES[mirror]
        assert BLAZEPOSE_FLIP_PERMUTATION[mirror] == index
        if "left" in name or "right" in name:
            assert name.replace("left", "#").replace("right", "left").replace("#", "right") == other
        else:
            assert name == other


def test_a_restricted_body_poses_its_joints_and_vertices_as_the_whole_one(
    body: BodyModel,
) -> None:
    keep = np.arange(0, body.num_vertices, 50)
    restricted = body.restricted(keep)
    assert restricted.num_vertices < body.num_vertices / 10
    generator = torch.Generator().manual_seed(0)
    pose = 0.4 * torch.randn(3, 72, generator=generator)
    betas = torch.randn(3, 10, generator=generator)
    whole, part = body(pose, betas), restricted(pose, betas)
    torch.testing.assert_close(part.joints, whole.joints, atol=1e-5, rtol=0)
    for joint_set in ("spin49", "lsp14"):
        torch.testing.assert_close(
            restricted.regress_joints(part.vertices, joint_set),
            body.regress_joints(whole.vertices, joint_set),
            atol=1e-5,
            rtol=0,
        )
    whole_landmarks = (
        torch.from_numpy(landmark_regressor(body.J_regressor.numpy(), body.landmarks))
        @ whole.vertices
    )
    part_landmarks = (
        torch.from_numpy(landmark_regressor(restricted.J_regressor.numpy(), restricted.landmarks))
        @ part.vertices
    )
    torch.testing.assert_close(part_landmarks, whole_landmarks, atol=1e-5, rtol=0)
