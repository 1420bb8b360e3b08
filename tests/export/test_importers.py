"""Importing the authors' checkpoints: files of exactly the published names and shapes, with
random values, wrapped as the authors save them, turned into meshcast checkpoints."""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from export.importers import (
    BODY_MODEL_REASON,
    UNKNOWN_REASON,
    CheckpointMismatchError,
    import_maed,
    import_spin,
    import_vibe,
    read_checkpoint,
    save_imported,
)
from meshcast.cli import main
from tests.support.published import maed_published_shapes
from training.models import build_model
from training.models.maed import MAED, load_published_state_dict
from training.recipes import load_recipe
from training.train.checkpoint import load_network

Shapes = dict[str, tuple[int, ...]]
# torchvision's ResNet-50 (25,557,032 parameters) without its classifier fc (2,049,000).
RESNET50_PARAMETERS = 23_508_032
RESNET50_STAGES = ((3, 64), (4, 128), (6, 256), (3, 512))  # blocks, width of the 3×3 conv


def _batch_norm(name: str, channels: int) -> Shapes:
    return {
        f"{name}.weight": (channels,),
        f"{name}.bias": (channels,),
        f"{name}.running_mean": (channels,),
        f"{name}.running_var": (channels,),
        f"{name}.num_batches_tracked": (),
    }


def hmr_regressor_shapes(prefix: str = "") -> Shapes:
    """SPIN's regressor: fc1 reads the feature, 144-d 6D pose, 10 β and 3 camera values."""
    shapes: Shapes = {
        "fc1.weight": (1024, 2048 + 157),
        "fc1.bias": (1024,),
        "fc2.weight": (1024, 1024),
        "fc2.bias": (1024,),
        "decpose.weight": (144, 1024),
        "decpose.bias": (144,),
        "decshape.weight": (10, 1024),
        "decshape.bias": (10,),
        "deccam.weight": (3, 1024),
        "deccam.bias": (3,),
        "init_pose": (1, 144),
        "init_shape": (1, 10),
        "init_cam": (1, 3),
    }
    return {prefix + key: shape for key, shape in shapes.items()}


def spin_shapes() -> Shapes:
    """SPIN's ``hmr()``: torchvision's ResNet-50 without ``fc``, then HMR's regressor."""
    shapes: Shapes = {"conv1.weight": (64, 3, 7, 7), **_batch_norm("bn1", 64)}
    channels = 64
    for stage, (blocks, width) in enumerate(RESNET50_STAGES, start=1):
        for index in range(blocks):
            block = f"layer{stage}.{index}"
            shapes |= {f"{block}.conv1.weight": (width, channels, 1, 1)}
            shapes |= _batch_norm(f"{block}.bn1", width)
            shapes |= {f"{block}.conv2.weight": (width, width, 3, 3)}
            shapes |= _batch_norm(f"{block}.bn2", width)
            shapes |= {f"{block}.conv3.weight": (4 * width, width, 1, 1)}
            shapes |= _batch_norm(f"{block}.bn3", 4 * width)
            if index == 0:
                shapes |= {f"{block}.downsample.0.weight": (4 * width, channels, 1, 1)}
                shapes |= _batch_norm(f"{block}.downsample.1", 4 * width)
            channels = 4 * width
    return shapes | hmr_regressor_shapes()


def vibe_shapes() -> Shapes:
    """VIBE's generator: a 2-layer GRU of 1024 on 2048-d features, a linear layer back to
    2048, and SPIN's regressor."""
    shapes: Shapes = {}
    for layer, inputs in enumerate((2048, 1024)):
        shapes |= {
            f"encoder.gru.weight_ih_l{layer}": (3 * 1024, inputs),
            f"encoder.gru.weight_hh_l{layer}": (3 * 1024, 1024),
            f"encoder.gru.bias_ih_l{layer}": (3 * 1024,),
            f"encoder.gru.bias_hh_l{layer}": (3 * 1024,),
        }
    shapes |= {"encoder.linear.weight": (2048, 1024), "encoder.linear.bias": (2048,)}
    return shapes | hmr_regressor_shapes("regressor.")


