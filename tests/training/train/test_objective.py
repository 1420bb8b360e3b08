"""The loss terms of a batch: every term the recipe weighs, only those, and right values."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import default_collate

from training.body import BodyModel
from training.geometry import axis_angle_to_rotmat
from training.losses import weighted_total
from training.models import build_model
from training.models.motion_discriminator import MotionDiscriminator
from training.recipes import Recipe
from training.train.loop import TrainingData
from training.train.objective import (
    Motion,
    Objective,
    adversarial_term,
    check_terms,
    discriminator_term,
)

SPSNET_TERMS = {"keypoints_2d", "joints_3d", "pose", "shape", "feature", "mask", "camera"}
PARAM_TERMS = {"param_pose", "param_shape", "param_camera"}
MAED_TERMS = {"keypoints_2d", "joints_3d", "pose", "shape", "norm"}
EXACT = 1e-8  # a loss of predictions equal to the truth, up to float rounding


def batch_of(data: TrainingData, size: int = 2) -> dict[str, Tensor]:
    return default_collate([data.train[i] for i in range(size)])


def objective(recipe: Recipe, body: BodyModel, network: nn.Module | None = None) -> Objective:
    torch.manual_seed(0)
    network = network or build_model(recipe)
    return Objective(recipe, network, body, torch.Generator().manual_seed(0))


def count_calls(module: nn.Module) -> list[int]:
    calls: list[int] = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_spsnet_gives_every_weighted_term_and_the_motion(local_recipe, body, training_data):
    recipe = local_recipe("spsnet_train")
    output = objective(recipe, body)(batch_of(training_data))
    assert set(output.terms) == SPSNET_TERMS
    assert all(torch.isfinite(term) and term.ndim == 0 for term in output.terms.values())
    assert output.motion is not None
    assert output.motion.pose.shape == (2, 4, 72)  # segment 1: T of the T + 1 frames
    assert output.motion.betas.shape == (2, 10)


def test_terms_with_zero_weight_are_not_computed(local_recipe, body, training_data):
    only_2d = dict.fromkeys(SPSNET_TERMS | {"adversarial"}, 0) | {"keypoints_2d": 300}
    recipe = local_recipe("spsnet_train", losses=only_2d)
    step = objective(recipe, body)
    regressor_calls = count_calls(step.network.pose_regressor)
    body_calls = count_calls(step.body)
    batch = batch_of(training_data)
    output = step({name: value[:, :4] for name, value in batch.items()})  # no L_camera: T frames
    assert set(output.terms) == {"keypoints_2d"}
    assert output.motion is None
    assert len(regressor_calls) == 1  # one segment, no occluded pass
    assert len(body_calls) == 1


def test_camera_pair_and_occlusion_share_one_encoding(local_recipe, body, training_data):
    """With an image encoder, the T + 1 frames are encoded once for both segments of L_camera;
    L_param encodes the occluded frames; the regressors run for each of the three passes."""
    recipe = local_recipe(
        "spsnet_train",
        model={"encoder": "resnet50", "feature_dim": 2048},
        losses={"param_shape": 0.06, "param_pose": 60, "param_camera": 0.1},
    )
    check_terms(recipe)
    step = objective(recipe, body)
    encoder_calls = count_calls(step.network.encoder)
    regressor_calls = count_calls(step.network.pose_regressor)
    output = step(batch_of(training_data))
    assert set(output.terms) == SPSNET_TERMS | PARAM_TERMS
    assert len(encoder_calls) == 2  # clean T + 1 frames, occluded T frames
    assert len(regressor_calls) == 3  # segment 1, segment 2, occluded segment 1
    # Only the occluded pass learns from L_param: the clean prediction is its target.
    assert output.terms["param_pose"].requires_grad


def test_maed_gives_its_terms(local_recipe, body, maed_data):
    recipe = local_recipe("maed_train")
    output = objective(recipe, body)(batch_of(maed_data))
    assert set(output.terms) == MAED_TERMS
    assert output.motion is None
    assert torch.isfinite(weighted_total(output.terms, recipe.losses))


class Truth(nn.Module):
    """A "network" that predicts the ground truth of the batch it was made from."""

    def __init__(self, batch: dict[str, Tensor]) -> None:
        super().__init__()
        b, t = batch["betas"].shape[:2]
        self.out = {
            "rotmat": axis_angle_to_rotmat(batch["pose"].reshape(b, t, 24, 3)),
            "betas": batch["betas"],
            "cam": torch.tensor([0.9, 0.0, 0.0]).expand(b, t, 3),  # the synthetic camera
        }
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, frames: Tensor) -> dict[str, Tensor]:
        return {name: value + self.anchor for name, value in self.out.items()}


def test_the_truth_has_zero_joint_and_parameter_losses(local_recipe, body, maed_data):
    """Pelvis, 49 joints, projection and SMPL comparison agree with the data's conventions."""
    recipe = local_recipe("maed_train", losses={"norm": 0})
    batch = batch_of(maed_data)
    output = objective(recipe, body, Truth(batch))(batch)
    assert set(output.terms) == MAED_TERMS - {"norm"}
    for name, term in output.terms.items():
        assert term.item() < EXACT, name


@pytest.mark.parametrize(
    ("name", "changes", "message"),
    [
        ("maed_train", {"losses": {"mask": 300}}, "no loss term"),
        ("spsnet_train", {"losses": {"param_pose": 60}}, "precomputed features"),
        ("spsnet_train", {"model": {"forecasting": False}}, "forecasting"),
    ],
)
def test_terms_the_network_cannot_give_are_recipe_errors(local_recipe, name, changes, message):
    with pytest.raises(ValueError, match=message):
        check_terms(local_recipe(name, **changes))


def test_adversarial_term_leaves_the_discriminator_without_gradient(
    local_recipe, body, training_data
):
    recipe = local_recipe("spsnet_train")
    output = objective(recipe, body)(batch_of(training_data))
    assert output.motion is not None
    discriminator = MotionDiscriminator()
    adversarial_term(discriminator, output.motion).backward(retain_graph=True)
    assert all(p.grad is None for p in discriminator.parameters())
    real = training_data.motion
    assert real is not None
    windows = default_collate([real[i] for i in range(2)])
    loss = discriminator_term(
        discriminator, Motion(windows["pose"], windows["betas"]), output.motion
    )
    loss.backward()
    assert all(p.grad is not None for p in discriminator.parameters())
