"""MAED's Kinematic Topology Decoder (KTD, MAED §3.4, Eq. 4, Fig. 2 and 4; Table 2).

The STE feature ``x (N, d)`` goes through ``fc1 → dropout → fc2 → dropout`` (no activation
between them, as published) to a hidden vector ``h``. Shape and camera are read straight
from it (Eq. 4: ``β = W_shape·h``, ``φ = W_cam·h``). Each joint ``j`` then gets its own
linear regressor to a 6D rotation (Zhou et al. 2019),
``ω_j = W_j · Concat(h, ω_a1, ω_a2, …)`` with ``a1, a2, …`` the joints it is conditioned
on, so a joint's error propagates to every joint below it.

A :class:`KinematicTree` says which joints condition which and in what order they are
regressed; the same decoder serves SMPL's tree and Table 2's ablations:

- "smpl": joint ``j`` reads its whole ancestor chain, root first (``A(5) = {0, 2}`` in
  §3.4): the layout of the published weights, whose regressor ``j`` has input
  ``hidden + 6·|ancestors(j)|``.
- "random": a random tree over the 24 joints, drawn from a seed: the joints in a random order,
  the first is the root and each later joint picks its parent uniformly among the earlier
  ones; each joint reads its ancestor chain, root first.
- "reversed": SMPL's tree with every parent–child relation exchanged (§4.4.3). Each joint
  reads all its SMPL *descendants* (its ancestors in the reversed graph, which is a DAG, not
  a tree: the pelvis reads all 23 other joints, the leaves — hands, feet, head — read none).
  Joints are regressed in decreasing SMPL index (children before parents) and each reads
  its inputs in that same order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from training.body.skeleton import NUM_JOINTS, ancestors, descendants
from training.geometry import rot6d_to_rotmat
from training.models.hmr_regressor import NUM_BETAS, NUM_CAM

ROT6D = 6
# Small initial output layers so the first estimates stay near zero (as published).
OUTPUT_INIT_GAIN = 0.01


@dataclass(frozen=True)
class KinematicTree:
    """Which joints condition each joint's regressor, and the order joints are regressed in.

    Attributes:
        inputs: for each joint (SMPL index), the joints whose 6D outputs it reads, in the
            order they are concatenated after the hidden vector.
        order: a permutation of the joints in which every joint follows all its inputs.
    """

    inputs: tuple[tuple[int, ...], ...]
    order: tuple[int, ...]

    def __post_init__(self) -> None:
        if sorted(self.order) != list(range(len(self.inputs))):
            raise ValueError(f"order {self.order} is not a permutation of the joints")
        done: set[int] = set()
        for joint in self.order:
            if not done.issuperset(self.inputs[joint]):
                raise ValueError(f"joint {joint} is regressed before its inputs")
            done.add(joint)

    @classmethod
    def from_parents(cls, parents: tuple[int, ...], order: tuple[int, ...]) -> KinematicTree:
        """Each joint reads its whole ancestor chain, root first; ``order`` is topological."""
        chains = []
        for joint in range(len(parents)):
            chain: list[int] = []
            parent = parents[joint]
            while parent >= 0:
                chain.append(parent)
                parent = parents[parent]
            chains.append(tuple(reversed(chain)))
        return cls(tuple(chains), order)

    @classmethod
    def smpl(cls) -> KinematicTree:
        """SMPL's tree (MAED Fig. 4), as the published weights expect."""
        inputs = tuple(tuple(reversed(ancestors(j))) for j in range(NUM_JOINTS))
        return cls(inputs, tuple(range(NUM_JOINTS)))  # SMPL lists parents before children

    @classmethod
    def random(cls, seed: int) -> KinematicTree:
        """A random tree over SMPL's joints (Table 2, KTD_random), the same for the same seed."""
        rng = random.Random(seed)
        order = list(range(NUM_JOINTS))
        rng.shuffle(order)
        parents = [-1] * NUM_JOINTS
        for i, joint in enumerate(order[1:], start=1):
            parents[joint] = order[rng.randrange(i)]
        return cls.from_parents(tuple(parents), tuple(order))

    @classmethod
    def reversed_smpl(cls) -> KinematicTree:
        """SMPL's tree with parents and children exchanged (Table 2, KTD_reverse)."""
        inputs = tuple(tuple(sorted(descendants(j), reverse=True)) for j in range(NUM_JOINTS))
        return cls(inputs, tuple(reversed(range(NUM_JOINTS))))

    @classmethod
    def named(cls, name: str, seed: int = 0) -> KinematicTree:
        """``MAEDConfig.kinematic_tree``: "smpl", "random" (with ``seed``) or "reversed"."""
        if name == "smpl":
            return cls.smpl()
        if name == "random":
            return cls.random(seed)
        if name == "reversed":
            return cls.reversed_smpl()
        raise ValueError(f"unknown kinematic tree {name!r}")

    def dependents(self, joint: int) -> list[int]:
        """Joints whose regressor reads ``joint``'s output, directly or not."""
        return [j for j in range(len(self.inputs)) if joint in self.inputs[j]]


class KTD(nn.Module):
    """Feature ``(N, d)`` → rotations ``(N, 24, 3, 3)``, 6D pose, β ``(N, 10)``, camera ``(N, 3)``.

    Args:
        feature_dim: ``d``, the STE's feature width.
        hidden: width of fc1/fc2 (1024 as published).
        dropout: after fc1 and after fc2.
        tree: the kinematic tree (SMPL's by default).
    """

    def __init__(
        self,
        feature_dim: int,
        hidden: int = 1024,
        dropout: float = 0.5,
        tree: KinematicTree | None = None,
    ) -> None:
        super().__init__()
        self.tree = tree or KinematicTree.smpl()
        self.fc1 = nn.Linear(feature_dim, hidden)
        self.drop1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, hidden)
        self.drop2 = nn.Dropout(dropout)
        # joint_regs[j] regresses joint j (SMPL index), whatever the order of regression.
        self.joint_regs = nn.ModuleList(
            nn.Linear(hidden + ROT6D * len(inputs), ROT6D) for inputs in self.tree.inputs
        )
        self.decshape = nn.Linear(hidden, NUM_BETAS)
        self.deccam = nn.Linear(hidden, NUM_CAM)
        for layer in [*self.joint_regs, self.decshape, self.deccam]:
            nn.init.xavier_uniform_(layer.weight, gain=OUTPUT_INIT_GAIN)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Decode features ``x (N, d)``.

        Returns ``rotmat (N, 24, 3, 3)``, ``pose6d (N, 144)``, ``betas (N, 10)``, ``cam (N, 3)``.
        """
        hidden = self.drop2(self.fc2(self.drop1(self.fc1(x))))
        pose: dict[int, Tensor] = {}
        for joint in self.tree.order:
            features = [hidden, *(pose[i] for i in self.tree.inputs[joint])]
            pose[joint] = self.joint_regs[joint](torch.cat(features, dim=-1))
        pose6d = torch.stack([pose[j] for j in range(len(self.joint_regs))], dim=1)
        return {
            "rotmat": rot6d_to_rotmat(pose6d),
            "pose6d": pose6d.flatten(1),
            "betas": self.decshape(hidden),
            "cam": self.deccam(hidden),
        }
