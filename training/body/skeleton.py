"""SMPL's 24-joint kinematic tree, shared by every body model the project serves.

Joint order, names and parents are SMPL's (Loper et al. 2015). Left and right are the body's
own: in SMPL's frame (Y up, facing +Z) the body's left is at +X.
"""

from __future__ import annotations

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)

# parent of each joint; -1 for the root
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)  # fmt: skip

NUM_JOINTS = len(SMPL_JOINT_NAMES)

# Index of each joint's mirror image (left ↔ right), for flip augmentation and symmetry checks.
SMPL_FLIP_PERMUTATION: tuple[int, ...] = tuple(
    SMPL_JOINT_NAMES.index(
        name.replace("left_", "@").replace("right_", "left_").replace("@", "right_")
    )
    for name in SMPL_JOINT_NAMES
)


# The body's five chains below the pelvis, by joint index: what a limb-swapped pose exchanges.
SMPL_CHAINS: dict[str, tuple[int, ...]] = {
    "spine_and_head": (3, 6, 9, 12, 15),
    "left_leg": (1, 4, 7, 10),
    "right_leg": (2, 5, 8, 11),
    "left_arm": (13, 16, 18, 20, 22),
    "right_arm": (14, 17, 19, 21, 23),
}


def ancestors(joint: int) -> list[int]:
    """The chain from ``joint``'s parent up to the root, nearest first."""
    chain = []
    parent = SMPL_PARENTS[joint]
    while parent >= 0:
        chain.append(parent)
        parent = SMPL_PARENTS[parent]
    return chain


def descendants(joint: int) -> list[int]:
    """Every joint below ``joint`` in the tree, in SMPL order."""
    return [j for j in range(NUM_JOINTS) if joint in ancestors(j)]
