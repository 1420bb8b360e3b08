"""Cameras: from the crop the network saw to the whole frame, and the body placed in the scene.

Conventions are those of :mod:`training.geometry.camera` (the HMR lineage's), in numpy:

- the crop camera ``cam = (s, tx, ty)`` maps a body-frame point ``(x, y, z)`` (metres) to
  normalised crop coordinates ``u = s · (x + tx)``, ``v = s · (y + ty)``, the crop's edges at
  ±1; a crop coordinate ``u`` lies at frame pixel ``cx + u · side / 2``;
- the frame camera ``orig_cam = (sx, sy, tx', ty')`` (VIBE's) maps the same point to
  ``(sx · (x + tx'), sy · (y + ty'))``, x normalised by ``W / 2`` and y by ``H / 2`` around
  the pixel ``(W / 2, H / 2)``;
- pixels are those of the tracker's boxes (OpenCV's: pixel ``i`` is centred on ``i``).

Weak perspective has no depth. To place each body in the scene, the frame camera is read as a
pinhole of an assumed focal length whose principal point is the frame's centre: a body whose
origin projects as the weak-perspective camera says lies at depth ``2 f / (W · sx)``.
"""

from __future__ import annotations

import math

import numpy as np

# The focal length a video does not state is assumed from its field of view. CLIFF (Li et al.
# 2022, "Carrying Location Information in Full Frames") takes the frame's diagonal in pixels:
# a diagonal field of view of 2 atan(1/2) ≈ 53°, a "normal" lens (43 mm full-frame equivalent),
# whatever the frame's orientation. A phone's main camera is wider (≈ 75° across a 16:9 video):
# its people are ≈ 1.5 times nearer than this puts them. A wrong guess scales every depth by
# the same factor and never changes the 2D overlay.
DEFAULT_DIAGONAL_FOV_DEG = math.degrees(2.0 * math.atan(0.5))


def focal_length_from_fov(width: int, height: int, diagonal_fov_deg: float) -> float:
    """The focal length in pixels of a ``width × height`` frame that sees ``diagonal_fov_deg``
    degrees across its diagonal."""
    half_diagonal = math.hypot(width, height) / 2.0
    return half_diagonal / math.tan(math.radians(diagonal_fov_deg) / 2.0)


def crop_cam_to_orig_cam(cam: np.ndarray, bbox: np.ndarray, width: int, height: int) -> np.ndarray:
    """Crop camera → the same camera over the whole frame (VIBE's ``convert_crop_cam_to_orig_img``).

    Args:
        cam: ``(..., 3)`` ``(s, tx, ty)`` of the crop.
        bbox: ``(..., 3)`` ``(cx, cy, side)``: the square actually cropped, in frame pixels.
        width: the frame's width ``W`` in pixels.
        height: the frame's height ``H`` in pixels.

    Returns:
        ``(..., 4)`` ``orig_cam = (sx, sy, tx', ty')`` with ``sx = s · side / W``,
        ``sy = s · side / H``, ``tx' = (cx − W/2) / (W/2) / sx + tx`` (and alike for y).
    """
    half_w, half_h = width / 2.0, height / 2.0
    sx = cam[..., 0] * bbox[..., 2] / width
    sy = cam[..., 0] * bbox[..., 2] / height
    tx = (bbox[..., 0] - half_w) / half_w / sx + cam[..., 1]
    ty = (bbox[..., 1] - half_h) / half_h / sy + cam[..., 2]
    return np.stack([sx, sy, tx, ty], axis=-1)


def orig_cam_to_crop_cam(
    orig_cam: np.ndarray, bbox: np.ndarray, width: int, height: int
) -> np.ndarray:
    """Inverse of :func:`crop_cam_to_orig_cam`: ``(..., 4)`` orig_cam and ``(..., 3)`` square
    boxes → ``(..., 3)`` crop cameras; ``s`` is read from ``sx``."""
    half_w, half_h = width / 2.0, height / 2.0
    sx, sy = orig_cam[..., 0], orig_cam[..., 1]
    scale = sx * width / bbox[..., 2]
    tx = orig_cam[..., 2] - (bbox[..., 0] - half_w) / half_w / sx
    ty = orig_cam[..., 3] - (bbox[..., 1] - half_h) / half_h / sy
    return np.stack([scale, tx, ty], axis=-1)


def orig_cam_to_translation(orig_cam: np.ndarray, focal_length: float, width: int) -> np.ndarray:
    """The body's translation ``(..., 3)`` in metres in the frame's pinhole camera.

    Args:
        orig_cam: ``(..., 4)`` ``(sx, sy, tx', ty')``.
        focal_length: the frame's focal length in pixels (square pixels).
        width: the frame's width ``W`` in pixels.

    Returns:
        ``(tx', ty', 2 · focal_length / (W · sx))``: a pinhole with the principal point at the
        frame's centre puts the body's origin where the weak-perspective camera does.
    """
    depth = 2.0 * focal_length / (width * orig_cam[..., 0])
    return np.stack([orig_cam[..., 2], orig_cam[..., 3], depth], axis=-1)


def project_to_frame(
    points: np.ndarray, orig_cam: np.ndarray, width: int, height: int
) -> np.ndarray:
    """Project body-frame points into the frame's pixels with its weak-perspective camera.

    Args:
        points: ``(..., J, 3)`` metres.
        orig_cam: ``(..., 4)`` ``(sx, sy, tx', ty')``.
        width: the frame's width ``W`` in pixels.
        height: the frame's height ``H`` in pixels.

    Returns:
        ``(..., J, 2)`` pixels ``(W/2 · (1 + sx (x + tx')), H/2 · (1 + sy (y + ty')))``.
    """
    scale = orig_cam[..., None, 0:2]  # (..., 1, 2)
    shift = orig_cam[..., None, 2:4]
    normalised = scale * (points[..., :2] + shift)  # (..., J, 2) in [-1, 1] inside the frame
    half_size = np.array([width / 2.0, height / 2.0])
    return half_size * (1.0 + normalised)
