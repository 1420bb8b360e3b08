"""Checkpoints: a resumed run continues exactly as if it had never stopped."""

from __future__ import annotations

import pytest
import torch

from training.models import build_model
from training.train.checkpoint import (
    initialise_from,
    load_network,
    read_checkpoint,
    save_network_only,
    saved_recipe,
)
from training.train.loop import train

STEPS = 4


def weights(path) -> dict[str, torch.Tensor]:
    contents = torch.load(path, weights_only=False)
    return {
        **{f"network.{k}": v for k, v in contents["network"].items()},
        **{f"discriminator.{k}": v for k, v in contents["discriminator"].items()},
    }


def test_resume_is_exact(local_recipe, body, training_data, tmp_path):
    """4 steps straight = 2 steps, stop, resume, 2 steps: same network and discriminator,
    through a rate decay and a validation (SPS-Net with L_adv: every state the loop keeps)."""
    recipe = local_recipe("spsnet_train")
    run = {"data": training_data, "body": body, "device": "cpu"}
    straight = train(recipe, tmp_path / "straight", **run)
    train(recipe, tmp_path / "resumed", max_iterations=STEPS // 2, **run)
    resumed = train(recipe, tmp_path / "resumed", resume=True, **run)
    assert straight.iterations == resumed.iterations == STEPS
    assert resumed.losses == straight.losses
    first = weights(tmp_path / "straight" / "latest.pt")
    second = weights(tmp_path / "resumed" / "latest.pt")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_checkpoint_keeps_the_recipe_and_refuses_another(local_recipe, body, maed_data, tmp_path):
    recipe = local_recipe("maed_train")
    run = {"data": maed_data, "body": body, "device": "cpu"}
    train(recipe, tmp_path, max_iterations=1, **run)
    assert saved_recipe(tmp_path / "latest.pt") == recipe
    other = local_recipe("maed_train", training={"lr": 1e-3})
    with pytest.raises(ValueError, match="another recipe"):
        train(other, tmp_path, resume=True, **run)


def test_init_from_starts_the_matching_tensors_from_another_run(
    local_recipe, body, training_data, tmp_path
):
    """SPS-Net §4.1's regressors initialised from a trained model: those tensors arrive, and
    a network without a temporal module gives its regressors to one with."""
    run = {"data": training_data, "body": body, "device": "cpu"}
    frame_only = local_recipe(
        "spsnet_train",
        model={"temporal": "none", "forecasting": False},
        losses={"feature": 0, "camera": 0},
    )
    train(frame_only, tmp_path / "source", max_iterations=1, **run)
    source = torch.load(tmp_path / "source" / "latest.pt", weights_only=False)["network"]

    recipe = local_recipe(
        "spsnet_train", training={"init_from": str(tmp_path / "source" / "latest.pt")}
    )
    network = build_model(recipe)
    copied = initialise_from(network, tmp_path / "source" / "latest.pt")
    assert copied
    assert all(name in source for name in copied)
    assert any(name.startswith("pose_regressor.") for name in copied)
    assert not any(name.startswith("temporal.") for name in copied)
    for name in copied:
        assert torch.equal(network.state_dict()[name], source[name])
    assert train(recipe, tmp_path / "started", max_iterations=1, **run).iterations == 1


def test_init_from_a_missing_or_unrelated_checkpoint_is_an_error(local_recipe, tmp_path):
    network = build_model(local_recipe("spsnet_train"))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        initialise_from(network, tmp_path / "absent.pt")
    torch.save({"network": {"other.weight": torch.zeros(2)}}, tmp_path / "unrelated.pt")
    with pytest.raises(ValueError, match="no tensor"):
        initialise_from(network, tmp_path / "unrelated.pt")


def test_a_file_that_is_no_checkpoint_is_said_so(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello\n")
    cut = tmp_path / "cut.pt"
    torch.save({"recipe": {}, "network": {"w": torch.zeros(1000)}}, cut)
    cut.write_bytes(cut.read_bytes()[:2000])
    for broken in (text, cut):
        with pytest.raises(ValueError, match="is not a checkpoint PyTorch can read"):
            load_network(broken)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ValueError, match=r"not a meshcast checkpoint \(no recipe and network\)"):
        read_checkpoint(foreign)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        read_checkpoint(tmp_path / "absent.pt")


def test_a_shipped_network_is_half_the_size_and_predicts_as_the_checkpoint(
    local_recipe, body, training_data, tmp_path
):
    recipe = local_recipe("spsnet_train")
    train(recipe, tmp_path / "run", max_iterations=1, data=training_data, body=body, device="cpu")
    checkpoint, shipped = tmp_path / "run" / "latest.pt", tmp_path / "network.pt"
    save_network_only(checkpoint, shipped)
    stored = torch.load(shipped, weights_only=False)["network"]
    assert {tensor.dtype for tensor in stored.values() if tensor.is_floating_point()} == {
        torch.float16
    }
    _, full = load_network(checkpoint)
    _, half = load_network(shipped)
    assert all(p.dtype == torch.float32 for p in half.parameters())
    features = torch.randn(2, 4, recipe.model.feature_dim)
    with torch.no_grad():
        expected, actual = full(features=features), half(features=features)
    torch.testing.assert_close(actual["rotmat"], expected["rotmat"], atol=2e-2, rtol=0)
    assert not torch.equal(actual["rotmat"], expected["rotmat"])  # the weights were rounded
