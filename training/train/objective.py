"""The loss terms of one batch, named by :class:`LossWeights` fields, for SPS-Net and MAED.

:class:`Objective` runs the network on a collated :class:`~training.data.batch.Clip` and
returns every term whose λ is not 0 (and only those: a term switched off costs nothing, not
even a forward pass), so that :func:`training.losses.weighted_total` applies the recipe.

Common to both families (SPS-Net Eq. 4, MAED Eq. 2): the predicted SMPL goes through the body
model to SPIN's 49 joints, which give the 3D loss (pelvis-aligned) and, projected by the
predicted weak-perspective camera, the 2D loss in crop coordinates; pose and shape are compared
with the ground truth where ``has_smpl``. SPS-Net adds L_feature (Eq. 3), L_mask (Eq. 5),
L_camera (Eq. 6) and L_param (Eq. 8); its L_adv (Eq. 7) needs the discriminator, which is not
part of this module (see :func:`adversarial_term`). MAED adds L_NORM.

L_camera: a batch then holds ``T + 1`` frames (:func:`clip_frames`). Segment 1 is frames
``0 … T−1`` and carries every other term; segment 2 is frames ``1 … T``. The image encoder of
SPS-Net works frame by frame, so it runs once on the ``T + 1`` frames and both segments reuse
its features: only the temporal part and the regressors run twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.func import functional_call

from training.body import BodyModel
from training.body.joint_sets import SPIN49_NAMES
from training.data.occlusion import synthesize_occlusion
from training.geometry import axis_angle_to_rotmat, rotmats_to_smpl_pose, weak_perspective_project
from training.losses import (
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
)
from training.models.spsnet import SPSNet
from training.recipes import LossWeights, Recipe, SPSNetConfig
from training.render.silhouette import soft_silhouette

# The joints of every training file (SPIN's 49) and their pelvis, the mean of the two hips.
JOINT_SET = "spin49"
SPIN49_HIPS = (SPIN49_NAMES.index("right_hip"), SPIN49_NAMES.index("left_hip"))  # (27, 28)
# The mask loss renders at the crop size divided by this (56 px for a 224 crop): the soft
# rasteriser's cost grows with the pixels each face covers, and a silhouette needs no detail.
MASK_DOWNSAMPLE = 4
# Which terms each family defines; any other term with λ ≠ 0 is a recipe error.
COMMON_TERMS = frozenset({"keypoints_2d", "joints_3d", "pose", "shape"})
FAMILY_TERMS = {
    "spsnet": COMMON_TERMS
    | {"adversarial", "feature", "mask", "camera", "param_pose", "param_shape", "param_camera"},
    "maed": COMMON_TERMS | {"norm"},
}
PARAM_TERMS = ("param_shape", "param_pose", "param_camera")  # in ParameterConsistency's order
# What an SPS-Net that reads no images reads instead, as its errors name it.
_INPUTS = {"features": "precomputed features", "landmarks": "landmarks"}

Batch = Mapping[str, Tensor]


class Motion(NamedTuple):
    """A motion for the discriminator: ``pose (B, T, 72)`` axis-angle, ``betas (B, 10)``."""

    pose: Tensor
    betas: Tensor


class ObjectiveOutput(NamedTuple):
    """``terms``: scalar losses by :class:`LossWeights` name; ``motion``: the predicted motion
    of segment 1 for the discriminator (None when λ_adv = 0)."""

    terms: dict[str, Tensor]
    motion: Motion | None


def active_terms(weights: LossWeights) -> frozenset[str]:
    """The names of the terms whose λ is not 0."""
    return frozenset(name for name in LossWeights.model_fields if getattr(weights, name) != 0)


def needs_shifted_pair(recipe: Recipe) -> bool:
    """Whether a training clip holds ``T + 1`` frames, for L_camera (SPS-Net §4.1)."""
    return isinstance(recipe.model, SPSNetConfig) and recipe.losses.camera != 0


def clip_frames(recipe: Recipe, clip_length: int) -> int:
    """Frames a training clip must hold: ``T``, or ``T + 1`` when L_camera is on."""
    return clip_length + 1 if needs_shifted_pair(recipe) else clip_length


def check_terms(recipe: Recipe) -> None:
    """Raise ValueError when a term with λ ≠ 0 cannot be computed for the recipe's network."""
    family = recipe.model.family
    foreign = sorted(active_terms(recipe.losses) - FAMILY_TERMS[family])
    if foreign:
        raise ValueError(f"{recipe.name}: {family} has no loss term(s) {foreign}; set their λ to 0")
    config = recipe.model
    if not isinstance(config, SPSNetConfig):
        return
    if recipe.losses.feature != 0 and not config.forecasting:
        raise ValueError(f"{recipe.name}: L_feature needs the forecasting module F")
    active = active_terms(recipe.losses)
    if config.encoder != "resnet50" and active & set(PARAM_TERMS):
        raise ValueError(
            f"{recipe.name}: L_param occludes frames, which {_INPUTS[config.encoder]} cannot "
            "show; use an image encoder or set param_shape, param_pose and param_camera to 0"
        )
    if config.encoder == "landmarks" and "mask" in active:
        raise ValueError(f"{recipe.name}: landmark data has no person masks; set mask to 0")


