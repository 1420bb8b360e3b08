"""Measuring the front-end's error: it must recover the training noise's own model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from training.data.landmark_clips import failed_frames, failed_skeletons, world_turns
from training.evaluation.frontend_error import Matched, best_turns, summarise
from training.recipes import LandmarkNoise

NOISE = LandmarkNoise(
    position=0.02, world=0.07, world_turn=(8.0, 7.0, 3.0), world_drift=(10.0, 13.0, 7.0),
    world_drift_correlation=0.6, failure_probability=0.16, failure_length=3.0,
    failure_turn=60.0, failure_scale=(0.2, 0.95), failure_shift=0.15, failure_position=0.1,
)  # fmt: skip
FRAMES = 200  # a track's


def test_best_turns_recover_a_turn_and_never_reflect() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(0.0, 0.3, (4, 33, 3))
    turn = Rotation.from_rotvec([[0.1, -0.4, 0.2]] * 4)
    turned = np.einsum("mij,mkj->mki", turn.as_matrix(), points)
    turns, residuals = best_turns(points, turned)
    np.testing.assert_allclose(turns, np.degrees(turn.as_rotvec()), atol=1e-8)
    np.testing.assert_allclose(residuals, 0.0, atol=1e-10)
    # a mirror image is no turn: the best proper turn leaves a residual
    _, mirrored = best_turns(points, points * [1.0, 1.0, -1.0])
    assert np.abs(mirrored).max() > 0.1


def test_the_measurement_recovers_the_noise_that_made_the_landmarks() -> None:
    # Tracks drawn with the training noise's own model (positions in box sides); measuring
    # them gives the model back.
    rng = np.random.default_rng(1)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in Matched._fields}
    for track in range(80):
        truth = rng.normal(0.0, 0.2, (FRAMES, 33, 2))
        points = rng.normal(0.0, 0.4, (FRAMES, 33, 3))
        failures = failed_frames(FRAMES, NOISE, rng)
        reported = failed_skeletons(truth, failures, 1.0, NOISE, rng)
        steady = failures < 0
        reported[steady] += rng.normal(0.0, NOISE.position, reported[steady].shape)
        turned = np.einsum("fij,fkj->fki", world_turns(FRAMES, failures, NOISE, rng), points)
        columns["track"].append(np.full(FRAMES, f"v/{track}"))
        columns["frame"].append(np.arange(FRAMES))
        columns["landmarks"].append(np.concatenate([reported, np.ones((FRAMES, 33, 1))], -1))
        columns["truth"].append(truth)
        columns["world"].append(turned + rng.normal(0.0, NOISE.world, turned.shape))
        columns["body"].append(points)
    matched = Matched(**{name: np.concatenate(values) for name, values in columns.items()})
    measured = summarise(matched, missed=0.1, videos=1)
    assert measured.person_frames == 80 * FRAMES
    assert measured.missed_frame_probability == 0.1
    assert measured.position == pytest.approx(NOISE.position, rel=0.1)
    assert measured.world == pytest.approx(NOISE.world, rel=0.1)
    assert measured.failure_probability == pytest.approx(0.16, abs=0.03)
    assert measured.failure_length == pytest.approx(3.0, rel=0.2)
    assert measured.failure_turn == pytest.approx(NOISE.failure_turn, rel=0.2)
    low, high = NOISE.failure_scale  # log-uniform: its 10th and 90th percentiles
    expected = [low * (high / low) ** q for q in (0.1, 0.9)]
    np.testing.assert_allclose(measured.failure_scale, expected, rtol=0.2)
    assert measured.world_drift_correlation == pytest.approx(0.6, abs=0.08)
    np.testing.assert_allclose(measured.world_drift, NOISE.world_drift, rtol=0.15)
    np.testing.assert_allclose(measured.world_turn, NOISE.world_turn, rtol=0.3)
    # the metric points are the body's turned (failed or not) plus Gaussian noise: aligned as
    # PA-MPJPE aligns, what is left is the noise, a 3D Gaussian's mean length (1.596 σ) less
    # what the fit's 7 degrees of freedom absorb of the 12 limb landmarks' 36 coordinates
    expected_mm = 1000.0 * NOISE.world * 1.596 * np.sqrt((36 - 7) / 36)
    assert measured.world_pa_mpjpe == pytest.approx(expected_mm, rel=0.05)


def test_metric_points_a_similarity_away_from_the_body_have_no_pa_error() -> None:
    rng = np.random.default_rng(2)
    body = rng.normal(0.0, 0.4, (50, 33, 3))
    turns = Rotation.random(50, random_state=3).as_matrix()
    world = 0.7 * np.einsum("fij,fkj->fki", turns, body) + [0.1, -0.2, 0.3]
    truth = rng.normal(0.0, 0.2, (50, 33, 2))
    matched = Matched(
        track=np.full(50, "v/0"), frame=np.arange(50),
        landmarks=np.concatenate([truth, np.ones((50, 33, 1))], -1), truth=truth,
        world=world, body=body,
    )  # fmt: skip
    assert summarise(matched, missed=0.0, videos=1).world_pa_mpjpe < 1e-6
