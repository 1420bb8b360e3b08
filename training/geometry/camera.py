"""Weak-perspective cameras of the HMR lineage (HMR, SPIN, VIBE, MAED) and their conversions.

A crop camera ``cam = (s, tx, ty)`` maps a body-frame point ``X = (x, y, z)`` (metres) to
normalised crop coordinates in [−1, 1] (x right, y down, as image rows go)::

    u = s · (x + tx),   v = s · (y + ty)

i.e. the translation is applied *before* the scale (HMR's ``batch_orth_proj``; SPIN and VIBE
keep it), so ``(tx, ty)`` is in metres and ``s`` in crop-half-widths per metre.

The same camera read as a pinhole with focal length ``f`` (pixels) over an image ``W`` pixels
wide, principal point at the centre, sits at depth ``tz = 2f / (W · s)``; SPIN's training
(and MAED's) use ``f = 5000`` on a 224-pixel crop. Every function accepts NumPy arrays or torch
tensors (not mixed) and returns the same kind.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)

# SPIN (Kolotouros et al. 2019, constants.FOCAL_LENGTH and constants.IMG_RES), reused by VIBE
# and MAED: the assumed focal length in pixels of the 224×224 network crop.
FOCAL_LENGTH = 5000.0
CROP_SIZE = 224


def _stack(parts: list[Array], like: Array) -> Array:
    """Stack along a new last axis, in ``like``'s library."""
    if isinstance(like, torch.Tensor):
        return torch.stack(parts, dim=-1)
    return np.stack(parts, axis=-1)


def _check_last_dim(x: Array, size: int, name: str) -> None:
    """Raise ValueError unless ``x`` has at least one dimension and its last is ``size``."""
    if x.ndim < 1 or x.shape[-1] != size:
        raise ValueError(f"{name} must have shape (..., {size}), got {tuple(x.shape)}")


def weak_perspective_project(points: Array, cam: Array) -> Array:
    """Project 3D points with a weak-perspective crop camera.

    Args:
        points: ``(..., J, 3)`` in metres.
        cam: ``(..., 3)`` as ``(s, tx, ty)``.

    Returns:
        ``(..., J, 2)`` normalised crop coordinates, ``s · (xy + t)``.
    """
    _check_last_dim(points, 3, "points")
    _check_last_dim(cam, 3, "cam")
    scale = cam[..., None, 0:1]
    shift = cam[..., None, 1:3]
    return scale * (points[..., :2] + shift)


def cam_to_translation(
    cam: Array, focal_length: float = FOCAL_LENGTH, image_size: float = CROP_SIZE
) -> Array:
    """Translation ``(tx, ty, tz)`` in metres that a pinhole camera puts the body at.

    The pinhole of focal ``focal_length`` (pixels) over ``image_size`` pixels, principal point
    at the centre, reproduces the weak-perspective projection at the body's origin when
    ``tz = 2 · focal_length / (image_size · s)``. Defaults give SPIN/MAED's crop camera.

    Args:
        cam: ``(..., 3)`` as ``(s, tx, ty)``, ``s > 0``.
        focal_length: in pixels of the image the camera normalises.
        image_size: that image's width in pixels (the span [−1, 1] covers).

    Returns:
        ``(..., 3)`` translation in metres.
    """
    _check_last_dim(cam, 3, "cam")
    tz = 2.0 * focal_length / (image_size * cam[..., 0])
    return _stack([cam[..., 1], cam[..., 2], tz], like=cam)


def translation_to_cam(
    translation: Array, focal_length: float = FOCAL_LENGTH, image_size: float = CROP_SIZE
) -> Array:
    """Inverse of :func:`cam_to_translation`: ``(..., 3)`` ``(tx, ty, tz)`` → ``(s, tx, ty)``."""
    _check_last_dim(translation, 3, "translation")
    scale = 2.0 * focal_length / (image_size * translation[..., 2])
    return _stack([scale, translation[..., 0], translation[..., 1]], like=translation)