def reads_features(model: nn.Module) -> bool:
    """Whether the network reads precomputed features (SPS-Net with ``encoder: features``)."""
    return isinstance(model, SPSNet) and model.encoder is None


def per_frame_inputs(batch: Batch) -> Tensor:
    """What a network's per-frame part reads: ``batch["landmarks"] (B, T, 33, 6)`` for the
    keypoint families' data, else the crops ``batch["frames"] (B, T, 3, S, S)``."""
    return batch["landmarks"] if "landmarks" in batch else batch["frames"]


def predict(model: nn.Module, batch: Batch) -> dict[str, Tensor]:
    """The network's outputs on a batch: ``batch["features"] (B, T, D)`` for a network that
    reads features, else :func:`per_frame_inputs`."""
    if reads_features(model):
        return dict(model(features=batch["features"]))
    return dict(model(per_frame_inputs(batch)))


class Objective(nn.Module):
    """The loss terms of one batch for the generator (the network being trained).

    Holds the network (``network``) and the body model (``body``); wrap this module, not the
    network, in DistributedDataParallel, so that one forward per step covers every pass of the
    network (both segments, the occluded frames).
    """

    def __init__(
        self,
        recipe: Recipe,
        network: nn.Module,
        body: BodyModel,
        occlusion_generator: torch.Generator,
        *,
        mixed_precision: bool = False,
    ) -> None:
        check_terms(recipe)
        super().__init__()
        self.network = network
        self.body = body
        self.active = active_terms(recipe.losses)
        self.shifted_pair = needs_shifted_pair(recipe)
        self.occlusion_generator = occlusion_generator
        self.mixed_precision = mixed_precision

    def forward(self, batch: Batch) -> ObjectiveOutput:
        """Terms of a batch of ``B`` clips of ``T`` frames (``T + 1`` with L_camera).

        Returns:
            The active terms, scalars, and the predicted motion (``pose (B, T, 72)``,
            ``betas (B, 10)``) when L_adv is active.
        """
        length = batch["keypoints_2d"].shape[1] - int(self.shifted_pair)
        first = slice(0, length)
        inputs = self._inputs(per_frame_inputs(batch), batch.get("features"))
        out = self._run(inputs[:, first])
        terms: dict[str, Tensor] = {}
        if self.shifted_pair:
            shifted = self._run(inputs[:, 1 : length + 1])
            terms["camera"] = camera_consistency_loss(out["cam"], shifted["cam"])
        labels = {name: value[:, first] for name, value in batch.items()}
        terms |= self._supervised_terms(out, labels)
        if self.active & set(PARAM_TERMS):
            terms |= self._param_terms(out, labels)
        if "feature" in self.active:
            terms["feature"] = feature_loss(out["features"], out["forecast"])
        if "norm" in self.active:
            terms["norm"] = norm_loss(_axis_angle(out), out["betas"])
        motion = None
        if "adversarial" in self.active:
            motion = Motion(_axis_angle(out), out["betas"][:, 0])
        # L_SMPL and L_param come in groups: keep only the members whose λ is not 0.
        return ObjectiveOutput({k: v for k, v in terms.items() if k in self.active}, motion)

    def _inputs(self, frames: Tensor, features: Tensor | None) -> Tensor:
        """What the network's temporal part reads for every frame of the batch.

        SPS-Net: the features ``(B, T, D)``, encoded here once for all frames (the encoder is
        per frame, so the two segments of L_camera share them). MAED: the frames (or
        landmarks), whose encoder mixes frames and so must see each segment whole.
        """
        if not isinstance(self.network, SPSNet):
            return frames
        if self.network.encoder is None:
            if features is None:
                raise ValueError("this SPS-Net reads precomputed features: the batch has none")
            return features
        with self._autocast(frames):
            return self.network.encode(frames).float()

    def _run(self, inputs: Tensor) -> dict[str, Tensor]:
        """The network on ``inputs`` (see :meth:`_inputs`), under autocast when asked; the
        outputs in float32, as the body model and the losses run in full precision."""
        with self._autocast(inputs):
            if isinstance(self.network, SPSNet):
                out = self.network(features=inputs)
            else:
                out = self.network(inputs)
        return {name: value.float() for name, value in out.items()}

    def _autocast(self, like: Tensor) -> torch.autocast:
        return torch.autocast(like.device.type, enabled=self.mixed_precision)

    def _supervised_terms(self, out: dict[str, Tensor], labels: Batch) -> dict[str, Tensor]:
        """L_SMPL, L_3D, L_2D and L_mask: the terms against the batch's annotations."""
        terms: dict[str, Tensor] = {}
        if self.active & {"pose", "shape"}:
            b, t = out["betas"].shape[:2]
            true_rotmat = axis_angle_to_rotmat(labels["pose"].reshape(b, t, -1, 3))
            pose, shape = smpl_parameter_losses(
                out["rotmat"], true_rotmat, out["betas"], labels["betas"], labels["has_smpl"]
            )
            terms |= {"pose": pose, "shape": shape}
        if not self.active & {"joints_3d", "keypoints_2d", "mask"}:
            return terms
        vertices = self._vertices(out)
        joints = self.body.regress_joints(vertices.flatten(0, 1), JOINT_SET)
        joints = joints.reshape(*vertices.shape[:2], *joints.shape[1:])  # (B, T, 49, 3)
        if "joints_3d" in self.active:
            true = labels["joints_3d"]
            terms["joints_3d"] = joints_3d_loss(joints, true[..., :3], true[..., 3], SPIN49_HIPS)
        if "keypoints_2d" in self.active:
            projected = weak_perspective_project(joints, out["cam"])
            terms["keypoints_2d"] = keypoints_2d_loss(projected, labels["keypoints_2d"])
        if "mask" in self.active:
            terms["mask"] = self._mask_term(vertices, out["cam"], labels)
        return terms

    def _vertices(self, out: dict[str, Tensor]) -> Tensor:
        """The predicted meshes ``(B, T, V, 3)``."""
        b, t = out["betas"].shape[:2]
        posed = self.body(out["rotmat"].flatten(0, 1), out["betas"].flatten(0, 1))
        return posed.vertices.reshape(b, t, *posed.vertices.shape[1:])

    def _mask_term(self, vertices: Tensor, cam: Tensor, labels: Batch) -> Tensor:
        """Eq. 5 on the frames that have a mask (rendering only those); 0 when none has."""
        if "mask" not in labels:
            return cam.new_zeros(())
        has_mask = labels["has_mask"].bool()
        if not has_mask.any():
            return cam.new_zeros(())
        return silhouette_term(
            vertices[has_mask], self.body.faces, cam[has_mask], labels["mask"][has_mask]
        )

    def _param_terms(self, out: dict[str, Tensor], labels: Batch) -> dict[str, Tensor]:
        """Eq. 8: the network on occluded frames against its prediction on the clean ones."""
        frames = labels["frames"]
        occluded, _ = synthesize_occlusion(
            frames,
            crop_to_pixels(labels["keypoints_2d"], frames.shape[-1]),
            self.occlusion_generator,
        )
        student = self._run(self._inputs(occluded, None))
        parts = parameter_consistency_loss(
            SMPLParameters(out["rotmat"], out["betas"], out["cam"]),
            SMPLParameters(student["rotmat"], student["betas"], student["cam"]),
        )
        return dict(zip(PARAM_TERMS, parts, strict=True))


