"""The body models: the stand-in's credibility checks, pose formats, joint sets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.body import NUM_BETAS, SMPL_JOINT_NAMES, SMPL_PARENTS, load_body_model
from training.body.joint_sets import H36M17_NAMES, LSP14_NAMES
from training.body.skeleton import descendants

# Float32 LBS of an identity pose reproduces the template up to rounding: a micrometre.
EXACT_M = 1e-6


@pytest.fixture(scope="module")
def standin():
    return load_body_model("standin")


def identity_pose(batch: int) -> torch.Tensor:
    return torch.eye(3).expand(batch, 24, 3, 3).clone()


def pose_one_joint(joint: str, axis: tuple[float, float, float], degrees: float) -> torch.Tensor:
    """Axis-angle pose (1, 72) rotating one joint and nothing else."""
    pose = torch.zeros(1, 72)
    index = SMPL_JOINT_NAMES.index(joint)
    pose[0, 3 * index : 3 * index + 3] = torch.tensor(axis) * math.radians(degrees)
    return pose


def test_standin_has_smpl_tree_and_its_own_mesh(standin):
    assert standin.joint_names == SMPL_JOINT_NAMES
    assert tuple(standin.parents.tolist()) == SMPL_PARENTS
    assert standin.num_vertices != 6890  # its own vertex layout, not SMPL's
    assert standin.faces.shape[1] == 3
    assert int(standin.faces.min()) == 0
    assert int(standin.faces.max()) == standin.num_vertices - 1


def test_standin_rest_height_is_human(standin):
    rest = standin(identity_pose(1), torch.zeros(1, NUM_BETAS)).vertices[0]
    height = float(rest[:, 1].max() - rest[:, 1].min())
    assert 1.60 <= height <= 1.85


def test_standin_faces_plus_z_with_its_left_at_plus_x(standin):
    joints = standin(identity_pose(1), torch.zeros(1, NUM_BETAS)).joints[0]
    named = dict(zip(SMPL_JOINT_NAMES, joints, strict=True))
    assert named["head"][1] > named["pelvis"][1] > named["left_knee"][1]  # Y up
    for part in ("hip", "shoulder", "wrist", "ankle"):
        assert named[f"left_{part}"][0] > named[f"right_{part}"][0]  # left at +X
    nose = standin.v_template[standin.landmarks["nose"]]
    assert nose[2] > named["head"][2]  # the face looks along +Z
    # T-pose: the arms are level with the shoulders
    span = named["left_wrist"] - named["left_shoulder"]
    assert abs(float(span[1])) < 0.1 * float(span[0])


def test_zero_pose_gives_the_template(standin):
    betas = torch.zeros(2, NUM_BETAS)
    for pose in (torch.zeros(2, 72), identity_pose(2)):
        vertices = standin(pose, betas).vertices
        torch.testing.assert_close(
            vertices, standin.v_template.expand_as(vertices), atol=EXACT_M, rtol=0
        )


def test_axis_angle_and_rotation_matrices_agree(standin):
    generator = torch.Generator().manual_seed(0)
    axis_angle = 0.4 * torch.randn(3, 72, generator=generator)
    betas = torch.randn(3, NUM_BETAS, generator=generator)
    from smplx.lbs import batch_rodrigues

    rotmats = batch_rodrigues(axis_angle.reshape(-1, 3)).reshape(3, 24, 3, 3)
    a, b = standin(axis_angle, betas), standin(rotmats, betas)
    torch.testing.assert_close(a.vertices, b.vertices, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.joints, b.joints, atol=1e-5, rtol=0)


@pytest.mark.parametrize("side", ["left", "right"])
def test_bending_one_elbow_moves_only_that_forearm(standin, side):
    betas = torch.zeros(1, NUM_BETAS)
    rest = standin(torch.zeros(1, 72), betas)
    bent = standin(pose_one_joint(f"{side}_elbow", (0.0, 1.0, 0.0), 90.0), betas)
    moved = (bent.vertices - rest.vertices)[0].norm(dim=-1) > EXACT_M
    assert int(moved.sum()) > 100  # the forearm and the hand: hundreds of vertices

    elbow = SMPL_JOINT_NAMES.index(f"{side}_elbow")
    arm_joints = [elbow, *descendants(elbow)]
    on_arm = standin.lbs_weights[:, arm_joints].sum(dim=1) > 0
    assert bool((moved <= on_arm).all())  # nothing moves that the forearm does not carry

    # and geometrically: only the arm moves, out beyond the shoulder joint on that side
    # (skinning blends the elbow a little into the upper arm, as SMPL's does)
    sign = 1.0 if side == "left" else -1.0
    shoulder_x = float(rest.joints[0, SMPL_JOINT_NAMES.index(f"{side}_shoulder"), 0]) * sign
    assert float((rest.vertices[0, moved, 0] * sign).min()) > shoulder_x
    hand = standin.landmarks[f"{side[0]}middle"]
    assert bool(moved[hand])
    # the joints above the elbow stay put
    still = [j for j in range(24) if j not in arm_joints]
    torch.testing.assert_close(bent.joints[0, still], rest.joints[0, still], atol=EXACT_M, rtol=0)


def test_no_nan_within_joint_limits(standin):
    generator = torch.Generator().manual_seed(1)
    # rotations up to 120° about random axes at every joint, shapes up to ±3 σ
    axes = torch.nn.functional.normalize(torch.randn(64, 24, 3, generator=generator), dim=-1)
    angles = torch.rand(64, 24, 1, generator=generator) * math.radians(120)
    betas = (torch.rand(64, NUM_BETAS, generator=generator) * 2 - 1) * 3
    out = standin((axes * angles).reshape(64, 72), betas)
    assert torch.isfinite(out.vertices).all()
    assert torch.isfinite(out.joints).all()


def test_first_shape_component_changes_size(standin):
    heights = []
    for beta0 in (-2.0, 0.0, 2.0):
        betas = torch.zeros(1, NUM_BETAS)
        betas[0, 0] = beta0
        vertices = standin(torch.zeros(1, 72), betas).vertices[0]
        heights.append(float(vertices[:, 1].max() - vertices[:, 1].min()))
    assert abs(heights[2] - heights[0]) > 0.05  # ±2 σ of β0 spans more than 5 cm
    assert (heights[0] - heights[1]) * (heights[1] - heights[2]) > 0  # monotonic


def test_pose_and_betas_shapes_are_checked(standin):
    with pytest.raises(ValueError, match="pose must be"):
        standin(torch.zeros(2, 69), torch.zeros(2, NUM_BETAS))
    with pytest.raises(ValueError, match="betas must be"):
        standin(torch.zeros(2, 72), torch.zeros(2, 9))


def test_joint_sets(standin):
    betas = torch.zeros(2, NUM_BETAS)
    betas[1, :3] = torch.tensor([1.5, -1.0, 0.5])
    out = standin(torch.zeros(2, 72), betas)
    lsp = standin.regress_joints(out.vertices, "lsp14")
    h36m = standin.regress_joints(out.vertices, "h36m17")
    assert lsp.shape == (2, len(LSP14_NAMES), 3)
    assert h36m.shape == (2, len(H36M17_NAMES), 3)
    assert standin.joint_set_source == "project"
    smpl = dict(zip(SMPL_JOINT_NAMES, out.joints[0], strict=True))
    # LSP's hips (indices 2, 3) and knees are the body's own hips and knees
    torch.testing.assert_close(lsp[0, 2], smpl["right_hip"], atol=1e-5, rtol=0)
    torch.testing.assert_close(lsp[0, 3], smpl["left_hip"], atol=1e-5, rtol=0)
    torch.testing.assert_close(lsp[0, 4], smpl["left_knee"], atol=1e-5, rtol=0)
    # H36M's pelvis is the mid-point of the hips; its head is the top of the head
    torch.testing.assert_close(
        h36m[0, 0], (smpl["left_hip"] + smpl["right_hip"]) / 2, atol=1e-5, rtol=0
    )
    assert float(h36m[0, 10, 1]) == pytest.approx(float(out.vertices[0, :, 1].max()), abs=0.02)
    with pytest.raises(ValueError, match="unknown joint set"):
        standin.joint_regressor("coco")


def test_joints_regressed_from_a_posed_mesh_stay_near_the_skeleton(standin):
    # On a posed mesh the regressor and the kinematic chain differ by the skin's deformation:
    # a few centimetres at most, as for SMPL.
    out = standin(pose_one_joint("left_knee", (1.0, 0.0, 0.0), 60.0), torch.zeros(1, NUM_BETAS))
    regressed = standin.regress_joints(out.vertices, "smpl24")
    assert float((regressed - out.joints).norm(dim=-1).max()) < 0.04


def test_published_h36m_regressor_is_used_when_given(standin, tmp_path):
    regressor = np.zeros((17, standin.num_vertices), dtype=np.float32)
    regressor[np.arange(17), np.arange(17) * 100] = 1.0  # joint k = vertex 100·k
    path = tmp_path / "J_regressor_h36m.npy"
    np.save(path, regressor)
    body = load_body_model("standin", h36m_regressor=path)
    assert body.joint_set_source == "published"
    vertices = body.v_template[None]
    h36m = body.regress_joints(vertices, "h36m17")[0]
    torch.testing.assert_close(h36m, vertices[0, ::100][:17])
    lsp = body.regress_joints(vertices, "lsp14")[0]
    # LSP's neck is H36M's thorax (8), its head top H36M's head (10)
    torch.testing.assert_close(lsp[12], vertices[0, 800])
    torch.testing.assert_close(lsp[13], vertices[0, 1000])


def test_spin49_joints_of_the_standin(standin):
    from training.body.joint_sets import SPIN49_NAMES

    out = standin(torch.zeros(1, 72), torch.zeros(1, NUM_BETAS))
    joints = standin.regress_joints(out.vertices, "spin49")[0]
    assert joints.shape == (49, 3)
    named = dict(zip(SPIN49_NAMES, joints, strict=True))
    # OpenPose's and LSP's copies of one joint agree; the face sits above the neck; the
    # heels sit behind the big toes (the body faces +Z)
    torch.testing.assert_close(named["op_left_knee"], named["left_knee"])
    assert named["nose"][1] > named["op_neck"][1]
    assert named["op_left_heel"][2] < named["op_left_big_toe"][2]
    assert named["head_top"][1] > named["h36m_head"][1] > named["h36m_jaw"][1]
