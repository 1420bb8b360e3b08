"""Differentiable rendering of the body mesh for the mask loss (SPS-Net Eq. 5)."""

from training.render.silhouette import (
    DEFAULT_SIGMA,
    hard_silhouette,
    project_to_pixels,
    soft_silhouette,
)

__all__ = ["DEFAULT_SIGMA", "hard_silhouette", "project_to_pixels", "soft_silhouette"]
