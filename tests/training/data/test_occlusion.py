"""Synthetic occlusion (SPS-Net §4.1): 3–5 boxes per frame, sizes, placement, determinism."""

from __future__ import annotations

import torch

from training.data.occlusion import (
    MAX_BOX_HALF_SIZE,
    MAX_OCCLUDED_KEYPOINTS,
    MIN_BOX_HALF_SIZE,
    MIN_OCCLUDED_KEYPOINTS,
    REFERENCE_CROP_SIZE,
    boxes_to_masks,
    sample_occlusion_boxes,
    synthesize_occlusion,
)

_B, _T, _J = 3, 8, 14


def _keypoints(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Random keypoints ``(B, T, J, 3)`` inside the frame, all visible."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(_B, _T, _J, 2, generator=g) * torch.tensor([width - 1.0, height - 1.0])
    return torch.cat([xy, torch.ones(_B, _T, _J, 1)], dim=-1)


def test_counts_sizes_and_placement() -> None:
    keypoints = _keypoints(224, 224)
    boxes = sample_occlusion_boxes(keypoints, 224, 224, torch.Generator().manual_seed(1))
    counts = boxes.valid.sum(-1)
    assert counts.min() >= MIN_OCCLUDED_KEYPOINTS
    assert counts.max() <= MAX_OCCLUDED_KEYPOINTS
    assert len(counts.unique()) == MAX_OCCLUDED_KEYPOINTS - MIN_OCCLUDED_KEYPOINTS + 1
    x0, y0, x1, y1 = boxes.corners[boxes.valid].unbind(-1)
    assert (x0 >= 0).all()
    assert (y0 >= 0).all()
    assert (x1 <= 224).all()
    assert (y1 <= 224).all()
    assert ((x1 > x0) & (y1 > y0)).all()
    # Clipping only shrinks a box: its full size is at most twice the largest half-size (+1
    # for rounding), and a box that was not clipped is at least twice the smallest.
    assert ((x1 - x0) <= 2 * MAX_BOX_HALF_SIZE + 1).all()
    assert ((y1 - y0) <= 2 * MAX_BOX_HALF_SIZE + 1).all()
    unclipped = (x0 > 0) & (x1 < 224)
    assert ((x1 - x0)[unclipped] >= 2 * MIN_BOX_HALF_SIZE - 1).all()


def test_boxes_centred_on_distinct_visible_keypoints() -> None:
    keypoints = _keypoints(224, 224)
    keypoints[..., 5:, 2] = 0.0  # only keypoints 0–4 are visible
    keypoints[0, 0, :2, 2] = 0.0  # in one frame only 3 are
    boxes = sample_occlusion_boxes(keypoints, 224, 224, torch.Generator().manual_seed(2))
    assert boxes.valid[0, 0].sum() == MIN_OCCLUDED_KEYPOINTS
    picked = boxes.keypoint[boxes.valid]
    assert (picked < 5).all()
    for b, t in zip(*torch.nonzero(boxes.valid.any(-1), as_tuple=True), strict=True):
        chosen = boxes.keypoint[b, t][boxes.valid[b, t]]
        assert len(chosen.unique()) == len(chosen)  # distinct keypoints
        assert (keypoints[b, t, chosen, 2] > 0).all()  # visible ones
    # A box that was not clipped is centred on its keypoint, up to rounding.
    corners = boxes.corners[boxes.valid].float()
    centres = (corners[:, :2] + corners[:, 2:]) / 2
    targets = keypoints[..., :2].gather(2, boxes.keypoint[..., None].expand(-1, -1, -1, 2))
    unclipped = ((corners[:, :2] > 0) & (corners[:, 2:] < 224)).all(-1)
    assert ((centres - targets[boxes.valid]).abs()[unclipped] <= 1.0).all()


def test_no_visible_keypoint_no_occlusion() -> None:
    frames = torch.ones(_B, _T, 3, 32, 32)
    keypoints = _keypoints(32, 32)
    keypoints[..., 2] = 0.0
    occluded, masks = synthesize_occlusion(frames, keypoints, torch.Generator().manual_seed(0))
    assert not masks.any()
    assert torch.equal(occluded, frames)


def test_sizes_scale_with_the_crop() -> None:
    size = REFERENCE_CROP_SIZE // 2
    keypoints = torch.full((_B, _T, _J, 3), size / 2)
    keypoints[..., 2] = 1.0
    boxes = sample_occlusion_boxes(keypoints, size, size, torch.Generator().manual_seed(3))
    x0, _, x1, _ = boxes.corners[boxes.valid].unbind(-1)
    assert ((x1 - x0) <= MAX_BOX_HALF_SIZE + 1).all()
    assert ((x1 - x0) >= MIN_BOX_HALF_SIZE - 1).all()


def test_frames_zeroed_exactly_under_the_masks() -> None:
    frames = torch.rand(_B, _T, 3, 64, 96) + 1.0
    keypoints = _keypoints(64, 96)
    occluded, masks = synthesize_occlusion(frames, keypoints, torch.Generator().manual_seed(4))
    assert masks.shape == (_B, _T, 64, 96)
    assert (occluded[masks[:, :, None].expand_as(frames)] == 0).all()
    assert torch.equal(
        occluded[~masks[:, :, None].expand_as(frames)], frames[~masks[:, :, None].expand_as(frames)]
    )
    boxes = sample_occlusion_boxes(keypoints, 64, 96, torch.Generator().manual_seed(4))
    assert torch.equal(boxes_to_masks(boxes, 64, 96), masks)


def test_same_seed_same_boxes() -> None:
    keypoints = _keypoints(224, 224)
    first = sample_occlusion_boxes(keypoints, 224, 224, torch.Generator().manual_seed(7))
    again = sample_occlusion_boxes(keypoints, 224, 224, torch.Generator().manual_seed(7))
    other = sample_occlusion_boxes(keypoints, 224, 224, torch.Generator().manual_seed(8))
    assert torch.equal(first.corners, again.corners)
    assert torch.equal(first.valid, again.valid)
    assert not torch.equal(first.corners, other.corners)
