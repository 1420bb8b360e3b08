"""MAED's kinematic topology decoder: trees, the published layout, and that a joint's
output reaches exactly the joints below it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from training.body.skeleton import NUM_JOINTS, ancestors, descendants
from training.geometry import rot6d_to_rotmat
from training.models.ktd import KTD, KinematicTree

FEATURE, HIDDEN = 32, 48


def test_smpl_tree_reads_the_whole_chain_root_first() -> None:
    tree = KinematicTree.smpl()
    assert tree.inputs[0] == ()
    assert tree.inputs[5] == (0, 2)  # A(5) = {0, 2}, MAED §3.4
    assert tree.inputs[22] == (0, 3, 6, 9, 13, 16, 18, 20)
    assert tree.order == tuple(range(NUM_JOINTS))


def test_published_regressor_widths() -> None:
    decoder = KTD(768, 1024)
    widths = [reg.in_features for reg in decoder.joint_regs]
    assert widths == [1024 + 6 * len(ancestors(j)) for j in range(NUM_JOINTS)]
    assert widths[0] == 1024
    assert widths[22] == 1072


def test_reversed_tree_exchanges_parents_and_children() -> None:
    tree = KinematicTree.reversed_smpl()
    for joint in range(NUM_JOINTS):
        assert set(tree.inputs[joint]) == set(descendants(joint))
        assert set(tree.dependents(joint)) == set(ancestors(joint))
    assert len(tree.inputs[0]) == NUM_JOINTS - 1
    assert tree.inputs[15] == ()  # the head, a leaf, is regressed from the feature alone


def test_random_tree_is_a_tree_fixed_by_its_seed() -> None:
    tree = KinematicTree.random(3)
    assert tree == KinematicTree.random(3)
    assert tree != KinematicTree.random(4)
    roots = [j for j in range(NUM_JOINTS) if not tree.inputs[j]]
    assert len(roots) == 1
    for joint in range(NUM_JOINTS):
        chain = tree.inputs[joint]
        # a chain: each joint's inputs are its parent's inputs followed by the parent
        if chain:
            assert tree.inputs[chain[-1]] == chain[:-1]


def test_named_trees() -> None:
    assert KinematicTree.named("smpl") == KinematicTree.smpl()
    assert KinematicTree.named("reversed") == KinematicTree.reversed_smpl()
    assert KinematicTree.named("random", 7) == KinematicTree.random(7)
    with pytest.raises(ValueError, match="unknown"):
        KinematicTree.named("star")


def test_an_order_that_regresses_a_joint_before_its_inputs_is_rejected() -> None:
    smpl = KinematicTree.smpl()
    with pytest.raises(ValueError, match="before its inputs"):
        KinematicTree(smpl.inputs, tuple(reversed(smpl.order)))


@pytest.mark.parametrize(
    "tree", [KinematicTree.smpl(), KinematicTree.reversed_smpl(), KinematicTree.random(0)]
)
@pytest.mark.parametrize("joint", [0, 3, 9, 16, 21])
def test_perturbing_a_joint_changes_itself_and_its_dependents_only(
    tree: KinematicTree, joint: int
) -> None:
    torch.manual_seed(0)
    decoder = KTD(FEATURE, HIDDEN, tree=tree).eval()
    x = torch.randn(2, FEATURE)
    with torch.no_grad():
        base = decoder(x)

        def shift(_: nn.Module, __: tuple[torch.Tensor, ...], out: torch.Tensor) -> torch.Tensor:
            return out + torch.tensor([0.5, -0.3, 0.2, 0.4, -0.1, 0.3])

        handle = decoder.joint_regs[joint].register_forward_hook(shift)
        shifted = decoder(x)
        handle.remove()
    changed = {
        j
        for j in range(NUM_JOINTS)
        if not torch.equal(shifted["rotmat"][:, j], base["rotmat"][:, j])
    }
    assert changed == {joint, *tree.dependents(joint)}
    if tree == KinematicTree.smpl():
        assert set(tree.dependents(joint)) == set(descendants(joint))
    assert torch.equal(shifted["betas"], base["betas"])
    assert torch.equal(shifted["cam"], base["cam"])


def test_outputs_follow_the_6d_convention_and_shapes() -> None:
    torch.manual_seed(0)
    decoder = KTD(FEATURE, HIDDEN).eval()
    out = decoder(torch.randn(5, FEATURE))
    assert out["rotmat"].shape == (5, NUM_JOINTS, 3, 3)
    assert out["pose6d"].shape == (5, NUM_JOINTS * 6)
    assert out["betas"].shape == (5, 10)
    assert out["cam"].shape == (5, 3)
    expected = rot6d_to_rotmat(out["pose6d"].reshape(5, NUM_JOINTS, 6))
    assert torch.allclose(out["rotmat"], expected)
    eye = torch.eye(3).expand(5, NUM_JOINTS, 3, 3)
    assert torch.allclose(out["rotmat"] @ out["rotmat"].transpose(-1, -2), eye, atol=1e-5)


def test_no_activation_between_fc1_and_fc2() -> None:
    """Shape and camera are affine in the feature: f(a) + f(b) = f(a + b) + f(0)."""
    torch.manual_seed(0)
    decoder = KTD(FEATURE, HIDDEN).eval()
    a, b = torch.randn(2, 1, FEATURE)
    with torch.no_grad():
        out = {name: decoder(torch.stack([a, b, a + b, 0 * a]))[name] for name in ("betas", "cam")}
    for value in out.values():
        assert torch.allclose(value[0] + value[1], value[2] + value[3], atol=1e-5)
