"""What one training clip holds: the contract between the readers and the training loop.

A dataset item is a :class:`Clip` (no batch dimension); the default collate stacks items into
a batch with a leading ``B``. Optional keys are present only when the data has them.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from torch import Tensor

# The input normalisation of every network here (ImageNet statistics, as SPIN, VIBE and MAED).
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


class Clip(TypedDict):
    """T consecutive frames of one person (T + 1 when the shifted pair for L_camera is asked)."""

    frames: Tensor  # (T, 3, S, S) float, RGB normalised by IMAGE_MEAN / IMAGE_STD
    keypoints_2d: Tensor  # (T, 49, 3): crop coordinates in [-1, 1], confidence (0: missing)
    joints_3d: Tensor  # (T, 49, 4): metres, camera frame, validity (0: missing)
    pose: Tensor  # (T, 72) axis-angle, global orientation in the camera frame
    betas: Tensor  # (T, 10)
    has_smpl: Tensor  # (T,) bool: pose and betas are ground truth
    frame_ids: Tensor  # (T,) long
    features: NotRequired[Tensor]  # (T, D) precomputed features, when the file has them
    mask: NotRequired[Tensor]  # (T, S, S) float: the person's mask in the crop
    has_mask: NotRequired[Tensor]  # (T,) bool
