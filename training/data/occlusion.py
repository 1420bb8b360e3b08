"""Synthetic occlusion of SPS-Net's self-supervised occlusion handling (SPS-Net §3.4, §4.1).

For every frame, 3 to 5 of the visible keypoints are picked at random and each is hidden by a
box centred on it whose half-width and half-height are drawn, independently, between 25 and
50 pixels of a 224-pixel crop (§4.1); on a crop of another size they scale with it. The boxes
are filled with **zeros**: on ImageNet-normalised frames, what the encoder sees, 0 is the
dataset's mean colour, so the box reads as a flat grey occluder rather than as black.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from training.geometry.camera import CROP_SIZE

# SPS-Net §4.1: how many keypoints are occluded per frame (inclusive bounds).
MIN_OCCLUDED_KEYPOINTS = 3
MAX_OCCLUDED_KEYPOINTS = 5
# SPS-Net §4.1: half-width and half-height of an occluding box, pixels of a 224-pixel crop.
MIN_BOX_HALF_SIZE = 25.0
MAX_BOX_HALF_SIZE = 50.0
REFERENCE_CROP_SIZE = CROP_SIZE


class OcclusionBoxes(NamedTuple):
    """Up to :data:`MAX_OCCLUDED_KEYPOINTS` boxes per frame.

    corners: ``(B, T, K, 4)`` long ``(x0, y0, x1, y1)``, the box covering columns ``x0 ≤ x < x1``
    and rows ``y0 ≤ y < y1``, clipped to the frame. keypoint: ``(B, T, K)`` long, the keypoint
    each box is centred on. valid: ``(B, T, K)`` bool, which boxes are used (a frame with fewer
    visible keypoints than drawn gets fewer boxes).
    """

    corners: Tensor
    keypoint: Tensor
    valid: Tensor


def sample_occlusion_boxes(
    keypoints_2d: Tensor, height: int, width: int, generator: torch.Generator
) -> OcclusionBoxes:
    """Draw the occluding boxes of every frame (SPS-Net §4.1).

    Args:
        keypoints_2d: ``(B, T, J, 3)`` pixel ``(x, y)`` and a confidence; a keypoint counts as
            visible when its confidence is positive and it lies in the frame.
        height, width: frame size in pixels.
        generator: the source of randomness (same seed, same boxes); its device is used for
            drawing, the result is on the keypoints' device.

    Returns:
        The boxes, :class:`OcclusionBoxes`.
    """
    if keypoints_2d.ndim != 4 or keypoints_2d.shape[-1] != 3:
        raise ValueError(f"keypoints_2d must be (B, T, J, 3), got {tuple(keypoints_2d.shape)}")
    batch, frames, joints, _ = keypoints_2d.shape
    slots = min(MAX_OCCLUDED_KEYPOINTS, joints)
    device = generator.device
    x, y, confidence = keypoints_2d.detach().to(device).unbind(-1)
    visible = (confidence > 0) & (x >= 0) & (x < width) & (y >= 0) & (y < height)

    wanted = torch.randint(
        MIN_OCCLUDED_KEYPOINTS,
        MAX_OCCLUDED_KEYPOINTS + 1,
        (batch, frames, 1),
        generator=generator,
        device=device,
    )
    # A random order of the visible keypoints: random scores, invisible ones sorted last.
    scores = torch.rand(batch, frames, joints, generator=generator, device=device).masked_fill(
        ~visible, -1.0
    )
    picked = scores.topk(slots, dim=-1).indices  # (B, T, K)
    rank = torch.arange(slots, device=device)
    valid = (rank < wanted) & (rank < visible.sum(-1, keepdim=True))

    scale = torch.tensor([width, height], device=device) / REFERENCE_CROP_SIZE
    spread = MAX_BOX_HALF_SIZE - MIN_BOX_HALF_SIZE
    half = (
        MIN_BOX_HALF_SIZE
        + spread * torch.rand(batch, frames, slots, 2, generator=generator, device=device)
    ) * scale
    centre = torch.stack([x.gather(-1, picked), y.gather(-1, picked)], dim=-1)
    limit = torch.tensor([width, height], device=device)
    low = torch.round(centre - half).clamp(min=0).minimum(limit).long()
    high = torch.round(centre + half).clamp(min=0).minimum(limit).long()
    corners = torch.cat([low, high], dim=-1)
    out = keypoints_2d.device
    return OcclusionBoxes(corners.to(out), picked.to(out), valid.to(out))


def boxes_to_masks(boxes: OcclusionBoxes, height: int, width: int) -> Tensor:
    """``(B, T, H, W)`` bool: the pixels covered by any valid box."""
    cols = torch.arange(width, device=boxes.corners.device)
    rows = torch.arange(height, device=boxes.corners.device)
    x0, y0, x1, y1 = boxes.corners[..., None].unbind(-2)  # each (B, T, K, 1)
    in_cols = ((cols >= x0) & (cols < x1) & boxes.valid[..., None]).float()  # (B, T, K, W)
    in_rows = ((rows >= y0) & (rows < y1)).float()  # (B, T, K, H)
    # Union over boxes without a (B, T, K, H, W) tensor: count covering boxes with a matmul.
    return (in_rows.transpose(-1, -2) @ in_cols) > 0


def synthesize_occlusion(
    frames: Tensor, keypoints_2d: Tensor, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Hide 3–5 visible keypoints of every frame behind zero-filled boxes (SPS-Net §4.1).

    Args:
        frames: ``(B, T, 3, H, W)`` (normalised) frames.
        keypoints_2d: ``(B, T, J, 3)`` pixel coordinates of ``frames`` and confidences.
        generator: randomness; the same seed gives the same boxes.

    Returns:
        ``(occluded frames (B, T, 3, H, W), masks (B, T, H, W) bool)``, True where occluded.
    """
    if frames.ndim != 5 or frames.shape[2] != 3:
        raise ValueError(f"frames must be (B, T, 3, H, W), got {tuple(frames.shape)}")
    if keypoints_2d.shape[:2] != frames.shape[:2]:
        raise ValueError("frames and keypoints_2d must have the same (B, T)")
    height, width = frames.shape[-2:]
    masks = boxes_to_masks(
        sample_occlusion_boxes(keypoints_2d, height, width, generator), height, width
    )
    return frames.masked_fill(masks[:, :, None], 0.0), masks
