"""A track's features through the temporal model, window by window, blended at the seams.

As evaluation runs it (``training.evaluation.predict``): windows of the bundle's length T start
every ``stride`` frames, the last one ending with the track. Where windows overlap their
predictions are blended with triangular weights ``min(t + 1, T − t)``: β and the camera as
weighted means, rotations as the nearest rotation (SVD) to the weighted mean of the matrices,
so the result does not jump at a seam.

A track shorter than T is one window: of its own length when the temporal model takes any T
(SPS-Net), else (MAED) padded to T by repeating its first and last frames, the padding's
predictions dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from service.bundle import NUM_BETAS, NUM_JOINTS, WindowSpec
from service.pipeline.rotations import nearest_rotation

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

CAMERA_SIZE = 3  # s, tx, ty
TEMPORAL_INPUT = "features"
TEMPORAL_OUTPUTS = ["rotmat", "betas", "cam"]


@dataclass(frozen=True)
class Window:
    """The frames one run of the temporal model reads, as rows of the track's arrays."""

    rows: np.ndarray  # (L,) int: padding repeats the track's first or last row
    real: np.ndarray  # (L,) bool: False on padding


@dataclass(frozen=True)
class TemporalOutput:
    """The temporal model's per-frame predictions for a whole track."""

    rotmat: np.ndarray  # (N, 24, 3, 3) float32 rotations
    betas: np.ndarray  # (N, 10) float32
    cam: np.ndarray  # (N, 3) float32 s, tx, ty of each frame's crop


def window_weights(length: int) -> np.ndarray:
    """``(length,)`` blending weights ``1, 2, …`` from either edge: a window's neighbours, which
    see its edge frames in their middle, with more context, decide those frames."""
    positions = np.arange(length)
    return np.minimum(positions + 1, length - positions).astype(np.float64)


def window_starts(frames: int, length: int, stride: int) -> list[int]:
    """First rows of the windows of ``length`` that cover ``frames >= length`` rows: one every
    ``stride``, and one ending with the last row."""
    last = frames - length
    starts = list(range(0, last + 1, stride))
    if starts[-1] < last:
        starts.append(last)
    return starts


def plan_windows(frames: int, spec: WindowSpec, stride: int) -> list[Window]:
    """The windows over a track of ``frames`` rows (see the module's docstring).

    Raises:
        ValueError: a stride outside ``[1, T]``.
    """
    if not 1 <= stride <= spec.length:
        raise ValueError(f"the window stride must be between 1 and {spec.length}, not {stride}")
    if frames >= spec.length:
        rows = [
            np.arange(start, start + spec.length)
            for start in window_starts(frames, spec.length, stride)
        ]
        return [Window(row, np.ones(spec.length, dtype=bool)) for row in rows]
    if spec.dynamic_length:
        return [Window(np.arange(frames), np.ones(frames, dtype=bool))]
    before = (spec.length - frames) // 2  # the track in the window's middle
    positions = np.arange(spec.length) - before
    return [Window(np.clip(positions, 0, frames - 1), (positions >= 0) & (positions < frames))]


def blend_windows(
    frames: int,
    windows: list[Window],
    rotmat: np.ndarray,
    betas: np.ndarray,
    cam: np.ndarray,
) -> TemporalOutput:
    """Blend the predictions of overlapping windows into one per frame.

    Args:
        frames: N, the track's rows.
        windows: K windows of one length L that cover every row.
        rotmat: ``(K, L, 24, 3, 3)`` each window's predictions.
        betas: ``(K, L, 10)``.
        cam: ``(K, L, 3)``.

    Returns:
        Per row: the nearest rotation to the weighted mean of the rotations, and the weighted
        means of β and the camera, weighted by :func:`window_weights`.
    """
    rotmat_sum = np.zeros((frames, NUM_JOINTS, 3, 3))
    betas_sum = np.zeros((frames, NUM_BETAS))
    cam_sum = np.zeros((frames, CAMERA_SIZE))
    weight_sum = np.zeros(frames)
    for index, window in enumerate(windows):
        rows, real = window.rows[window.real], window.real
        weights = window_weights(len(real))[real]  # (L',)
        rotmat_sum[rows] += weights[:, None, None, None] * rotmat[index, real]
        betas_sum[rows] += weights[:, None] * betas[index, real]
        cam_sum[rows] += weights[:, None] * cam[index, real]
        weight_sum[rows] += weights
    if not (weight_sum > 0).all():
        raise ValueError("the windows leave rows of the track uncovered")
    return TemporalOutput(
        rotmat=nearest_rotation(rotmat_sum).astype(np.float32),
        betas=(betas_sum / weight_sum[:, None]).astype(np.float32),
        cam=(cam_sum / weight_sum[:, None]).astype(np.float32),
    )


def run_temporal(
    features: np.ndarray,
    windows: list[Window],
    session: InferenceSession,
    windows_per_run: int,
    on_run: Callable[[int], None],
) -> TemporalOutput:
    """The temporal model over a track's windows, blended.

    Args:
        features: ``(N, *feature_shape)`` float32, the track's per-frame features.
        windows: :func:`plan_windows`'s, all of one length.
        session: the bundle's ``temporal.onnx``.
        windows_per_run: how many windows one run of the model takes at most.
        on_run: called after each run with the number of windows it took.
    """
    outputs: list[list[np.ndarray]] = [[], [], []]  # rotmat, betas, cam of each run
    for first in range(0, len(windows), windows_per_run):
        batch = windows[first : first + windows_per_run]
        inputs = np.stack([features[window.rows] for window in batch])  # (B, L, *feature_shape)
        for kept, output in zip(
            outputs, session.run(TEMPORAL_OUTPUTS, {TEMPORAL_INPUT: inputs}), strict=True
        ):
            kept.append(output)
        on_run(len(batch))
    rotmat, betas, cam = (np.concatenate(kept) for kept in outputs)
    return blend_windows(len(features), windows, rotmat, betas, cam)