def silhouette_term(vertices: Tensor, faces: Tensor, cam: Tensor, mask: Tensor) -> Tensor:
    """L_mask (Eq. 5) of ``N`` frames at ``1 / MASK_DOWNSAMPLE`` of the crop's size.

    Args:
        vertices: ``(N, V, 3)`` predicted meshes; faces: ``(F, 3)``; cam: ``(N, 3)``.
        mask: ``(N, S, S)`` the person's mask in the crop, pooled to the rendered size (the
            fraction of each rendered pixel that the person covers).
    """
    size = max(mask.shape[-1] // MASK_DOWNSAMPLE, 1)
    pooled = nn.functional.adaptive_avg_pool2d(mask[:, None].float(), size)[:, 0]
    return mask_loss(soft_silhouette(vertices, faces, cam, size), pooled)


def crop_to_pixels(keypoints_2d: Tensor, size: int) -> Tensor:
    """``(..., J, 3)`` crop coordinates in [−1, 1] and confidence → pixels of an ``S``-pixel
    crop (pixel centres at integers, as the renderer) and the same confidence."""
    pixels = (keypoints_2d[..., :2] + 1.0) * (size / 2.0) - 0.5
    return torch.cat([pixels, keypoints_2d[..., 2:]], dim=-1)


def _axis_angle(out: dict[str, Tensor]) -> Tensor:
    """θ ``(B, T, 72)``: SPS-Net gives it; MAED's rotation matrices are converted."""
    if "pose" in out:
        return out["pose"]
    rotmat = out["rotmat"]
    return rotmats_to_smpl_pose(rotmat.flatten(0, 1)).reshape(*rotmat.shape[:2], -1)


def adversarial_term(discriminator: nn.Module, motion: Motion) -> Tensor:
    """L_adv for the generator (Eq. 7); the gradient reaches the network through ``motion``.

    D runs on detached copies of its parameters: they get no gradient from this term, so they
    change only on D's own step, and no flag of D is toggled (which a DDP-wrapped D would not
    survive).
    """
    frozen = {name: value.detach() for name, value in discriminator.named_parameters()}
    d_fake = functional_call(discriminator, frozen, (motion.pose, motion.betas))
    return adversarial_loss(d_fake)


def discriminator_term(discriminator: nn.Module, real: Motion, fake: Motion) -> Tensor:
    """D's own loss (Eq. 7): real motion windows against the detached predictions."""
    d_real = discriminator(real.pose, real.betas)
    d_fake = discriminator(fake.pose.detach(), fake.betas.detach())
    return discriminator_loss(d_real, d_fake)
