"""The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012), over a track's per-frame arrays.

Each value is low-pass filtered with a cutoff that rises with its speed: at rest the cutoff is
``min_cutoff`` and jitter is removed; in fast motion it is ``min_cutoff + beta · |speed|`` and
the lag stays small. The speed is itself low-passed at ``d_cutoff``. Frame times, not indices,
set each step, so variable frame rates and frames a track skips are handled.

Rotations are filtered as the nine entries of their matrices, then each result is projected to
the nearest rotation (SVD), as overlapping windows are blended. The 6D representation would
filter six numbers instead of nine, but its Gram–Schmidt favours the first column; axis-angle
(VIBE's demo filters it) jumps where the angle wraps at π.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, NonNegativeFloat, PositiveFloat

from service.pipeline.rotations import nearest_rotation


class OneEuroConfig(BaseModel):
    """The filter's parameters; cutoffs in Hz, speeds in units per second.

    Defaults: ``min_cutoff`` 1 Hz, Casiez et al.'s starting point, keeps the slow sway of a
    standing person and removes a network's frame-to-frame jitter (at 30 fps, noise lies up to
    15 Hz); ``beta`` is VIBE's demo's 0.7 (it filters frame indices as times, and β is the same
    per frame as per second); ``d_cutoff`` 1 Hz is Casiez et al.'s.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_cutoff: PositiveFloat = 1.0
    beta: NonNegativeFloat = 0.7
    d_cutoff: PositiveFloat = 1.0


def _smoothing_factor(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """The exponential smoothing factor of a first-order low-pass at ``cutoff`` Hz, step ``dt``."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def one_euro(values: np.ndarray, times: np.ndarray, config: OneEuroConfig) -> np.ndarray:
    """Filter ``(N, ...)`` values sampled at ``(N,)`` times, each entry on its own.

    Args:
        values: one row per frame.
        times: seconds, strictly increasing.
        config: the filter's parameters.

    Returns:
        ``(N, ...)`` float64; the first row is the first value.

    Raises:
        ValueError: times that do not strictly increase, or one per row missing.
    """
    if times.shape != values.shape[:1]:
        raise ValueError(f"{len(values)} rows need as many times, got shape {times.shape}")
    steps = np.diff(times)
    if (steps <= 0).any():
        raise ValueError("a One-Euro filter needs strictly increasing times")
    signal = values.astype(np.float64)
    out = np.empty_like(signal)
    out[0] = signal[0]
    speed = np.zeros_like(signal[0])
    for index, dt in enumerate(steps, start=1):
        raw_speed = (signal[index] - out[index - 1]) / dt
        speed += _smoothing_factor(config.d_cutoff, dt) * (raw_speed - speed)
        cutoff = config.min_cutoff + config.beta * np.abs(speed)
        out[index] = out[index - 1] + _smoothing_factor(cutoff, dt) * (
            signal[index] - out[index - 1]
        )
    return out


def one_euro_rotations(rotmat: np.ndarray, times: np.ndarray, config: OneEuroConfig) -> np.ndarray:
    """Filter ``(N, ..., 3, 3)`` rotations: their entries, then the nearest rotations."""
    return nearest_rotation(one_euro(rotmat, times, config))
