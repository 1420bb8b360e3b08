"""Measuring the front-end's 3D landmark error: it must recover the training noise's model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from training.data.landmark_clips import world_turns
from training.evaluation.frontend_error import best_turns, summarise_world_error
from training.recipes import LandmarkNoise

NOISE = LandmarkNoise(
    world=0.07, world_turn=(8.0, 7.0, 3.0), world_drift=(10.0, 13.0, 7.0),
    world_drift_correlation=0.6, world_failure_probability=0.16, world_failure_length=3.0,
)  # fmt: skip


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


def test_the_measurement_recovers_the_noise_that_made_the_points() -> None:
    # Tracks drawn with the training noise's own model; measuring them gives it back.
    rng = np.random.default_rng(1)
    tracks, frames, body, blazepose = [], [], [], []
    for track in range(80):
        points = rng.normal(0.0, 0.4, (200, 33, 3))
        turned = np.einsum("fij,fkj->fki", world_turns(200, NOISE, rng), points)
        blazepose.append(turned + rng.normal(0.0, NOISE.world, turned.shape))
        body.append(points)
        tracks += [f"v/{track}"] * 200
        frames.append(np.arange(200))
    measured = summarise_world_error(
        np.asarray(tracks), np.concatenate(frames), np.concatenate(body),
        np.concatenate(blazepose), videos=1,
    )  # fmt: skip
    assert measured.person_frames == 80 * 200
    assert measured.world == pytest.approx(NOISE.world, rel=0.1)
    assert measured.world_failure_probability == pytest.approx(0.16, abs=0.03)
    assert measured.world_failure_length == pytest.approx(3.0, rel=0.2)
    assert measured.world_drift_correlation == pytest.approx(0.6, abs=0.08)
    np.testing.assert_allclose(measured.world_drift, NOISE.world_drift, rtol=0.15)
    np.testing.assert_allclose(measured.world_turn, NOISE.world_turn, rtol=0.3)
