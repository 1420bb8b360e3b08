"""The papers' evaluation metrics, per frame, NumPy in and NumPy out.

Every function takes a sequence of ``N`` frames of ``J`` points in **metres**, ``(N, J, 3)``,
and returns one value per frame — millimetres for the errors, percent for PCK and AUC — so the
figure a paper reports is the mean over all frames of the test set.

Definitions and where they come from:

- **MPJPE** — mean Euclidean joint error after aligning the pelvises, the pelvis being the
  mean of the two hips. This is the protocol of VIBE (Kocabas et al., CVPR 2020) and MAED
  (Wan et al., ICCV 2021) on 3DPW, whose 14 evaluation joints (from an H36M joint regressor)
  follow the LSP order with the hips at indices 2 and 3 — the default here. Other joint sets
  (e.g. MPI-INF-3DHP's 17) pass their own ``hips``.
- **PA-MPJPE** — MPJPE after aligning each predicted frame to the ground truth by the best
  similarity transform (Procrustes: scale, rotation, translation), H36M's "protocol 2" as
  VIBE, MAED and SPS-Net report it.
- **PVE** — mean Euclidean error over mesh vertices as given, no alignment (VIBE's ``pve`` on
  3DPW's SMPL meshes).
- **ACCEL** — mean over joints of the norm of the *predicted* joints' second difference
  ``x[t-1] − 2x[t] + x[t+1]``: the "ACCEL" column of VIBE and MAED. VIBE and MAED compute it on
  pelvis-centred joints; pass pelvis-centred joints to reproduce their numbers.
- **ACCEL error** — mean over joints of the norm of (predicted − true) second differences,
  VIBE's ``accel_err``.
- **PCK / AUC** — MPI-INF-3DHP's 3D PCK (Mehta et al., 3DV 2017): percent of joints, after
  pelvis alignment, strictly closer than 150 mm (strict, as the dataset's evaluation script);
  AUC averages PCK over the thresholds 0, 5, …, 150 mm.

Acceleration values are in **mm per frame²**, with no frame-rate scaling, as the papers report
them; they are only comparable between sequences of the same frame rate.
"""

from __future__ import annotations

import numpy as np

from training.geometry.procrustes import procrustes_align

M_TO_MM = 1000.0
PERCENT = 100.0

# Hip indices in the 14-joint LSP order used for 3DPW/H36M evaluation (right hip 2, left hip 3).
LSP14_HIPS: tuple[int, int] = (2, 3)

# MPI-INF-3DHP's PCK threshold and the AUC threshold grid (Mehta et al. 2017).
PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLD_STEP_MM = 5.0
AUC_THRESHOLDS_MM = np.arange(0.0, PCK_THRESHOLD_MM + AUC_THRESHOLD_STEP_MM, AUC_THRESHOLD_STEP_MM)

# A second difference needs three consecutive frames.
MIN_FRAMES_FOR_ACCEL = 3


def _check_sequence(x: np.ndarray, name: str, min_frames: int = 1) -> None:
    """Raise ValueError unless ``x`` is ``(N, J, 3)`` with ``N >= min_frames`` and ``J >= 1``."""
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (N, J, 3), got {x.shape}")
    if x.shape[0] < min_frames:
        raise ValueError(f"{name} needs at least {min_frames} frame(s), got {x.shape[0]}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} has no joints")


def _check_pair(pred: np.ndarray, gt: np.ndarray, min_frames: int = 1) -> None:
    """Validate ``pred`` and ``gt`` as sequences of one shape."""
    _check_sequence(pred, "pred", min_frames)
    _check_sequence(gt, "gt", min_frames)
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} differ in shape")


def _centre_on_pelvis(joints: np.ndarray, hips: tuple[int, int]) -> np.ndarray:
    """Subtract the mid-hip point of each frame: ``(N, J, 3)`` → ``(N, J, 3)``."""
    num_joints = joints.shape[1]
    if len(hips) != 2 or not all(0 <= h < num_joints for h in hips):
        raise ValueError(f"hips must be two joint indices in [0, {num_joints}), got {hips}")
    pelvis = joints[:, list(hips)].mean(axis=1, keepdims=True)
    return joints - pelvis


