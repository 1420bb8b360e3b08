"""SPS-Net's motion discriminator D: probabilities, attention, gradients, size (§3.4, §4.1)."""

from __future__ import annotations

import pytest
import torch

from training.models.motion_discriminator import JOINT_DIM, MotionDiscriminator
from training.models.spsnet import SelfAttention


def inputs(b: int, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(b * 100 + t)
    return torch.randn(b, t, 72, generator=gen), torch.randn(b, 10, generator=gen)


@pytest.mark.parametrize(("b", "t"), [(1, 1), (2, 5), (3, 32)])
def test_probability_in_open_unit_interval(b: int, t: int) -> None:
    torch.manual_seed(0)
    pose, betas = inputs(b, t)
    p = MotionDiscriminator()(pose, betas)
    assert p.shape == (b,)
    assert ((p > 0) & (p < 1)).all()


def test_per_frame_betas_equal_repeated_betas() -> None:
    torch.manual_seed(0)
    model = MotionDiscriminator()
    pose, betas = inputs(2, 6)
    repeated = betas[:, None].expand(-1, 6, -1)
    assert torch.allclose(model(pose, betas), model(pose, repeated))


def test_attention_is_spsnets_and_sums_to_one() -> None:
    torch.manual_seed(0)
    model = MotionDiscriminator()
    assert isinstance(model.attention, SelfAttention)  # one implementation of Eq. 1-2
    motion, attention = model.motion_representation(*inputs(2, 7))
    assert motion.shape == (2, JOINT_DIM)
    assert attention.shape == (2, 7, 7)
    assert torch.allclose(attention.sum(dim=-1), torch.ones(2, 7))


def test_gradients_reach_parameters_and_poses() -> None:
    torch.manual_seed(0)
    model = MotionDiscriminator()
    pose, betas = inputs(3, 8)
    pose.requires_grad_(True)
    betas.requires_grad_(True)
    (model(pose, betas) - 1).square().mean().backward()  # the real half of Eq. 7
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name
    for x in (pose, betas):
        assert x.grad is not None
        assert x.grad.abs().sum() > 0


def test_size_of_section_4_1() -> None:
    # Q and K: two FC layers 82 → 82 each; C_D: FC 82 → 1.
    expected = 2 * 2 * (82 * 82 + 82) + 82 + 1
    assert sum(p.numel() for p in MotionDiscriminator(hidden=82).parameters()) == expected
