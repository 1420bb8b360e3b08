"""MAED end to end: the published state dict loads by renaming only; shapes, determinism,
gradients and the single-image bypass on a tiny configuration."""

from __future__ import annotations

import math
import re

import pytest
import torch

from tests.support.published import maed_published_shapes
from training.models.hmr_regressor import HMRRegressor
from training.models.ktd import KTD
from training.models.maed import MAED, LoadReport, load_published_state_dict
from training.recipes.schema import MAEDConfig

PUBLISHED_VALUES = 72_132_153  # "72.1 M values"
TINY = MAEDConfig(
    image_size=64,
    num_frames=4,
    backbone_layers=(1, 1, 1),
    backbone_width=16,
    embed_dim=64,
    depth=2,
    num_heads=4,
    decoder_hidden=64,
)
BLOCKS = ["parallel", "series", "coupling", "spatial"]


@pytest.fixture(scope="module")
def published_model() -> MAED:
    """The full published configuration, built once (72 M parameters)."""
    return MAED(MAEDConfig())


def test_state_dict_has_exactly_the_published_keys_and_shapes(published_model: MAED) -> None:
    published = maed_published_shapes()
    assert sum(math.prod(shape) for shape in published.values()) == PUBLISHED_VALUES
    ours = {key: tuple(value.shape) for key, value in published_model.state_dict().items()}
    assert ours == published
    assert sum(p.numel() for p in published_model.parameters()) == PUBLISHED_VALUES


def test_random_published_weights_load_strictly(published_model: MAED) -> None:
    torch.manual_seed(0)
    weights = {
        f"module.{key}": torch.randn(shape) for key, shape in maed_published_shapes().items()
    }
    smpl_buffer = "module.decoder.smpl.v_template"
    report = load_published_state_dict(
        published_model, {"gen_state_dict": {**weights, smpl_buffer: torch.zeros(6890, 3)}}
    )
    assert report == LoadReport(loaded=len(weights), ignored=("decoder.smpl.v_template",))
    state = published_model.state_dict()
    for key, value in weights.items():
        assert torch.equal(state[key.removeprefix("module.")], value)
    # bare and "state_dict"-wrapped checkpoints work as well
    bare = {key.removeprefix("module."): value for key, value in weights.items()}
    assert load_published_state_dict(published_model, bare).loaded == len(weights)
    assert load_published_state_dict(published_model, {"state_dict": bare}).ignored == ()


def test_missing_unexpected_and_misshaped_keys_are_named() -> None:
    model = MAED(TINY)
    weights = dict(model.state_dict())
    with pytest.raises(KeyError, match=re.escape("missing keys ['decoder.deccam.bias']")):
        load_published_state_dict(
            model, {k: v for k, v in weights.items() if k != "decoder.deccam.bias"}
        )
    with pytest.raises(KeyError, match=re.escape("unexpected keys ['encoder.head.weight']")):
        load_published_state_dict(model, {**weights, "encoder.head.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match=re.escape("decoder.fc1.bias: checkpoint (3,)")):
        load_published_state_dict(model, {**weights, "decoder.fc1.bias": torch.zeros(3)})


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("decoder", ["ktd", "iterative"])
@pytest.mark.parametrize(("batch", "frames"), [(1, 1), (2, 4)])
def test_output_shapes(block: str, decoder: str, batch: int, frames: int) -> None:
    model = MAED(TINY.model_copy(update={"block": block, "decoder": decoder})).eval()
    with torch.no_grad():
        out = model(torch.randn(batch, frames, 3, 64, 64))
    assert out["rotmat"].shape == (batch, frames, 24, 3, 3)
    assert out["pose6d"].shape == (batch, frames, 144)
    assert out["betas"].shape == (batch, frames, 10)
    assert out["cam"].shape == (batch, frames, 3)
    assert out["features"].shape == (batch, frames, TINY.embed_dim)


def test_decoder_choice_and_tree() -> None:
    assert isinstance(MAED(TINY).decoder, KTD)
    iterative = MAED(TINY.model_copy(update={"decoder": "iterative", "regressor_iterations": 2}))
    assert isinstance(iterative.decoder, HMRRegressor)
    assert iterative.decoder.iterations == 2
    reversed_model = MAED(TINY.model_copy(update={"kinematic_tree": "reversed"}))
    assert isinstance(reversed_model.decoder, KTD)
    assert len(reversed_model.decoder.tree.inputs[0]) == 23


def test_eval_is_deterministic() -> None:
    torch.manual_seed(0)
    model = MAED(TINY).eval()
    clip = torch.randn(2, 4, 3, 64, 64)
    with torch.no_grad():
        first, second = model(clip), model(clip)
    for key in first:
        assert torch.equal(first[key], second[key])


@pytest.mark.parametrize("block", BLOCKS)
def test_gradients_reach_every_parameter(block: str) -> None:
    torch.manual_seed(0)
    model = MAED(TINY.model_copy(update={"block": block})).train()
    out = model(torch.randn(2, 3, 3, 64, 64))
    loss = sum(out[key].square().mean() for key in ("rotmat", "betas", "cam", "pose6d"))
    assert isinstance(loss, torch.Tensor)
    loss.backward()
    silent = [
        name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()
    ]
    assert silent == []


def test_single_image_ignores_temporal_parameters() -> None:
    torch.manual_seed(0)
    model = MAED(TINY).eval()
    image = torch.randn(3, 1, 3, 64, 64)
    temporal = [
        p for name, p in model.named_parameters() if "temp_embed" in name or "ts_attn" in name
    ]
    assert temporal
    with torch.no_grad():
        before = model(image)
        for p in temporal:
            p.normal_(0.0, 10.0)
        after = model(image)
    for key in before:
        assert torch.equal(before[key], after[key])