def random_weights(shapes: Shapes, prefix: str = "") -> dict[str, Tensor]:
    """Random tensors of ``shapes`` (BN's batch counters as integers), keys behind ``prefix``."""
    return {
        prefix + key: torch.tensor(7) if key.endswith("num_batches_tracked") else torch.randn(shape)
        for key, shape in shapes.items()
    }


def spin_file(weights: dict[str, Tensor]) -> dict[str, object]:
    """As SPIN's CheckpointSaver writes ``model_checkpoint.pt``."""
    return {
        "model": weights,
        "optimizer": {"state": {}, "param_groups": [{"lr": 5e-5, "params": [0, 1]}]},
        "epoch": 12,
        "batch_idx": 0,
        "batch_size": 64,
        "total_step_count": 100_000,
    }


def vibe_file(weights: dict[str, Tensor]) -> dict[str, object]:
    """As VIBE's trainer writes ``vibe_model_wo_3dpw.pth.tar``, SMPL buffers included."""
    return {
        "epoch": 30,
        "gen_state_dict": weights | {"regressor.smpl.v_template": torch.zeros(6890, 3)},
        "performance": np.float64(56.5),
        "gen_optimizer": {"state": {}, "param_groups": [{"lr": 5e-5, "params": [0]}]},
        "disc_motion_state_dict": {"gru.weight_ih_l0": torch.zeros(3, 2)},
        "disc_motion_optimizer": {"state": {}, "param_groups": []},
    }


def _save(contents: object, path: Path) -> Path:
    torch.save(contents, path)
    return path


def test_spin_layout_has_resnet50_and_hmr_sizes() -> None:
    shapes = spin_shapes()
    regressor = hmr_regressor_shapes()
    encoder_parameters = sum(
        math.prod(shape)
        for key, shape in shapes.items()
        if key not in regressor and not key.rsplit(".", 1)[-1].startswith(("running", "num"))
    )
    assert encoder_parameters == RESNET50_PARAMETERS


