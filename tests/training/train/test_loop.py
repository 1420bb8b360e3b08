"""The training loop on tiny recipes: the loss falls, logs and checkpoints appear, the
discriminator moves only on its own step, and the command line refuses recipes it cannot train."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import default_collate

from meshcast.commands.train import command
from training.losses import weighted_total
from training.models import build_model
from training.models.motion_discriminator import MotionDiscriminator
from training.train.checkpoint import TrainingState
from training.train.loop import TrainingData, train, update_discriminator, update_network
from training.train.objective import Motion, Objective, adversarial_term

STEPS = 8


def scalars(run_dir) -> dict[str, list[float]]:
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_spsnet_trains_logs_and_checkpoints(local_recipe, body, training_data, tmp_path):
    # One batch of every clip, so that successive losses differ by the updates only.
    recipe = local_recipe("spsnet_train", training={"batch_size": 4, "epochs": STEPS // 2})
    summary = train(recipe, tmp_path / "run", data=training_data, body=body, device="cpu")
    assert summary.iterations == STEPS
    assert summary.epochs == STEPS // 2
    assert (tmp_path / "run" / "latest.pt").is_file()
    assert (tmp_path / "run" / "best.pt").is_file()
    assert set(summary.validation) == {1, 2, 3, 4}
    assert summary.best_validation == min(summary.validation.values())
    logged = scalars(tmp_path / "run")
    terms = {"keypoints_2d", "joints_3d", "pose", "shape", "feature", "mask", "camera"}
    expected = {f"loss/{name}" for name in terms | {"adversarial", "total", "discriminator"}}
    assert expected | {"lr/network", "lr/discriminator", "val/pa_mpjpe_mm"} <= set(logged)
    total = logged["loss/total"]
    assert len(total) == STEPS
    assert total[-1] < total[0]
    assert logged["lr/network"][-1] == pytest.approx(recipe.training.lr * recipe.training.lr_decay)


def test_maed_trains(local_recipe, body, maed_data, tmp_path):
    recipe = local_recipe("maed_train")
    summary = train(recipe, tmp_path, data=maed_data, body=body, device="cpu")
    assert summary.iterations == 2
    assert set(summary.losses) == {"keypoints_2d", "joints_3d", "pose", "shape", "norm", "total"}
    assert (tmp_path / "best.pt").is_file()


def test_discriminator_moves_only_on_its_own_step(local_recipe, body, training_data):
    recipe = local_recipe("spsnet_train")
    network = build_model(recipe)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    state = TrainingState(
        network,
        optimizer,
        torch.optim.lr_scheduler.MultiStepLR(optimizer, []),
        torch.amp.GradScaler("cpu", enabled=False),
        torch.Generator(),
    )
    discriminator = MotionDiscriminator()
    before = [p.detach().clone() for p in discriminator.parameters()]
    output = Objective(recipe, network, body, torch.Generator())(
        default_collate([training_data.train[i] for i in range(2)])
    )
    assert output.motion is not None
    terms = output.terms | {"adversarial": adversarial_term(discriminator, output.motion)}
    update_network(state, weighted_total(terms, recipe.losses))
    assert all(torch.equal(a, b) for a, b in zip(before, discriminator.parameters(), strict=True))

    motion = training_data.motion
    assert motion is not None
    real = default_collate([motion[i] for i in range(2)])
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-4)
    update_discriminator(
        discriminator, d_optimizer, Motion(real["pose"], real["betas"]), output.motion
    )
    assert not any(
        torch.equal(a, b) for a, b in zip(before, discriminator.parameters(), strict=True)
    )


def test_run_folder_is_not_overwritten_and_resume_needs_a_checkpoint(
    local_recipe, body, maed_data, tmp_path
):
    recipe = local_recipe("maed_train")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(recipe, tmp_path, resume=True, data=maed_data, body=body, device="cpu")
    train(recipe, tmp_path, max_iterations=1, data=maed_data, body=body, device="cpu")
    with pytest.raises(ValueError, match="already holds a run"):
        train(recipe, tmp_path, data=maed_data, body=body, device="cpu")


def test_adversarial_loss_needs_motion(local_recipe, body, training_data, tmp_path):
    recipe = local_recipe("spsnet_train")
    no_motion = TrainingData(training_data.train)
    with pytest.raises(ValueError, match="motion"):
        train(recipe, tmp_path, data=no_motion, body=body, device="cpu")


def test_command_refuses_a_recipe_without_training_or_data(tmp_path):
    recipe = tmp_path / "untrainable.yaml"
    recipe.write_text("name: untrainable\nsource: tests\nmodel: {family: maed}\n")
    result = CliRunner().invoke(command, [str(recipe), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code != 0
    assert "no training or data section" in result.output
    assert not (tmp_path / "run").exists()
