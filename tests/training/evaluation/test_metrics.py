"""Evaluation metrics: hand-worked numbers, invariances, shapes and errors."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from training.evaluation.metrics import accel, accel_error, auc, mpjpe, pa_mpjpe, pck, pve

RNG_SEED = 5
NUM_LSP_JOINTS = 14


@pytest.fixture
def sequence() -> tuple[np.ndarray, np.ndarray]:
    """Ground truth and a noisy prediction: (6, 14, 3) in metres."""
    rng = np.random.default_rng(RNG_SEED)
    gt = rng.normal(size=(6, NUM_LSP_JOINTS, 3)) * 0.3
    pred = gt + rng.normal(size=gt.shape) * 0.05
    return pred, gt


def test_mpjpe_two_joint_hand_worked() -> None:
    # Two joints, both hips (hips=(0, 1)), one frame.
    # gt: (0,0,0), (1,0,0) → pelvis (0.5,0,0) → centred (−0.5,0,0), (0.5,0,0).
    # pred: (0,0,0), (1,0.2,0) → pelvis (0.5,0.1,0) → centred (−0.5,−0.1,0), (0.5,0.1,0).
    # Errors 0.1 m and 0.1 m → mean 0.1 m = 100 mm.
    gt = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    pred = np.array([[[0.0, 0.0, 0.0], [1.0, 0.2, 0.0]]])
    np.testing.assert_allclose(mpjpe(pred, gt, hips=(0, 1)), [100.0])


def test_mpjpe_default_hips_are_lsp_2_and_3() -> None:
    # Joints 2 and 3 at the origin (pelvis 0) in both; joint 0 off by 3-4-5 → 0.05 m; so the
    # mean over 4 joints is 50/4 = 12.5 mm. Other hips would move the pelvis and change it.
    gt = np.zeros((1, 4, 3))
    pred = gt.copy()
    pred[0, 0] = [0.03, 0.04, 0.0]
    np.testing.assert_allclose(mpjpe(pred, gt), [12.5])
    assert mpjpe(pred, gt, hips=(0, 1))[0] != pytest.approx(12.5)


def test_mpjpe_invariant_to_translating_pred(sequence: tuple[np.ndarray, np.ndarray]) -> None:
    pred, gt = sequence
    shifted = pred + np.array([[[1.0, -2.0, 3.0]]]) * np.arange(1, 7)[:, None, None]
    np.testing.assert_allclose(mpjpe(shifted, gt), mpjpe(pred, gt), atol=1e-9)
    assert np.all(mpjpe(pred, gt) > 0)


def test_pa_mpjpe_invariant_to_similarity_of_pred(sequence: tuple[np.ndarray, np.ndarray]) -> None:
    pred, gt = sequence
    rotation = Rotation.from_rotvec([0.3, -1.2, 2.0]).as_matrix()
    moved = 2.5 * pred @ rotation.T + np.array([0.4, -0.7, 5.0])
    np.testing.assert_allclose(pa_mpjpe(moved, gt), pa_mpjpe(pred, gt), atol=1e-9)
    # Alignment can only help: PA-MPJPE ≤ MPJPE frame by frame.
    assert np.all(pa_mpjpe(pred, gt) <= mpjpe(pred, gt) + 1e-9)


def test_pa_mpjpe_zero_for_similar_shapes(sequence: tuple[np.ndarray, np.ndarray]) -> None:
    _, gt = sequence
    rotation = Rotation.from_rotvec([1.0, 0.5, -0.2]).as_matrix()
    np.testing.assert_allclose(pa_mpjpe(0.7 * gt @ rotation.T + 1.0, gt), np.zeros(6), atol=1e-9)


def test_pve_no_alignment() -> None:
    # Every vertex shifted by (0.003, 0.004, 0) → 5 mm each; no alignment undoes the shift.
    gt = np.zeros((2, 10, 3))
    pred = gt + np.array([0.003, 0.004, 0.0])
    np.testing.assert_allclose(pve(pred, gt), [5.0, 5.0])


def test_accel_constant_velocity_is_zero() -> None:
    t = np.arange(8.0)[:, None, None]
    joints = np.array([0.1, -0.2, 0.3]) * t + np.ones((1, 4, 3))
    np.testing.assert_allclose(accel(joints), np.zeros(6), atol=1e-9)


def test_accel_of_t_squared_is_two() -> None:
    # x = t² (metres): second difference (t−1)² − 2t² + (t+1)² = 2 m → 2000 mm per frame².
    t = np.arange(5.0)
    joints = np.zeros((5, 3, 3))
    joints[:, :, 0] = (t**2)[:, None]
    values = accel(joints)
    assert values.shape == (3,)
    np.testing.assert_allclose(values, [2000.0] * 3)


def test_accel_error_hand_worked() -> None:
    # gt still; pred jitters on one of two joints: z = 0, 0.01, 0 → second difference
    # 0 − 2·0.01 + 0 = −0.02 m → 20 mm on that joint, 0 on the other → mean 10 mm.
    gt = np.zeros((3, 2, 3))
    pred = gt.copy()
    pred[1, 0, 2] = 0.01
    np.testing.assert_allclose(accel_error(pred, gt), [10.0])
    np.testing.assert_allclose(accel(pred), [10.0])


def test_accel_error_zero_when_motions_match(sequence: tuple[np.ndarray, np.ndarray]) -> None:
    pred, gt = sequence
    # A constant offset and a constant velocity change positions, not accelerations.
    drift = np.array([0.0, 0.0, 0.01]) * np.arange(6)[:, None, None]
    np.testing.assert_allclose(accel_error(gt + 0.5 + drift, gt), np.zeros(4), atol=1e-9)
    assert np.all(accel_error(pred, gt) > 0)


def _frame_with_errors(errors_mm: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """One frame: joints 0, 1 are hips at 0 error; joint 2+k is off by errors_mm[k] along x."""
    gt = np.zeros((1, 2 + len(errors_mm), 3))
    pred = gt.copy()
    pred[0, 2:, 0] = np.array(errors_mm) / 1000.0
    return pred, gt


def test_pck_hand_made_distances() -> None:
    # Errors 0, 0 (hips), 100, 149, 150, 200 mm: strictly under 150 → 4 of 6 = 66.67 %.
    pred, gt = _frame_with_errors([100.0, 149.0, 150.0, 200.0])
    np.testing.assert_allclose(pck(pred, gt, hips=(0, 1)), [400.0 / 6])
    # Under 120 mm: 0, 0, 100 → 3 of 6 = 50 %.
    np.testing.assert_allclose(pck(pred, gt, threshold_mm=120.0, hips=(0, 1)), [50.0])


def test_auc_hand_made_distances() -> None:
    # Thresholds 0, 5, …, 150 (31). Joint errors 0, 0, 12, 1000 mm:
    # error 0 is under 30 thresholds (all but 0); 12 under 28 (15…150); 1000 under none.
    # AUC = (30 + 30 + 28 + 0) / (4 · 31) = 88/124 = 70.97 %.
    pred, gt = _frame_with_errors([12.0, 1000.0])
    np.testing.assert_allclose(auc(pred, gt, hips=(0, 1)), [100.0 * 88 / 124])


def test_perfect_prediction(sequence: tuple[np.ndarray, np.ndarray]) -> None:
    _, gt = sequence
    np.testing.assert_allclose(mpjpe(gt, gt), np.zeros(6))
    np.testing.assert_allclose(pck(gt, gt), np.full(6, 100.0))
    # At threshold 0 nothing is strictly closer, so a perfect AUC is 30/31.
    np.testing.assert_allclose(auc(gt, gt), np.full(6, 100.0 * 30 / 31))


def test_output_shapes(sequence: tuple[np.ndarray, np.ndarray]) -> None:
    pred, gt = sequence
    for metric in (mpjpe, pa_mpjpe, pve, pck, auc):
        assert metric(pred, gt).shape == (6,)
    assert accel(pred).shape == (4,)
    assert accel_error(pred, gt).shape == (4,)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: mpjpe(np.zeros((2, 14, 3)), np.zeros((2, 13, 3))), "differ"),
        (lambda: pa_mpjpe(np.zeros((2, 14)), np.zeros((2, 14))), r"\(N, J, 3\)"),
        (lambda: pve(np.zeros((2, 9, 3)), np.zeros((3, 9, 3))), "differ"),
        (lambda: accel(np.zeros((2, 14, 3))), "at least 3 frame"),
        (lambda: accel_error(np.zeros((2, 14, 3)), np.zeros((2, 14, 3))), "at least 3 frame"),
        (lambda: pck(np.zeros((1, 14, 3)), np.zeros((1, 14, 3)), hips=(2, 14)), "hips"),
        (lambda: auc(np.zeros((0, 14, 3)), np.zeros((0, 14, 3))), "at least 1 frame"),
    ],
)
def test_invalid_input_raises(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