def _joint_errors_mm(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-joint Euclidean distance in mm: ``(N, J, 3)`` × 2 → ``(N, J)``."""
    return np.linalg.norm(pred - gt, axis=-1) * M_TO_MM


def _pelvis_aligned_errors_mm(
    pred: np.ndarray, gt: np.ndarray, hips: tuple[int, int]
) -> np.ndarray:
    """Per-joint distance in mm after aligning pelvises: ``(N, J)``."""
    _check_pair(pred, gt)
    return _joint_errors_mm(_centre_on_pelvis(pred, hips), _centre_on_pelvis(gt, hips))


def _second_difference(x: np.ndarray) -> np.ndarray:
    """``x[t-1] − 2 x[t] + x[t+1]``: ``(N, J, 3)`` → ``(N-2, J, 3)``."""
    return x[:-2] - 2.0 * x[1:-1] + x[2:]


def mpjpe(pred: np.ndarray, gt: np.ndarray, hips: tuple[int, int] = LSP14_HIPS) -> np.ndarray:
    """Mean per-joint position error after pelvis alignment.

    Args:
        pred: ``(N, J, 3)`` metres.
        gt: ``(N, J, 3)`` metres.
        hips: indices of the two hips whose mean is the pelvis.

    Returns:
        ``(N,)`` millimetres.
    """
    return _pelvis_aligned_errors_mm(pred, gt, hips).mean(axis=1)


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Mean per-joint position error after per-frame similarity (Procrustes) alignment.

    Args:
        pred: ``(N, J, 3)`` metres.
        gt: ``(N, J, 3)`` metres.

    Returns:
        ``(N,)`` millimetres.
    """
    _check_pair(pred, gt)
    return _joint_errors_mm(procrustes_align(pred, gt), gt).mean(axis=1)


def pve(pred_verts: np.ndarray, gt_verts: np.ndarray) -> np.ndarray:
    """Per-vertex error of the meshes as given (no alignment).

    Args:
        pred_verts: ``(N, V, 3)`` metres.
        gt_verts: ``(N, V, 3)`` metres.

    Returns:
        ``(N,)`` millimetres.
    """
    _check_sequence(pred_verts, "pred_verts")
    _check_sequence(gt_verts, "gt_verts")
    if pred_verts.shape != gt_verts.shape:
        raise ValueError(f"pred_verts {pred_verts.shape} and gt_verts {gt_verts.shape} differ")
    return _joint_errors_mm(pred_verts, gt_verts).mean(axis=1)


def accel(pred: np.ndarray) -> np.ndarray:
    """Magnitude of the predicted joints' acceleration (VIBE/MAED "ACCEL").

    Args:
        pred: ``(N, J, 3)`` metres, ``N >= 3`` consecutive frames.

    Returns:
        ``(N-2,)`` mm per frame², one per interior frame.
    """
    _check_sequence(pred, "pred", MIN_FRAMES_FOR_ACCEL)
    return (np.linalg.norm(_second_difference(pred), axis=-1) * M_TO_MM).mean(axis=1)


def accel_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Acceleration error against the ground truth (VIBE's ``accel_err``).

    Args:
        pred: ``(N, J, 3)`` metres, ``N >= 3`` consecutive frames.
        gt: ``(N, J, 3)`` metres.

    Returns:
        ``(N-2,)`` mm per frame².
    """
    _check_pair(pred, gt, MIN_FRAMES_FOR_ACCEL)
    return _joint_errors_mm(_second_difference(pred), _second_difference(gt)).mean(axis=1)


def pck(
    pred: np.ndarray,
    gt: np.ndarray,
    threshold_mm: float = PCK_THRESHOLD_MM,
    hips: tuple[int, int] = LSP14_HIPS,
) -> np.ndarray:
    """3D percentage of correct keypoints after pelvis alignment.

    Args:
        pred: ``(N, J, 3)`` metres.
        gt: ``(N, J, 3)`` metres.
        threshold_mm: a joint is correct when strictly closer than this.
        hips: indices of the two hips whose mean is the pelvis.

    Returns:
        ``(N,)`` percent.
    """
    errors = _pelvis_aligned_errors_mm(pred, gt, hips)
    return (errors < threshold_mm).mean(axis=1) * PERCENT


def auc(pred: np.ndarray, gt: np.ndarray, hips: tuple[int, int] = LSP14_HIPS) -> np.ndarray:
    """Area under the PCK curve: PCK averaged over thresholds 0, 5, …, 150 mm.

    Args:
        pred: ``(N, J, 3)`` metres.
        gt: ``(N, J, 3)`` metres.
        hips: indices of the two hips whose mean is the pelvis.

    Returns:
        ``(N,)`` percent.
    """
    errors = _pelvis_aligned_errors_mm(pred, gt, hips)
    correct = errors[:, :, None] < AUC_THRESHOLDS_MM  # (N, J, thresholds)
    return correct.mean(axis=(1, 2)) * PERCENT
