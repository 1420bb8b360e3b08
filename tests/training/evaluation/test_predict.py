"""Prediction over a dataset file: every row covered, overlapping windows blended."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from training.data.dataset_file import read_dataset_file, write_with_fields
from training.evaluation.predict import predict_dataset, window_weights
from training.geometry import smpl_pose_to_rotmats
from training.recipes import Recipe, load_recipe
from training.synth.generate import generate_dataset

WINDOW = 8


class PoseFromFeatures(nn.Module):
    """A stand-in network whose features are the true pose: per frame it answers the truth;
    its β is the window's mean of features[:10], so its answer depends on the window."""

    def forward(self, features: Tensor) -> dict[str, Tensor]:
        b, t, _ = features.shape
        rotmat = smpl_pose_to_rotmats(features.reshape(b * t, 72)).reshape(b, t, 24, 3, 3)
        betas = features[..., :10].mean(dim=1, keepdim=True).expand(b, t, 10)
        return {"rotmat": rotmat, "betas": betas, "features": features}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synth")
    generate_dataset(folder, num_videos=1, frames_per_video=30, people=(2, 2),
                     image_size=(96, 72), seed=3, progress=False)  # fmt: skip
    source = folder / "synth_train_db.pt"
    pose = read_dataset_file(source)["pose"].astype(np.float32)
    write_with_fields(source, folder / "with_features.pt", {"features": pose})
    return folder / "with_features.pt"


@pytest.fixture(scope="module")
def recipe() -> Recipe:
    recipe = load_recipe("spsnet_cpu")
    assert recipe.training is not None
    return recipe.model_copy(
        update={"training": recipe.training.model_copy(update={"clip_length": WINDOW})}
    )


def test_window_weights_favour_the_middle() -> None:
    assert window_weights(1).tolist() == [1]
    assert window_weights(6).tolist() == [1, 2, 3, 3, 2, 1]
    assert window_weights(5).tolist() == [1, 2, 3, 2, 1]


def test_every_row_gets_the_prediction_all_its_windows_agree_on(data, recipe) -> None:
    predictions, arrays = predict_dataset(PoseFromFeatures(), recipe, data)
    truth = smpl_pose_to_rotmats(torch.from_numpy(arrays["pose"]).float()).numpy()
    np.testing.assert_allclose(predictions.rotmat, truth, atol=1e-5)
    np.testing.assert_allclose(predictions.features, arrays["pose"], atol=1e-5)


def test_overlapping_windows_have_no_seams(data, recipe) -> None:
    """β is constant within a window: windows side by side make steps, blended ones ramps."""
    blended, arrays = predict_dataset(PoseFromFeatures(), recipe, data)
    side_by_side, _ = predict_dataset(PoseFromFeatures(), recipe, data, stride=WINDOW)
    first_track = arrays["vid_name"] == arrays["vid_name"][0]

    def largest_jump(betas: np.ndarray) -> float:
        return float(np.abs(np.diff(betas[first_track], axis=0)).max())

    assert largest_jump(blended.betas) < 0.7 * largest_jump(side_by_side.betas)


def test_a_stride_longer_than_the_window_is_refused(data, recipe) -> None:
    with pytest.raises(ValueError, match="stride"):
        predict_dataset(PoseFromFeatures(), recipe, data, stride=WINDOW + 1)
