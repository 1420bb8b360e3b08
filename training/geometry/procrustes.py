"""Batched similarity Procrustes alignment (NumPy), the alignment behind PA-MPJPE.

Finds, per frame, the scale ``c``, proper rotation ``R`` (det +1, reflections excluded) and
translation ``t`` minimising ``Σ_j |c R x_j + t − y_j|²`` — Umeyama, "Least-squares
estimation of transformation parameters between two point patterns" (TPAMI 1991), the
alignment of HMR/SPIN/VIBE/MAED's ``compute_similarity_transform``.
"""

from __future__ import annotations

import numpy as np

POINT_DIM = 3


def _check_point_sets(source: np.ndarray, target: np.ndarray) -> None:
    """Raise ValueError unless both are ``(N, J, 3)`` of one shape."""
    if source.ndim != 3 or source.shape[-1] != POINT_DIM:
        raise ValueError(f"source must have shape (N, J, 3), got {source.shape}")
    if source.shape != target.shape:
        raise ValueError(f"source {source.shape} and target {target.shape} differ in shape")


def fit_similarity(
    source: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares similarity transform taking ``source`` onto ``target``, per frame.

    Args:
        source: ``(N, J, 3)``.
        target: ``(N, J, 3)``.

    Returns:
        ``scale (N,)``, ``rotation (N, 3, 3)`` with det +1, ``translation (N, 3)`` such that
        ``scale · source @ rotation.T + translation ≈ target``.

    Raises:
        ValueError: on mismatched shapes, or a frame whose source points all coincide (the
            scale is then undefined).
    """
    _check_point_sets(source, target)
    source_mean = source.mean(axis=1, keepdims=True)
    target_mean = target.mean(axis=1, keepdims=True)
    src = source - source_mean
    tgt = target - target_mean
    source_var = np.sum(src**2, axis=(1, 2))
    if np.any(source_var == 0):
        raise ValueError("a source frame has all its points at one place; scale is undefined")

    # Cross-covariance Σ_j tgt_j src_jᵀ = U S Vᵀ; the best rotation is U D Vᵀ, with D flipping
    # the least singular direction when U Vᵀ would be a reflection (Umeyama's correction).
    cov = np.einsum("nji,njk->nik", tgt, src)
    u, sing, vt = np.linalg.svd(cov)
    # U and Vᵀ are orthogonal, so det(U Vᵀ) is ±1 and its sign never 0.
    correction = np.ones_like(sing)
    correction[:, -1] = np.sign(np.linalg.det(u @ vt))
    rotation = (u * correction[:, None, :]) @ vt
    scale = np.sum(sing * correction, axis=1) / source_var
    translation = target_mean[:, 0] - scale[:, None] * np.einsum(
        "nij,nj->ni", rotation, source_mean[:, 0]
    )
    return scale, rotation, translation


def procrustes_align(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Align ``source`` to ``target`` frame by frame with the best similarity transform.

    Args:
        source: ``(N, J, 3)`` e.g. predicted joints.
        target: ``(N, J, 3)`` e.g. ground-truth joints.

    Returns:
        ``(N, J, 3)``: ``source`` scaled, rotated (no reflection) and translated onto ``target``.
    """
    scale, rotation, translation = fit_similarity(source, target)
    rotated = np.einsum("nik,njk->nji", rotation, source)
    return scale[:, None, None] * rotated + translation[:, None, :]
