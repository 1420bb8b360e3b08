"""A tiny configuration of each paper's network fits four short synthetic sequences.

The data are exact (poses of the walk clip on the stand-in body, random shapes, a fixed crop
camera); the loss is the recipe's weighted total of the terms this data supervises. If the
network, its losses or the gradient path between them were broken, the loss would not fall.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.support.synthetic import Sequences, make_sequences
from training.body import BodyModel, load_body_model
from training.geometry import rotmats_to_smpl_pose, weak_perspective_project
from training.losses import (
    feature_loss,
    joints_3d_loss,
    keypoints_2d_loss,
    norm_loss,
    smpl_parameter_losses,
    weighted_total,
)
from training.models import build_model
from training.recipes import Recipe, load_recipe

RECIPES = Path(__file__).parents[2] / "support" / "recipes"
SMPL_HIPS = (1, 2)  # left and right hip in SMPL's 24 joints
REQUIRED_DROP = 0.9  # the bar: total loss down by at least 90 %
STEPS = 250
LEARNING_RATE = 3e-3


@pytest.fixture(scope="module")
def body() -> BodyModel:
    return load_body_model("standin")


@pytest.fixture(scope="module")
def data(body: BodyModel) -> Sequences:
    return make_sequences(body, num_sequences=4, num_frames=4, image_size=64, feature_dim=32)


def total_loss(
    recipe: Recipe, out: dict[str, torch.Tensor], data: Sequences, body: BodyModel
) -> torch.Tensor:
    b, t = data.betas.shape[:2]
    every_frame = torch.ones(b, t)
    pose, shape = smpl_parameter_losses(
        out["rotmat"], data.rotmat, out["betas"], data.betas, every_frame
    )
    posed = body(out["rotmat"].flatten(0, 1), out["betas"].flatten(0, 1))
    joints = posed.joints.reshape(b, t, 24, 3)
    terms = {
        "pose": pose,
        "shape": shape,
        "joints_3d": joints_3d_loss(joints, data.joints_3d, torch.ones(b, t, 24), SMPL_HIPS),
        "keypoints_2d": keypoints_2d_loss(
            weak_perspective_project(joints, out["cam"]), data.keypoints_2d
        ),
    }
    if "forecast" in out:
        terms["feature"] = feature_loss(out["features"], out["forecast"])
    if recipe.losses.norm:
        terms["norm"] = norm_loss(rotmats_to_smpl_pose(out["rotmat"].flatten(0, 1)), out["betas"])
    return weighted_total(terms, recipe.losses)


@pytest.mark.parametrize(
    ("recipe_file", "input_name"),
    [("spsnet_tiny.yaml", "features"), ("maed_tiny.yaml", "frames")],
)
def test_tiny_network_overfits_four_sequences(recipe_file, input_name, data, body):
    torch.manual_seed(0)
    recipe = load_recipe(RECIPES / recipe_file)
    model = build_model(recipe)
    inputs = getattr(data, input_name)

    def loss() -> torch.Tensor:
        out = model(features=inputs) if input_name == "features" else model(inputs)
        return total_loss(recipe, out, data, body)

    with torch.no_grad():
        first = loss().item()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    for _ in range(STEPS):
        optimizer.zero_grad()
        value = loss()
        value.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        last = loss().item()
    assert last <= (1 - REQUIRED_DROP) * first, f"loss {first:.3f} -> {last:.3f}"
