"""The losses of SPS-Net (Eq. 3–8) and MAED (Eq. 1–2): hand-worked values, masks, λ."""

from __future__ import annotations

import pytest
import torch

from training.losses import (
    MASK_LOG_EPS,
    SMPLParameters,
    adversarial_loss,
    camera_consistency_loss,
    discriminator_loss,
    feature_loss,
    joints_3d_loss,
    keypoints_2d_loss,
    mask_loss,
    norm_loss,
    parameter_consistency_loss,
    smpl_parameter_losses,
    weighted_total,
)
from training.recipes.schema import LossWeights


def _rotmats(*shape: int) -> torch.Tensor:
    """Random rotation matrices ``(*shape, 24, 3, 3)``: the exponential of a skew matrix."""
    upper = torch.randn(*shape, 24, 3, 3).triu(1)
    return torch.linalg.matrix_exp(upper - upper.transpose(-1, -2))


def test_smpl_losses_hand_worked_and_masked() -> None:
    gt_rot = torch.eye(3).expand(2, 3, 24, 3, 3).clone()
    pred_rot = gt_rot.clone()
    pred_rot[0, 1, 5, 0, 0] = 3.0  # error 2 on one of 24·9 entries of a valid frame
    pred_rot[1, 2] += 100.0  # a frame without ground truth: ignored
    gt_betas = torch.zeros(2, 3, 10)
    pred_betas = gt_betas.clone()
    pred_betas[0, 1, :] = 1.0
    pred_betas[1, 2, :] = 50.0
    has_smpl = torch.tensor([[True, True, False], [False, False, False]])
    pose, shape = smpl_parameter_losses(pred_rot, gt_rot, pred_betas, gt_betas, has_smpl)
    assert pose.item() == pytest.approx(4.0 / (2 * 24 * 9))
    assert shape.item() == pytest.approx(10.0 / (2 * 10))


def test_smpl_losses_zero_when_equal_and_empty_mask_is_finite() -> None:
    rot = _rotmats(2, 4).requires_grad_(True)
    betas = torch.randn(2, 4, 10, requires_grad=True)
    pose, shape = smpl_parameter_losses(rot, rot.detach(), betas, betas.detach(), torch.ones(2, 4))
    assert pose.item() == 0.0
    assert shape.item() == 0.0
    noise = torch.randn(2, 4, 10)
    pose, shape = smpl_parameter_losses(
        rot, _rotmats(2, 4), betas, betas.detach() + noise, torch.zeros(2, 4, dtype=torch.bool)
    )
    (pose + shape).backward()
    assert pose.item() == 0.0
    assert shape.item() == 0.0
    assert rot.grad is not None
    assert (rot.grad == 0).all()


def test_joints_3d_loss_is_pelvis_aligned_and_masked() -> None:
    gt = torch.randn(2, 5, 14, 3)
    valid = torch.ones(2, 5, 14)
    assert joints_3d_loss(gt + torch.tensor([1.0, -2.0, 0.5]), gt, valid).item() == pytest.approx(
        0.0, abs=1e-10
    )
    pred = gt.clone()
    pred[..., 0, 0] += 0.3  # a non-hip joint moved by 0.3 m along x
    assert joints_3d_loss(pred, gt, valid).item() == pytest.approx(0.09 / (14 * 3))
    valid[..., 0] = 0
    assert joints_3d_loss(pred, gt, valid).item() == pytest.approx(0.0, abs=1e-10)
    # Moving a hip by 0.3 m moves the pelvis by 0.15 m: after alignment all 14 joints (the
    # moved hip included) are off by 0.15 m along y.
    pred = gt.clone()
    pred[..., 2, 1] += 0.3
    expected = 14 * 0.15**2 / (14 * 3)
    assert joints_3d_loss(pred, gt, torch.ones(2, 5, 14)).item() == pytest.approx(expected)
    assert joints_3d_loss(pred, gt, torch.zeros(2, 5, 14)).item() == 0.0


def test_keypoints_2d_loss_weights_by_confidence() -> None:
    gt = torch.zeros(1, 2, 4, 3)
    gt[..., 2] = torch.tensor([1.0, 1.0, 0.5, 0.0])
    pred = torch.zeros(1, 2, 4, 2)
    assert keypoints_2d_loss(pred, gt).item() == 0.0
    pred[..., 2, 0] = 2.0  # confidence 0.5, squared error 4 in one coordinate
    pred[..., 3, :] = 9.0  # confidence 0: ignored
    # Σ c·e = 2 frames · 0.5 · 4; Σ c over coordinates = 2 frames · 2 coords · 2.5
    assert keypoints_2d_loss(pred, gt).item() == pytest.approx(4.0 / 10.0)
    assert keypoints_2d_loss(pred, torch.zeros(1, 2, 4, 3)).item() == 0.0


