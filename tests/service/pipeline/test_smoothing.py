"""The One-Euro filter: jitter removed, little lag on ramps, rotations kept rotations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from service.pipeline.smoothing import OneEuroConfig, one_euro, one_euro_rotations

FPS = 30.0
FRAMES = 300
CONFIG = OneEuroConfig()


def times(frames: int = FRAMES) -> np.ndarray:
    return np.arange(frames) / FPS


def acceleration(values: np.ndarray) -> float:
    """Root mean square of the second difference, per second squared."""
    return float(np.sqrt(np.mean((np.diff(values, n=2, axis=0) * FPS**2) ** 2)))


def lag_s(filtered: np.ndarray, ramp: np.ndarray, speed: float) -> float:
    """How far behind the ramp the filter runs once settled, in seconds."""
    settled = slice(len(ramp) // 2, None)
    return float(np.mean(ramp[settled] - filtered[settled]) / speed)


def test_jitter_is_removed():
    """A slow sway with per-frame noise (a network's jitter): acceleration drops fivefold, and
    the filtered signal is nearer the sway than the noisy one (its lag costs less than the
    noise it removes)."""
    rng = np.random.default_rng(0)
    sway = 0.05 * np.sin(2 * np.pi * 0.3 * times())[:, None] + np.zeros((1, 3))  # (N, 3)
    noisy = sway + rng.normal(0.0, 0.02, sway.shape)
    filtered = one_euro(noisy, times(), CONFIG)
    assert acceleration(filtered) < acceleration(noisy) / 5
    assert np.abs(filtered - sway).mean() < 0.75 * np.abs(noisy - sway).mean()


@pytest.mark.parametrize(("speed", "max_lag_s"), [(0.5, 0.15), (5.0, 1.5 / FPS)])
def test_ramps_lag_little_and_less_when_fast(speed, max_lag_s):
    """On a ramp the filter lags 1 / (2π (min_cutoff + β · speed)) seconds: a few frames at a
    slow pace, about one when fast; without β it would lag as much as when slow."""
    ramp = speed * times()
    assert 0 < lag_s(one_euro(ramp, times(), CONFIG), ramp, speed) <= max_lag_s
    no_beta = OneEuroConfig(beta=0.0)
    assert lag_s(one_euro(ramp, times(), no_beta), ramp, speed) > 0.15


def test_constants_stay_and_frame_times_are_used():
    constant = np.full((20, 2, 2), 3.5)
    assert np.array_equal(one_euro(constant, times(20), CONFIG), constant)
    # The same ramp sampled at uneven times: still a small lag at every sample.
    uneven = np.cumsum(np.random.default_rng(1).uniform(0.5, 2.0, FRAMES)) / FPS
    ramp = 0.5 * uneven
    assert np.abs(one_euro(ramp, uneven, CONFIG) - ramp)[FRAMES // 2 :].max() < 0.5 * 0.2


def test_rotations_stay_rotations_and_jitter_less():
    rng = np.random.default_rng(2)
    path = np.stack([np.linspace(0.0, 1.5, FRAMES), np.zeros(FRAMES), np.zeros(FRAMES)], 1)
    noisy = Rotation.from_rotvec(path + rng.normal(0.0, 0.03, (FRAMES, 3))).as_matrix()
    filtered = one_euro_rotations(noisy[:, None], times(), CONFIG)[:, 0]  # (N, 3, 3)
    identity = np.broadcast_to(np.eye(3), filtered.shape)
    assert np.abs(filtered @ filtered.transpose(0, 2, 1) - identity).max() < 1e-9
    assert np.abs(np.linalg.det(filtered) - 1.0).max() < 1e-9
    rotvec = Rotation.from_matrix(filtered).as_rotvec()
    noisy_rotvec = Rotation.from_matrix(noisy).as_rotvec()
    assert acceleration(rotvec) < acceleration(noisy_rotvec) / 5


def test_times_must_rise():
    with pytest.raises(ValueError, match="strictly increasing"):
        one_euro(np.zeros((3, 2)), np.array([0.0, 0.1, 0.1]), CONFIG)
    with pytest.raises(ValueError, match="as many times"):
        one_euro(np.zeros((3, 2)), np.array([0.0, 0.1]), CONFIG)
