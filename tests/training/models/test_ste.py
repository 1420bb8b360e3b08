"""MAED's spatial-temporal encoder: the attention variants against a plain reference, the
frame layout, the T = 1 bypass, shapes and determinism."""

from __future__ import annotations

import pytest
import torch

from training.models.ste import Block, SpatialTemporalEncoder, STAttention
from training.recipes.schema import MAEDConfig

TINY = MAEDConfig(
    image_size=64,
    num_frames=4,
    backbone_layers=(1, 1, 1),
    backbone_width=16,
    embed_dim=64,
    depth=2,
    num_heads=4,
)
BLOCKS = ["parallel", "series", "coupling", "spatial"]
DIM, HEADS = 16, 2


def _reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q kᵀ / √c) v, written out."""
    scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
    return scores.softmax(dim=-1) @ v


def _reference(attn: STAttention, x: torch.Tensor, frames: int) -> torch.Tensor:
    """STAttention written with explicit loops over clips, frames and token positions."""
    bt, n, c = x.shape
    h, hd = attn.num_heads, c // attn.num_heads

    def heads(tokens: torch.Tensor) -> tuple[torch.Tensor, ...]:
        qkv = attn.qkv(tokens).reshape(bt, n, 3, h, hd)  # split as (3, heads, C/heads)
        return tuple(qkv[:, :, i].transpose(1, 2) for i in range(3))  # (BT, h, N, hd)

    def spatial(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return _reference_attention(q, k, v).transpose(1, 2).reshape(bt, n, c)

    def temporal(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = torch.empty(bt, h, n, hd)
        for b in range(bt // frames):
            rows = slice(b * frames, (b + 1) * frames)  # frames of clip b: rows b·T + t
            for pos in range(n):
                qt, kt, vt = (z[rows, :, pos].transpose(0, 1) for z in (q, k, v))  # (h, T, hd)
                out[rows, :, pos] = _reference_attention(qt, kt, vt).transpose(0, 1)
        return out.transpose(1, 2).reshape(bt, n, c)

    def coupling(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        out = torch.empty(bt, h, n, hd)
        for b in range(bt // frames):
            rows = slice(b * frames, (b + 1) * frames)
            qc, kc, vc = (z[rows].transpose(0, 1).reshape(h, frames * n, hd) for z in (q, k, v))
            out[rows] = _reference_attention(qc, kc, vc).reshape(h, frames, n, hd).transpose(0, 1)
        return out.transpose(1, 2).reshape(bt, n, c)

    q, k, v = heads(x)
    if attn.block == "coupling":
        out = coupling(q, k, v)
    elif attn.block == "series":
        out = temporal(*heads(spatial(q, k, v)))
    elif attn.block == "spatial":
        out = spatial(q, k, v)
    else:
        x_s, x_t = spatial(q, k, v), temporal(q, k, v)
        if attn.ts_attn is None:
            out = (x_s + x_t) / 2
        else:
            logits = attn.ts_attn(torch.cat([x_s.mean(1), x_t.mean(1)], dim=-1))  # (BT, 2C)
            out = torch.empty_like(x_s)
            for ch in range(c):  # element 2c weighs the spatial branch, 2c + 1 the temporal
                w = logits[:, 2 * ch : 2 * ch + 2].softmax(dim=-1)
                out[..., ch] = w[:, None, 0] * x_s[..., ch] + w[:, None, 1] * x_t[..., ch]
    return attn.proj(out)


@pytest.mark.parametrize(
    ("block", "attentive"),
    [("parallel", True), ("parallel", False), ("series", True), ("coupling", True)],
)
def test_attention_matches_the_written_out_math(block: str, attentive: bool) -> None:
    torch.manual_seed(0)
    attn = STAttention(DIM, HEADS, block, attentive, True, 0.0, 0.0).eval()
    with torch.no_grad():
        for p in attn.parameters():
            p.normal_(0.0, 0.5)  # far from initialisation so every term matters
    frames = 3
    x = torch.randn(2 * frames, 5, DIM)
    with torch.no_grad():
        assert torch.allclose(attn(x, frames), _reference(attn, x, frames), atol=1e-5)


def test_only_the_attentive_parallel_block_has_ts_attn() -> None:
    assert STAttention(DIM, HEADS, "parallel", True, True, 0.0, 0.0).ts_attn is not None
    for block, attentive in [("parallel", False), ("series", True), ("coupling", True)]:
        assert STAttention(DIM, HEADS, block, attentive, True, 0.0, 0.0).ts_attn is None


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize(("batch", "frames"), [(1, 1), (2, 1), (1, 4), (2, 3)])
def test_output_shapes(block: str, batch: int, frames: int) -> None:
    encoder = SpatialTemporalEncoder(TINY.model_copy(update={"block": block}))
    out = encoder(torch.randn(batch, frames, 3, 64, 64))
    assert out.shape == (batch, frames, TINY.embed_dim)
    assert encoder.pos_embed.shape == (1, 17, TINY.embed_dim)  # 4×4 patches + cls


def test_spatial_encoder_has_no_temporal_encoding() -> None:
    assert SpatialTemporalEncoder(TINY.model_copy(update={"block": "spatial"})).temp_embed is None
    encoder = SpatialTemporalEncoder(TINY)
    assert encoder.temp_embed is not None
    assert encoder.temp_embed.shape == (1, TINY.num_frames, 1, TINY.embed_dim)


@pytest.mark.parametrize("block", ["parallel", "series", "coupling"])
def test_single_image_does_not_depend_on_temporal_parameters(block: str) -> None:
    torch.manual_seed(0)
    encoder = SpatialTemporalEncoder(TINY.model_copy(update={"block": block})).eval()
    image = torch.randn(2, 1, 3, 64, 64)
    with torch.no_grad():
        before = encoder(image)
        assert encoder.temp_embed is not None
        encoder.temp_embed.normal_(0.0, 10.0)
        for module in encoder.modules():
            if isinstance(module, STAttention) and module.ts_attn is not None:
                module.ts_attn.weight.normal_(0.0, 10.0)
                module.ts_attn.bias.normal_(0.0, 10.0)
        assert torch.equal(encoder(image), before)
        # ... while a clip does depend on them
        clip = torch.randn(1, 2, 3, 64, 64)
        after = encoder(clip)
        encoder.temp_embed.zero_()
        assert not torch.allclose(encoder(clip), after)


@pytest.mark.parametrize("block", BLOCKS)
def test_clips_of_a_batch_do_not_interact(block: str) -> None:
    """Frames of a clip sit on consecutive rows b·T + t; attention never crosses clips."""
    torch.manual_seed(0)
    encoder = SpatialTemporalEncoder(TINY.model_copy(update={"block": block})).eval()
    clips = torch.randn(2, 3, 3, 64, 64)
    with torch.no_grad():
        both = encoder(clips)
        alone = encoder(clips[1:])
        changed = clips.clone()
        changed[0, 1] = torch.randn(3, 64, 64)
        other = encoder(changed)
    assert torch.allclose(both[1:], alone, atol=1e-5)
    assert torch.allclose(other[1], both[1], atol=1e-5)
    frame_0_changed = not torch.allclose(other[0, 0], both[0, 0], atol=1e-5)
    assert frame_0_changed == (block != "spatial")  # temporal mixing within the clip only


def test_frame_t_gets_temporal_embedding_t() -> None:
    torch.manual_seed(0)
    encoder = SpatialTemporalEncoder(TINY.model_copy(update={"block": "spatial"})).eval()
    temporal = SpatialTemporalEncoder(TINY).eval()
    # With zero attention/MLP output projections every block is the identity, so the cls token's
    # feature shows the sum of embeddings: the temporal one must be that of its own frame.
    with torch.no_grad():
        for enc in (encoder, temporal):
            for block in enc.modules():
                if isinstance(block, Block):
                    for layer in (block.attn.proj, block.mlp.fc2):
                        layer.weight.zero_()
                        layer.bias.zero_()
        temporal.load_state_dict(encoder.state_dict(), strict=False)
        assert temporal.temp_embed is not None
        clip = torch.randn(2, 3, 3, 64, 64)
        reference = encoder.norm(
            encoder.cls_token + encoder.pos_embed[:, :1] + temporal.temp_embed[0, :3, :, :]
        )  # (3, 1, d): frame t + temp_embed[t]
        expected = encoder.pre_logits(reference[:, 0]).expand(2, -1, -1)
        assert torch.allclose(temporal(clip), expected, atol=1e-5)


def test_eval_is_deterministic_and_dropout_acts_in_training() -> None:
    torch.manual_seed(0)
    config = TINY.model_copy(
        update={"drop_rate": 0.2, "attn_drop_rate": 0.2, "drop_path_rate": 0.2}
    )
    encoder = SpatialTemporalEncoder(config)
    clip = torch.randn(2, 4, 3, 64, 64)
    encoder.eval()
    with torch.no_grad():
        assert torch.equal(encoder(clip), encoder(clip))
        encoder.train()
        assert not torch.equal(encoder(clip), encoder(clip))


def test_too_long_a_clip_is_an_error() -> None:
    encoder = SpatialTemporalEncoder(TINY)
    with pytest.raises(ValueError, match="5 frames"):
        encoder(torch.randn(1, 5, 3, 64, 64))