def test_feature_loss_uses_the_next_frame() -> None:
    features = torch.arange(4.0).reshape(1, 4, 1).repeat(1, 1, 2)  # f_i = (i, i)
    perfect = features[:, 1:].clone()  # f'_2 … f'_4 equal to f_2 … f_4
    assert feature_loss(features, perfect).item() == 0.0
    assert feature_loss(features, features[:, :-1]).item() == pytest.approx(1.0)  # one step late
    with pytest.raises(ValueError, match="forecast"):
        feature_loss(features, features)


def test_mask_loss_hand_worked_and_clamped() -> None:
    silhouette = torch.tensor([[0.5, 1.0], [0.0, 0.2]], requires_grad=True)
    pseudo = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    # pixels: −log 0.5, −log 1 (clamped: ≈ 0), −log 1 (≈ 0), −log 0.8; mean of four
    expected = -(torch.log(torch.tensor(0.5)) + torch.log(torch.tensor(0.8))).item() / 4
    assert mask_loss(silhouette, pseudo).item() == pytest.approx(expected, rel=1e-4)
    empty = torch.zeros(2, 2, requires_grad=True)
    loss = mask_loss(empty, torch.ones(2, 2))
    loss.backward()
    assert loss.item() == pytest.approx(-torch.log(torch.tensor(MASK_LOG_EPS)).item(), rel=1e-5)
    assert torch.isfinite(empty.grad).all()
    assert mask_loss(torch.ones(3, 2, 2), torch.ones(3, 2, 2)).item() == pytest.approx(0, abs=1e-5)


def test_mask_loss_penalises_silhouette_outside_the_mask() -> None:
    # covering the whole crop must cost more than matching the mask: the degenerate solution
    # (an inflated body) that Eq. 5's first term alone rewards
    pseudo = torch.zeros(4, 4)
    pseudo[1:3, 1:3] = 1.0
    matching = pseudo * 0.98 + 0.01
    covering = torch.full((4, 4), 0.99)
    assert mask_loss(covering, pseudo) > 10 * mask_loss(matching, pseudo)


def test_camera_consistency_compares_the_overlap() -> None:
    video = torch.randn(2, 6, 3)  # cameras of 6 consecutive frames
    first, second = video[:, :5], video[:, 1:]
    assert camera_consistency_loss(first, second).item() == 0.0
    shifted = second.clone()
    shifted[:, :-1] += 0.5  # the overlap differs by 0.5; the last frame is outside it
    shifted[:, -1] += 100.0
    assert camera_consistency_loss(first, shifted).item() == pytest.approx(0.25)


def test_least_squares_adversarial_losses() -> None:
    assert discriminator_loss(torch.ones(4, 1), torch.zeros(4, 1)).item() == 0.0
    assert discriminator_loss(torch.zeros(4, 1), torch.ones(4, 1)).item() == 2.0
    assert adversarial_loss(torch.ones(3, 1)).item() == 0.0
    assert adversarial_loss(torch.tensor([[0.5], [0.0]])).item() == pytest.approx(0.625)


def test_parameter_consistency_parts_and_stop_gradient() -> None:
    clean = SMPLParameters(_rotmats(2, 3), torch.zeros(2, 3, 10), torch.zeros(2, 3, 3))
    clean = SMPLParameters(*(t.requires_grad_(True) for t in clean))
    parts = parameter_consistency_loss(clean, clean)
    assert (parts.shape.item(), parts.pose.item(), parts.camera.item()) == (0.0, 0.0, 0.0)
    occluded = SMPLParameters(
        clean.pose.detach().clone().requires_grad_(True),
        torch.full((2, 3, 10), 2.0, requires_grad=True),
        torch.full((2, 3, 3), 0.1, requires_grad=True),
    )
    parts = parameter_consistency_loss(clean, occluded)
    assert parts.shape.item() == pytest.approx(4.0)
    assert parts.pose.item() == 0.0
    assert parts.camera.item() == pytest.approx(0.01)
    sum(parts).backward()
    assert clean.betas.grad is None  # the clean prediction is the target
    assert occluded.betas.grad is not None


def test_norm_loss() -> None:
    assert norm_loss(torch.zeros(2, 72), torch.zeros(2, 10)).item() == 0.0
    assert norm_loss(torch.full((2, 72), 0.5), torch.full((2, 10), 2.0)).item() == pytest.approx(
        4.25
    )


def test_weighted_total_applies_lambdas_and_skips_zero() -> None:
    weights = LossWeights(pose=60.0, shape=0.06, mask=0.0)
    terms = {
        "pose": torch.tensor(0.5),
        "shape": torch.tensor(10.0),
        "mask": torch.tensor(float("nan")),
    }
    assert weighted_total(terms, weights).item() == pytest.approx(30.6)
    assert weighted_total({"mask": torch.tensor(1.0)}, weights).item() == 0.0
    with pytest.raises(KeyError, match="posee"):
        weighted_total({"posee": torch.tensor(1.0)}, weights)


def test_every_weight_has_a_name_weighted_total_accepts() -> None:
    names = list(LossWeights.model_fields)
    weights = LossWeights(**dict.fromkeys(names, 1.0))
    terms = {name: torch.tensor(float(i)) for i, name in enumerate(names)}
    assert weighted_total(terms, weights).item() == sum(range(len(names)))
