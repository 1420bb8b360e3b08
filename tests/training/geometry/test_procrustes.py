"""Similarity Procrustes: exact recovery, no reflections, N = 1, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from training.geometry.procrustes import fit_similarity, procrustes_align

RNG_SEED = 4


def _random_similarity(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    scale = rng.uniform(0.5, 2.0, n)
    rotation = Rotation.random(n, random_state=rng).as_matrix()
    translation = rng.normal(size=(n, 3))
    return scale, rotation, translation


def test_recovers_known_similarity() -> None:
    rng = np.random.default_rng(RNG_SEED)
    source = rng.normal(size=(5, 14, 3))
    scale, rotation, translation = _random_similarity(rng, 5)
    target = scale[:, None, None] * source @ rotation.transpose(0, 2, 1) + translation[:, None]

    got_scale, got_rotation, got_translation = fit_similarity(source, target)
    np.testing.assert_allclose(got_scale, scale, atol=1e-10)
    np.testing.assert_allclose(got_rotation, rotation, atol=1e-10)
    np.testing.assert_allclose(got_translation, translation, atol=1e-10)
    np.testing.assert_allclose(procrustes_align(source, target), target, atol=1e-10)


def test_mirror_image_is_not_reached_by_reflection() -> None:
    # The target is the source mirrored in the x = 0 plane. Only a reflection would align it
    # exactly, so the proper-rotation answer must leave a residual and have det +1.
    rng = np.random.default_rng(RNG_SEED)
    source = rng.normal(size=(3, 10, 3))
    target = source * np.array([-1.0, 1.0, 1.0])
    _, rotation, _ = fit_similarity(source, target)
    np.testing.assert_allclose(np.linalg.det(rotation), np.ones(3), atol=1e-10)
    residual = np.abs(procrustes_align(source, target) - target).max()
    assert residual > 1e-3


def test_single_frame() -> None:
    rng = np.random.default_rng(RNG_SEED)
    source = rng.normal(size=(1, 6, 3))
    target = 3.0 * source + np.array([1.0, 2.0, 3.0])
    aligned = procrustes_align(source, target)
    assert aligned.shape == (1, 6, 3)
    np.testing.assert_allclose(aligned, target, atol=1e-10)


def test_alignment_never_worse_than_identity() -> None:
    # The identity is one candidate similarity, so the optimum's residual is no larger.
    rng = np.random.default_rng(RNG_SEED)
    source = rng.normal(size=(8, 14, 3))
    target = source + rng.normal(size=source.shape) * 0.3
    aligned_err = np.sum((procrustes_align(source, target) - target) ** 2, axis=(1, 2))
    identity_err = np.sum((source - target) ** 2, axis=(1, 2))
    assert np.all(aligned_err <= identity_err + 1e-12)


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        (np.zeros((2, 5, 2)), np.zeros((2, 5, 2)), "shape"),
        (np.zeros((2, 5, 3)), np.zeros((2, 4, 3)), "differ"),
        (np.ones((1, 5, 3)), np.zeros((1, 5, 3)), "one place"),
    ],
)
def test_invalid_input_raises(source: np.ndarray, target: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        procrustes_align(source, target)
