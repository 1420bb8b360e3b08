"""SPS-Net: shapes, attention, forecast alignment, one β per video, gradients, frozen encoder,
determinism, ablation switches and their parameter counts (SPS-Net Tables 3 and 4)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from training.models.hmr_regressor import HMRRegressor
from training.models.spsnet import SelfAttention, SPSNet, TemporalGRU
from training.models.summary import parameter_breakdown
from training.recipes.schema import SPSNetConfig

D = 16  # a small feature size keeps the feature-input tests fast
SMALL: dict[str, Any] = {
    "encoder": "features",
    "feature_dim": D,
    "attention_hidden": 8,
    "forecast_hidden": 8,
    "regressor_hidden": 32,
}
# Small heads on the real encoder, for the few runs from frames.
SMALL_HEADS: dict[str, Any] = {"attention_hidden": 8, "forecast_hidden": 8, "regressor_hidden": 32}
VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    "without_forecasting": {"forecasting": False},
    "without_attention": {"temporal": "none"},
    "gru": {"temporal": "gru"},
}


def small_model(seed: int = 0, **overrides: Any) -> SPSNet:
    torch.manual_seed(seed)
    return SPSNet(SPSNetConfig(**(SMALL | overrides)))


def features(b: int, t: int, dim: int = D) -> torch.Tensor:
    return torch.randn(b, t, dim, generator=torch.Generator().manual_seed(b * 100 + t))


@pytest.mark.parametrize(("b", "t"), [(1, 1), (2, 5), (3, 32)])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_output_shapes(variant: str, b: int, t: int) -> None:
    model = small_model(**VARIANTS[variant]).eval()
    with torch.no_grad():
        out = model(features=features(b, t))
    assert out["rotmat"].shape == (b, t, 24, 3, 3)
    assert out["pose6d"].shape == (b, t, 144)
    assert out["pose"].shape == (b, t, 72)
    assert out["betas"].shape == (b, t, 10)
    assert out["cam"].shape == (b, t, 3)
    assert out["features"].shape == (b, t, D)
    assert out["fused"].shape == (b, t, D)
    config = SPSNetConfig(**(SMALL | VARIANTS[variant]))
    assert ("forecast" in out) == config.forecasting
    assert ("attention" in out) == (config.temporal == "attention")
    if config.forecasting:
        assert out["forecast"].shape == (b, t - 1, D)
    if config.temporal == "attention":
        assert out["attention"].shape == (b, t, t)


def test_attention_weights_sum_to_one_over_frames() -> None:
    with torch.no_grad():
        attention = small_model().eval()(features=features(2, 7))["attention"]
    assert torch.allclose(attention.sum(dim=-1), torch.ones(2, 7))
    assert (attention >= 0).all()


def test_self_attention_is_eq_2() -> None:
    torch.manual_seed(0)
    module = SelfAttention(dim=6, hidden=4)
    x = torch.randn(2, 5, 6)
    h, a = module(x)
    for i in range(5):  # h_i = f_i + Σ_j a_i^j f_j, written out frame by frame
        expected = x[:, i] + sum(a[:, i, j, None] * x[:, j] for j in range(5))
        assert torch.allclose(h[:, i], expected, atol=1e-6)


def test_forecast_aligned_to_next_frame_and_first_fused_is_latent() -> None:
    model = small_model().eval()
    assert model.forecaster is not None
    assert isinstance(model.temporal, SelfAttention)
    f = features(2, 6)
    with torch.no_grad():
        out = model(features=f)
        latent, _ = model.temporal(f)
        # forecast[:, i] = F(f_{i+1}) in 1-based frames: it predicts frame i+2.
        assert torch.allclose(out["forecast"], model.forecaster(f[:, :-1]))
    assert torch.allclose(out["fused"][:, 0], latent[:, 0])  # F_1 = h_1


def test_without_attention_and_forecasting_regress_features() -> None:
    model = small_model(temporal="none", forecasting=False).eval()
    f = features(2, 4)
    with torch.no_grad():
        out = model(features=f)
    assert torch.equal(out["fused"], f)  # h_i = f_i, F_i = h_i


def test_one_beta_per_video() -> None:
    with torch.no_grad():
        betas = small_model().eval()(features=features(3, 9))["betas"]
    assert torch.equal(betas, betas[:, :1].expand_as(betas))
    assert not torch.equal(betas[0], betas[1])  # but one per video, not one for the batch


def test_eval_is_deterministic() -> None:
    model = small_model(temporal="gru").eval()
    f = features(2, 5)
    with torch.no_grad():
        first, second = model(features=f), model(features=f)
    for key, value in first.items():
        assert torch.equal(value, second[key]), key


def _loss(out: dict[str, torch.Tensor]) -> torch.Tensor:
    terms = [out[k].square().mean() for k in ("rotmat", "betas", "cam", "forecast") if k in out]
    return torch.stack(terms).sum()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_gradients_reach_every_trainable_parameter(variant: str) -> None:
    model = small_model(**VARIANTS[variant], dropout=0.0).train()
    _loss(model(features=features(2, 4))).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_frozen_encoder_from_frames() -> None:
    torch.manual_seed(0)
    model = SPSNet(SPSNetConfig(**SMALL_HEADS, dropout=0.0)).train()
    assert model.encoder is not None
    assert not model.encoder.training  # kept in eval mode, so BN statistics stay fixed
    stats = {k: v.clone() for k, v in model.encoder.state_dict().items() if "running" in k}
    out = model(frames=torch.randn(1, 2, 3, 224, 224))
    assert out["rotmat"].shape == (1, 2, 24, 3, 3)
    assert out["features"].shape == (1, 2, 2048)
    _loss(out).backward()
    for name, p in model.named_parameters():
        if name.startswith("encoder."):
            assert not p.requires_grad, name
            assert p.grad is None, name
        else:
            # Only "reached": an untrained ResNet's features (~15 a channel) saturate the
            # unscaled softmax of Eq. 1, so Q and K get ~0 here (non-zero is tested on features).
            assert p.grad is not None, name
    for key, value in model.encoder.state_dict().items():
        if key in stats:
            assert torch.equal(value, stats[key]), key
    model.train()
    assert not model.encoder.training


def test_unfrozen_encoder_trains() -> None:
    torch.manual_seed(0)
    model = SPSNet(SPSNetConfig(**SMALL_HEADS, freeze_encoder=False)).train()
    assert model.encoder is not None
    assert model.encoder.training
    # Global pooling takes any size; small frames keep the backward pass cheap.
    _loss(model(frames=torch.randn(1, 2, 3, 64, 64))).backward()
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_input_errors() -> None:
    model = small_model()
    with pytest.raises(ValueError, match="no image encoder"):
        model(frames=torch.randn(1, 2, 3, 64, 64))
    with pytest.raises(ValueError, match="not both"):
        model(frames=torch.randn(1, 2, 3, 64, 64), features=features(1, 2))
    with pytest.raises(ValueError, match="frames or features"):
        model()
    with pytest.raises(ValueError, match="feature_dim"):
        SPSNet(SPSNetConfig(feature_dim=D))


def _paper_counts(**overrides: Any) -> dict[str, int]:
    with torch.device("meta"):  # counts without allocating 50 M parameters
        return parameter_breakdown(SPSNet(SPSNetConfig(**overrides)))


def _mlp(d: int, h: int) -> int:
    return d * h + h + h * d + d


def test_ablations_change_parameter_count_as_expected() -> None:
    d, h = 2048, 2048
    counts = {name: _paper_counts(**overrides) for name, overrides in VARIANTS.items()}
    full = counts["full"]
    assert full["temporal"] == 2 * _mlp(d, h)  # Q and K
    assert full["forecaster"] == _mlp(d, h)
    assert full["fusion"] == d
    assert full["pose_regressor"] == full["shape_regressor"]
    assert "forecaster" not in counts["without_forecasting"]
    assert full["total"] - counts["without_forecasting"]["total"] == _mlp(d, h) + d
    assert "temporal" not in counts["without_attention"]
    assert full["total"] - counts["without_attention"]["total"] == 2 * _mlp(d, h)
    g = SPSNetConfig().gru_hidden
    gru = 3 * (d * g + g**2 + 2 * g)  # first layer: 3 gates
    gru += 3 * (2 * g**2 + 2 * g)  # second layer
    gru += g * d + d  # the linear layer back to d
    assert counts["gru"]["temporal"] == gru
    assert counts["gru"]["total"] - counts["without_attention"]["total"] == gru


@pytest.mark.parametrize(
    ("overrides", "paper_millions"),
    [({}, 51.43), ({"forecasting": False}, 47.23), ({"temporal": "none"}, 34.64)],
)
def test_table_3_counts_with_forecast_bottleneck(
    overrides: dict[str, Any], paper_millions: float
) -> None:
    """With F of 2048 → 1024 → 2048 the totals are Table 3's (which truncates 34.646 M)."""
    total = _paper_counts(forecast_hidden=1024, **overrides)["total"]
    assert abs(total / 1e6 - paper_millions) < 0.01


def test_parameter_breakdown_names_modules_and_total() -> None:
    model = small_model(temporal="gru")
    counts = parameter_breakdown(model)
    assert set(counts) == {
        "temporal",
        "forecaster",
        "fusion",
        "pose_regressor",
        "shape_regressor",
        "total",
    }
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")
    assert isinstance(model.temporal, TemporalGRU)
    assert isinstance(model.pose_regressor, HMRRegressor)