def test_maed_import_matches_the_published_loader(tmp_path: Path) -> None:
    torch.manual_seed(0)
    weights = random_weights(maed_published_shapes(), prefix="module.")
    published = {
        "gen_state_dict": weights | {"module.decoder.smpl.v_template": torch.zeros(6890, 3)},
        "epoch": 40,
        "performance": np.float32(45.7),
    }
    path = _save(published, tmp_path / "maed.pth.tar")
    del weights
    save_imported(import_maed(path), tmp_path / "ours.pt")

    recipe, network = load_network(tmp_path / "ours.pt")
    assert recipe == load_recipe("maed_paper")
    reference = build_model(recipe)
    assert isinstance(reference, MAED)
    load_published_state_dict(reference, published)
    frames = torch.randn(1, 1, 3, 224, 224)
    with torch.no_grad():
        ours, theirs = network(frames), reference.eval()(frames)
    for key in ("rotmat", "betas", "cam"):
        torch.testing.assert_close(ours[key], theirs[key], rtol=0, atol=0)

    provenance = torch.load(tmp_path / "ours.pt", weights_only=True, mmap=True)["provenance"]
    assert provenance["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(provenance["used"]) == len(maed_published_shapes())
    assert provenance["ignored"]["decoder.smpl.v_template"] == BODY_MODEL_REASON
    assert set(provenance["ignored"]) == {"decoder.smpl.v_template", "epoch", "performance"}
    assert provenance["initialised"] == {}


def test_spin_fills_the_encoder_and_both_regressors(tmp_path: Path) -> None:
    torch.manual_seed(1)
    weights = random_weights(spin_shapes())
    path = _save(spin_file(weights), tmp_path / "model_checkpoint.pt")
    save_imported(import_spin(path, seed=3), tmp_path / "ours.pt")

    recipe, network = load_network(tmp_path / "ours.pt")
    assert recipe == load_recipe("spsnet_paper")
    state = network.state_dict()
    for key, value in weights.items():
        if key in hmr_regressor_shapes():
            assert torch.equal(state[f"pose_regressor.{key}"], value), key
            assert torch.equal(state[f"shape_regressor.{key}"], value), key
        else:
            assert torch.equal(state[f"encoder.{key}"], value), key

    provenance = torch.load(tmp_path / "ours.pt", weights_only=True, mmap=True)["provenance"]
    assert provenance["used"]["decpose.weight"] == [
        "pose_regressor.decpose.weight",
        "shape_regressor.decpose.weight",
    ]
    assert set(provenance["ignored"]) == set(spin_file({})) - {"model"}
    assert provenance["ignored"]["optimizer"] == "optimiser state: training only"
    fresh = {key.partition(".")[0] for key in provenance["initialised"]}
    assert fresh == {"temporal", "forecaster", "fusion"}
    assert "seed 3" in provenance["initialised"]["fusion.score.weight"]


@pytest.fixture(scope="module")
def vibe_weights() -> dict[str, Tensor]:
    torch.manual_seed(2)
    return random_weights(vibe_shapes())


def test_vibe_fills_the_gru_and_both_regressors(
    vibe_weights: dict[str, Tensor], tmp_path: Path
) -> None:
    path = _save(vibe_file(vibe_weights), tmp_path / "vibe_model_wo_3dpw.pth.tar")
    save_imported(import_vibe(path), tmp_path / "ours.pt")

    recipe, network = load_network(tmp_path / "ours.pt")
    assert (recipe.model.family, recipe.model.encoder, recipe.model.temporal) == (
        "spsnet",
        "features",
        "gru",
    )
    # VIBE's temporal encoder: a time-first GRU, then ReLU, the linear layer and the residual.
    gru = nn.GRU(2048, 1024, num_layers=2)
    prefix = "encoder.gru."
    gru.load_state_dict(
        {key.removeprefix(prefix): value for key, value in vibe_weights.items() if prefix in key}
    )
    features = torch.randn(2, 5, 2048)
    with torch.no_grad():
        states, _ = gru(features.transpose(0, 1))
        linear = F.linear(
            states.relu(),
            vibe_weights["encoder.linear.weight"],
            vibe_weights["encoder.linear.bias"],
        )
        # Two GRU code paths (batch-first and time-first) sum 2048 + 1024 float32 products in
        # different orders, more so with several threads: up to 2.5e-5 apart seen on 2 threads.
        torch.testing.assert_close(
            network.temporal(features), features + linear.transpose(0, 1), atol=1e-4, rtol=1e-4
        )
    for regressor in (network.pose_regressor, network.shape_regressor):
        for key, value in regressor.state_dict().items():
            assert torch.equal(value, vibe_weights[f"regressor.{key}"]), key

    provenance = torch.load(tmp_path / "ours.pt", weights_only=True, mmap=True)["provenance"]
    assert provenance["ignored"]["regressor.smpl.v_template"] == BODY_MODEL_REASON
    assert "discriminator" in provenance["ignored"]["disc_motion_state_dict"]
    assert set(provenance["ignored"]) == {
        "regressor.smpl.v_template",
        "epoch",
        "performance",
        "gen_optimizer",
        "disc_motion_state_dict",
        "disc_motion_optimizer",
    }
    assert {key.partition(".")[0] for key in provenance["initialised"]} == {"forecaster", "fusion"}


def test_fresh_modules_follow_the_seed(vibe_weights: dict[str, Tensor], tmp_path: Path) -> None:
    path = _save({"gen_state_dict": vibe_weights}, tmp_path / "vibe.pt")
    first, again, other = (import_vibe(path, seed=seed).network for seed in (0, 0, 1))
    assert torch.equal(first.fusion.score.weight, again.fusion.score.weight)
    assert not torch.equal(first.fusion.score.weight, other.fusion.score.weight)


def test_an_unknown_key_is_reported_as_ignored(
    vibe_weights: dict[str, Tensor], tmp_path: Path
) -> None:
    extra = {"encoder.attention.weight": torch.zeros(4)}
    path = _save({"gen_state_dict": vibe_weights | extra}, tmp_path / "vibe.pt")
    assert import_vibe(path).provenance.ignored == {"encoder.attention.weight": UNKNOWN_REASON}


def test_a_missing_key_is_named_with_its_shape(tmp_path: Path) -> None:
    weights = random_weights(spin_shapes())
    del weights["layer3.5.bn2.running_var"]
    path = _save(spin_file(weights), tmp_path / "model_checkpoint.pt")
    with pytest.raises(
        CheckpointMismatchError,
        match=r"'layer3\.5\.bn2\.running_var' is missing \(expected shape \(256,\)\)",
    ):
        import_spin(path)


def test_a_misshaped_key_is_named_with_both_shapes(
    vibe_weights: dict[str, Tensor], tmp_path: Path
) -> None:
    weights = vibe_weights | {"encoder.linear.weight": torch.zeros(2048, 512)}
    path = _save(vibe_file(weights), tmp_path / "vibe.pt")
    with pytest.raises(
        CheckpointMismatchError,
        match=r"'encoder\.linear\.weight' has shape \(2048, 512\), expected \(2048, 1024\)",
    ):
        import_vibe(path)


def test_python_objects_are_unpickled_only_when_trusted(
    vibe_weights: dict[str, Tensor], tmp_path: Path
) -> None:
    contents = {"gen_state_dict": vibe_weights, "args": argparse.Namespace(seed=1)}
    path = _save(contents, tmp_path / "vibe.pt")
    with pytest.raises(CheckpointMismatchError, match="--trust"):
        import_vibe(path)
    assert "args" in import_vibe(path, trust=True).provenance.ignored


def test_numpy_scalars_of_numpy_1_and_2_load_without_trust(tmp_path: Path) -> None:
    path = _save({"performance": np.float64(56.5), "epoch": np.int64(30)}, tmp_path / "new.pt")
    # NumPy 1, which wrote the published files, pickled its scalars from "numpy.core".
    old = tmp_path / "old.pt"
    with zipfile.ZipFile(path) as new, zipfile.ZipFile(old, "w") as written:
        for name in new.namelist():
            data = new.read(name)
            if name.endswith("data.pkl"):
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            written.writestr(name, data)
    for file in (path, old):
        assert read_checkpoint(file) == {"performance": 56.5, "epoch": 30}


def run_meshcast(
    capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int | str | None, str, str]:
    """``meshcast ARGS`` through the console entry point, in this process (no second start of
    torch): the exit code, stdout and stderr."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["meshcast", *args])
        try:
            main()
            code: int | str | None = 0
        except SystemExit as done:
            code = done.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_writes_the_checkpoint_and_a_summary(
    vibe_weights: dict[str, Tensor], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _save(vibe_file(vibe_weights), tmp_path / "vibe.pth.tar")
    out = tmp_path / "imported" / "vibe.pt"
    code, stdout, stderr = run_meshcast(capsys, "import", "vibe", str(path), "--out", str(out))
    assert code == 0, stderr
    assert load_network(out)[0].name == "spsnet_gru_features"
    assert "recipe spsnet_gru_features" in stdout
    assert "disc_motion_state_dict" in stdout
    assert len(stdout.splitlines()) < 25


def test_cli_fails_in_one_line_on_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.pt"
    code, _, stderr = run_meshcast(capsys, "import", "spin", str(missing), "--out", "out.pt")
    assert code == 1
    assert stderr.splitlines() == [f"meshcast: error: no checkpoint at {missing}"]
    assert not (tmp_path / "out.pt").exists()
