"""Axis-aligned boxes in pixels, ``x1, y1, x2, y2`` (corners, x right, y down): overlap and
non-maximum suppression, shared by the detectors and the tracker."""

from __future__ import annotations

import numpy as np


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas ``(N,)`` of ``(N, 4)`` boxes; inverted boxes count as empty."""
    widths = np.clip(boxes[:, 2] - boxes[:, 0], 0.0, None)
    heights = np.clip(boxes[:, 3] - boxes[:, 1], 0.0, None)
    return widths * heights


def clip_boxes(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """``(N, 4)`` boxes cut to the image ``[0, width] × [0, height]``."""
    limits = np.array([width, height, width, height], dtype=np.float64)
    return np.clip(boxes, 0.0, limits)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a (N, 4)`` with every box of ``b (M, 4)``.

    Returns:
        ``(N, M)`` in [0, 1]; a pair whose union is empty has IoU 0.
    """
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])  # (N, M, 2)
    overlap = np.clip(bottom_right - top_left, 0.0, None).prod(axis=-1)  # (N, M)
    union = box_area(a)[:, None] + box_area(b)[None, :] - overlap
    return np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: the best-scoring box removes every box that overlaps
    it by more than ``iou_threshold``, then the best remaining one, and so on.

    Args:
        boxes: ``(N, 4)`` x1, y1, x2, y2.
        scores: ``(N,)``.
        iou_threshold: IoU above which the lower-scoring box of a pair is removed.

    Returns:
        ``(K,)`` int64 indices of the kept boxes, best score first.
    """
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size > 0:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        order = rest[iou_matrix(boxes[best][None], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)
