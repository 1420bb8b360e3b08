"""Every training loss of SPS-Net (Lee et al., §3.3–3.4, Eq. 3–8) and MAED (Wan et al., §3.2,
Eq. 1–2), one plain function each, plus the λ-weighted sum of a recipe.

**What ‖·‖₂ means here.** Both papers write their terms as ``‖x − x̂‖₂``, but the code they
build on (VIBE for SPS-Net, MAED's own) computes mean squared errors: ``nn.MSELoss`` on joints,
on rotation matrices, on shapes, and a least-squares GAN loss. The λ values of SPS-Net §4.1 and
of MAED's configs were tuned against those means, so every term here is a **mean of squared
errors** (over the elements that count), never a sum over frames and never a root. The few
places where the papers' code differs from a plain mean are said in the function's docstring.

Masks: every function that takes a validity mask or confidence averages over the weighted
elements only, ``Σ w·e / Σ w``, with the denominator clamped to 1 so an empty mask gives 0 (and
a zero gradient) instead of NaN; the result stays connected to the graph either way.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from training.recipes.schema import LossWeights

# Smallest silhouette probability the mask loss takes the log of (Eq. 5): −log(1e-6) ≈ 13.8
# bounds the loss and its gradient where the rendered silhouette is empty.
MASK_LOG_EPS = 1e-6


class SMPLParameters(NamedTuple):
    """One prediction of the regressors, as the consistency loss (Eq. 8) compares them.

    pose: ``(..., 24, 3, 3)`` rotation matrices; betas: ``(..., 10)``; cam: ``(..., 3)``
    weak-perspective ``(s, tx, ty)``. The leading dimensions (e.g. ``B, T``) are the same.
    """

    pose: Tensor
    betas: Tensor
    cam: Tensor


class ParameterConsistency(NamedTuple):
    """The three parts of Eq. 8, weighted by λ_param^β, λ_param^θ and λ_param^camera."""

    shape: Tensor
    pose: Tensor
    camera: Tensor


def _weighted_mean(squared_error: Tensor, weight: Tensor) -> Tensor:
    """``Σ w·e / Σ w`` with ``weight`` broadcast to ``squared_error``; 0 when ``Σ w = 0``."""
    weight = weight.to(squared_error.dtype).expand_as(squared_error)
    return (weight * squared_error).sum() / weight.sum().clamp(min=1.0)


def _check_same_shape(a: Tensor, b: Tensor, names: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{names} must have the same shape, got {tuple(a.shape)}, {tuple(b.shape)}"
        )


def smpl_parameter_losses(
    pred_rotmat: Tensor, gt_rotmat: Tensor, pred_betas: Tensor, gt_betas: Tensor, has_smpl: Tensor
) -> tuple[Tensor, Tensor]:
    """L_SMPL (SPS-Net Eq. 4, MAED Eq. 2): pose and shape parameter losses.

    The pose term is the MSE between rotation matrices (VIBE's and MAED's code convert both
    poses to matrices first, which avoids the axis-angle ambiguity); the shape term is the MSE
    of β. Both average over the frames that have SMPL ground truth only.

    Args:
        pred_rotmat, gt_rotmat: ``(..., 24, 3, 3)``.
        pred_betas, gt_betas: ``(..., 10)``.
        has_smpl: ``(...)`` bool or 0/1, which frames have SMPL ground truth.

    Returns:
        ``(pose_loss, shape_loss)``, scalars, for λ_θ and λ_β.
    """
    _check_same_shape(pred_rotmat, gt_rotmat, "pred_rotmat and gt_rotmat")
    _check_same_shape(pred_betas, gt_betas, "pred_betas and gt_betas")
    frames = has_smpl.to(pred_rotmat.dtype)
    pose = _weighted_mean((pred_rotmat - gt_rotmat).square(), frames[..., None, None, None])
    shape = _weighted_mean((pred_betas - gt_betas).square(), frames[..., None])
    return pose, shape


def joints_3d_loss(
    pred: Tensor, gt: Tensor, valid: Tensor, hips: tuple[int, int] = (2, 3)
) -> Tensor:
    """L_joint^3D (SPS-Net Eq. 4) / L_3D (MAED Eq. 2): MSE of pelvis-aligned 3D joints.

    Both skeletons are translated so that their pelvis, the mean of the two hips, is at the
    origin (the papers' evaluation protocol, and VIBE's/MAED's training loss), then the squared
    coordinate errors are averaged over the valid joints.

    Args:
        pred: ``(..., J, 3)`` predicted joints in metres.
        gt: ``(..., J, 3)`` true joints in metres.
        valid: ``(..., J)`` bool or weight: which true joints exist (VIBE-style files keep it
            as the fourth column of ``joints3D``).
        hips: indices of the two hips in the joint set; the default is the 14-joint LSP order.

    Returns:
        Scalar.
    """
    _check_same_shape(pred, gt, "pred and gt")

    def centred(joints: Tensor) -> Tensor:
        pelvis = (joints[..., hips[0], :] + joints[..., hips[1], :]) / 2
        return joints - pelvis[..., None, :]

    return _weighted_mean((centred(pred) - centred(gt)).square(), valid[..., None])


def keypoints_2d_loss(pred: Tensor, gt: Tensor) -> Tensor:
    """L_joint^2D (SPS-Net Eq. 4) / L_2D (MAED Eq. 2): confidence-weighted MSE of 2D keypoints.

    Coordinates are the crop's normalised [−1, 1] (the projection's output). The squared error
    of each coordinate is weighted by its keypoint's confidence and divided by the sum of the
    weights. VIBE's and MAED's code divide by the count of all keypoints instead, which equals
    this when every keypoint is visible and otherwise shrinks the loss of sparsely annotated
    frames; averaging over what is annotated keeps λ_joint^2D meaning the same per keypoint.

    Args:
        pred: ``(..., J, 2)``.
        gt: ``(..., J, 3)``, the last column the confidence in [0, 1] (0: missing).

    Returns:
        Scalar.
    """
    if gt.shape[-1] != 3 or pred.shape[:-1] != gt.shape[:-1] or pred.shape[-1] != 2:
        raise ValueError(f"pred must be (..., J, 2), gt (..., J, 3); got {pred.shape}, {gt.shape}")
    return _weighted_mean((pred - gt[..., :2]).square(), gt[..., 2:3])


def feature_loss(features: Tensor, forecast: Tensor) -> Tensor:
    """L_feature (SPS-Net Eq. 3): the forecasting module's regression of the next feature.

    ``forecast[:, i]`` is f'_{i+2} = F(f_{i+1}): the forecasts of frames 2 … T (the last frame's
    forecast has no target and is not made, as the paper says). The targets are detached: the
    loss trains F to predict the encoder, not the encoder to be predictable (the paper's encoder
    is frozen, where this changes nothing).

    Args:
        features: ``(B, T, D)`` encoder features f_1 … f_T, ``T ≥ 2``.
        forecast: ``(B, T − 1, D)`` forecasts f'_2 … f'_T.

    Returns:
        Scalar: mean squared error over ``B × (T − 1) × D``.
    """
    if features.ndim != 3 or features.shape[1] < 2:
        raise ValueError(f"features must be (B, T, D) with T >= 2, got {tuple(features.shape)}")
    _check_same_shape(features[:, 1:], forecast, "features of frames 2..T and forecast")
    return (forecast - features[:, 1:].detach()).square().mean()


def mask_loss(silhouette: Tensor, pseudo_mask: Tensor) -> Tensor:
    """L_mask (SPS-Net Eq. 5) as a binary cross-entropy, averaged over pixels:
    ``−[m log p + (1 − m) log(1 − p)]``.

    Eq. 5 as printed keeps only ``−m log p``, which rewards covering the pseudo mask and never
    penalises silhouette outside it. Trained that way (``spsnet_cpu``, λ_mask = 300), the network
    inflated the body to cover the whole crop: the mask term fell from 0.72 to 0.01 while the β
    error rose from 0.8 to 274 and PA-MPJPE stayed near 270 mm. The second term, which makes
    the silhouette match rather than merely cover, stops that. Probabilities are clamped to
    [:data:`MASK_LOG_EPS`, 1 − :data:`MASK_LOG_EPS`] so the loss and its gradient stay finite.

    Args:
        silhouette: ``(..., H, W)`` rendered silhouette probabilities in [0, 1].
        pseudo_mask: ``(..., H, W)`` the segmentation mask, 0/1 (or soft).

    Returns:
        Scalar.
    """
    _check_same_shape(silhouette, pseudo_mask, "silhouette and pseudo_mask")
    probability = silhouette.clamp(min=MASK_LOG_EPS, max=1.0 - MASK_LOG_EPS)
    mask = pseudo_mask.to(probability.dtype)
    return -(mask * probability.log() + (1.0 - mask) * (1.0 - probability).log()).mean()


def camera_consistency_loss(cam_first: Tensor, cam_second: Tensor) -> Tensor:
    """L_camera (SPS-Net Eq. 6): the same frames, seen in two segments, get the same camera.

    The second segment starts one frame later (SPS-Net §4.1), so frame ``i + 1`` of the first
    segment is frame ``i`` of the second: ``cam_first[:, 1:]`` is compared with
    ``cam_second[:, :-1]``. Both sides carry gradients, as Eq. 6 is symmetric.

    Args:
        cam_first, cam_second: ``(B, T, 3)`` cameras predicted for the two segments, ``T ≥ 2``.

    Returns:
        Scalar: MSE over the ``T − 1`` shared frames.
    """
    _check_same_shape(cam_first, cam_second, "cam_first and cam_second")
    if cam_first.ndim != 3 or cam_first.shape[1] < 2:
        raise ValueError(f"cameras must be (B, T, 3) with T >= 2, got {tuple(cam_first.shape)}")
    return (cam_first[:, 1:] - cam_second[:, :-1]).square().mean()


def discriminator_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """Eq. 7 (SPS-Net) for the discriminator D: least squares, real → 1, fake → 0.

    ``mean((D(Θ) − 1)²) + mean(D(Θ̂)²)``, VIBE's motion-discriminator loss. The caller detaches
    the fake sequences so that this loss only trains D.

    Args:
        d_real: ``(N, ...)`` D's outputs on sequences from AMASS.
        d_fake: ``(M, ...)`` D's outputs on predicted sequences.

    Returns:
        Scalar.
    """
    return (d_real - 1).square().mean() + d_fake.square().mean()


def adversarial_loss(d_fake: Tensor) -> Tensor:
    """L_adv (SPS-Net Eq. 7) for the generator: ``mean((D(Θ̂) − 1)²)``, weighted by λ_adv.

    The generator's side of the least-squares game of Eq. 7: predicted sequences should be
    scored as real.

    Args:
        d_fake: ``(M, ...)`` D's outputs on predicted sequences.

    Returns:
        Scalar.
    """
    return (d_fake - 1).square().mean()


def parameter_consistency_loss(
    pred: SMPLParameters, pred_occluded: SMPLParameters
) -> ParameterConsistency:
    """L_param (SPS-Net Eq. 8): occluded frames must predict what the clean frames predict.

    The clean frames' predictions supervise the occluded ones (§3.4), so they are detached
    targets. Pose is compared as rotation matrices, as in :func:`smpl_parameter_losses`.

    Args:
        pred: the predictions on the original frames.
        pred_occluded: those on the same frames with synthetic occlusion.

    Returns:
        The MSE of β, of the pose matrices and of the cameras.
    """
    for target, student, name in zip(pred, pred_occluded, SMPLParameters._fields, strict=True):
        _check_same_shape(target, student, f"{name} of both predictions")
    return ParameterConsistency(
        shape=(pred_occluded.betas - pred.betas.detach()).square().mean(),
        pose=(pred_occluded.pose - pred.pose.detach()).square().mean(),
        camera=(pred_occluded.cam - pred.cam.detach()).square().mean(),
    )


def norm_loss(pose: Tensor, betas: Tensor) -> Tensor:
    """L_NORM (MAED Eq. 1–2): ``‖β‖₂ + ‖θ‖₂``, a pull of the parameters towards 0.

    Read with this module's convention: the mean square of the axis-angle pose plus that of β.
    (MAED's code takes one Frobenius norm of all frames' ``[θ, β]`` divided by the frame count;
    that value depends on the batch size, which the mean here does not.)

    Args:
        pose: ``(..., 72)`` axis-angle (a rotation matrix's norm is constant, so the norm is
            taken on axis-angle as MAED does).
        betas: ``(..., 10)``.

    Returns:
        Scalar.
    """
    return pose.square().mean() + betas.square().mean()


def weighted_total(terms: dict[str, Tensor], weights: LossWeights) -> Tensor:
    """``Σ λ_name · term``, the total loss of a recipe (SPS-Net §4.1, MAED Eq. 1).

    Args:
        terms: scalar losses by the name of their :class:`LossWeights` field (``"pose"``,
            ``"mask"``, ``"param_camera"`` …).
        weights: the recipe's λ values. Terms whose λ is 0 are skipped (not even multiplied,
            so a term switched off cannot bring a NaN in).

    Returns:
        Scalar; 0 when every term is skipped.

    Raises:
        KeyError: a term's name is not a field of :class:`LossWeights`.
    """
    known = LossWeights.model_fields
    unknown = sorted(set(terms) - set(known))
    if unknown:
        raise KeyError(f"unknown loss term(s) {unknown}; the names are {sorted(known)}")
    total = torch.zeros(())
    for name, term in terms.items():
        weight = getattr(weights, name)
        if weight != 0:
            total = total.to(term) + weight * term
    return total