def perspective_project(
    points: Array,
    cam: Array,
    focal_length: float = FOCAL_LENGTH,
    crop_size: float = CROP_SIZE,
) -> Array:
    """Full-perspective projection of SPIN/MAED's 2D keypoint loss, normalised to [−1, 1].

    The body is translated by :func:`cam_to_translation` and projected with a pinhole of focal
    ``focal_length`` whose principal point is the crop centre; pixel offsets from the centre
    are divided by ``crop_size / 2``. For points at ``z = 0`` it equals
    :func:`weak_perspective_project`.

    Args:
        points: ``(..., J, 3)`` in metres, body frame.
        cam: ``(..., 3)`` as ``(s, tx, ty)``.
        focal_length: pixels.
        crop_size: pixels.

    Returns:
        ``(..., J, 2)`` normalised crop coordinates.
    """
    _check_last_dim(points, 3, "points")
    in_camera = points + cam_to_translation(cam, focal_length, crop_size)[..., None, :]
    pixels_from_centre = focal_length * in_camera[..., :2] / in_camera[..., 2:3]
    return pixels_from_centre / (crop_size / 2.0)


def crop_cam_to_orig_cam(cam: Array, bbox: Array, img_width: float, img_height: float) -> Array:
    """Crop camera → camera over the whole frame (VIBE's ``convert_crop_cam_to_orig_img``).

    The crop is a square of side ``h`` centred at ``(cx, cy)``; a crop coordinate ``u`` lands
    at pixel ``cx + u · h/2``, which the whole frame normalises by ``W/2``. Hence, with x
    normalised by the width and y by the height::

        sx = s · h / W,            tx' = (cx − W/2) / (W/2) / sx + tx
        sy = s · h / H,            ty' = (cy − H/2) / (H/2) / sy + ty

    and the frame projection is ``(sx · (x + tx'), sy · (y + ty'))``. ``h`` must be the side of
    the square actually cropped (any enlargement such as VIBE's 1.1 included).

    Args:
        cam: ``(..., 3)`` as ``(s, tx, ty)``.
        bbox: ``(..., 3)`` as ``(cx, cy, h)`` in frame pixels.
        img_width: frame width ``W`` in pixels.
        img_height: frame height ``H`` in pixels.

    Returns:
        ``(..., 4)`` ``orig_cam = (sx, sy, tx', ty')``.
    """
    _check_last_dim(cam, 3, "cam")
    _check_last_dim(bbox, 3, "bbox")
    half_w, half_h = img_width / 2.0, img_height / 2.0
    side = bbox[..., 2]
    sx = cam[..., 0] * side / img_width
    sy = cam[..., 0] * side / img_height
    tx = (bbox[..., 0] - half_w) / half_w / sx + cam[..., 1]
    ty = (bbox[..., 1] - half_h) / half_h / sy + cam[..., 2]
    return _stack([sx, sy, tx, ty], like=cam)


def orig_cam_to_crop_cam(
    orig_cam: Array, bbox: Array, img_width: float, img_height: float
) -> Array:
    """Inverse of :func:`crop_cam_to_orig_cam`: ``(..., 4)`` orig_cam → ``(..., 3)`` crop cam.

    ``s`` is read from ``sx`` (``sy`` carries the same information as ``sx · W / H``).

    Args:
        orig_cam: ``(..., 4)`` as ``(sx, sy, tx', ty')``.
        bbox: ``(..., 3)`` as ``(cx, cy, h)`` in frame pixels.
        img_width: frame width in pixels.
        img_height: frame height in pixels.

    Returns:
        ``(..., 3)`` as ``(s, tx, ty)``.
    """
    _check_last_dim(orig_cam, 4, "orig_cam")
    _check_last_dim(bbox, 3, "bbox")
    half_w, half_h = img_width / 2.0, img_height / 2.0
    sx, sy = orig_cam[..., 0], orig_cam[..., 1]
    scale = sx * img_width / bbox[..., 2]
    tx = orig_cam[..., 2] - (bbox[..., 0] - half_w) / half_w / sx
    ty = orig_cam[..., 3] - (bbox[..., 1] - half_h) / half_h / sy
    return _stack([scale, tx, ty], like=orig_cam)


def orig_cam_to_translation(orig_cam: Array, focal_length: float, img_width: float) -> Array:
    """Place the body in the frame's camera: ``(..., 4)`` orig_cam → ``(..., 3)`` metres.

    For a pinhole of focal ``focal_length`` pixels (square pixels, principal point at the frame
    centre) the depth is ``2 · focal_length / (W · sx)``; ``(tx', ty')`` carry over unchanged.

    Args:
        orig_cam: ``(..., 4)`` as ``(sx, sy, tx', ty')``.
        focal_length: the frame's focal length in pixels.
        img_width: frame width ``W`` in pixels.

    Returns:
        ``(..., 3)`` translation ``(tx, ty, tz)``.
    """
    _check_last_dim(orig_cam, 4, "orig_cam")
    return cam_to_translation(orig_cam[..., [0, 2, 3]], focal_length, img_width)
