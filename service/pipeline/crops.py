"""The crops a bundle's encoder reads, cut from frames as training cut them.

A tracker box ``x1, y1, x2, y2`` becomes a square of side ``crop_scale × max(w, h)`` centred on
the box (VIBE's crops), warped by one affine map to ``image_size`` pixels (bilinear, outside
filled with 0), RGB, normalised as ``(pixel / 255 − mean) / std``. The arithmetic is that of
``training.data.crops`` and ``training.data.video_clips`` (an unaugmented clip), in numpy:
the uint8 warp included, so a crop here equals training's to float rounding.

Pixels follow OpenCV: pixel ``i`` is centred on ``i``, so a crop's edges lie at ``-0.5`` and
``S - 0.5`` of its own pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from service.bundle import InputSpec

_HALF_PIXEL = 0.5  # OpenCV's pixel centres lie on integers; a pixel reaches half a pixel out
_UINT8_MAX = float(np.iinfo(np.uint8).max)


def square_boxes(boxes: np.ndarray, crop_scale: float) -> np.ndarray:
    """``(N, 4)`` boxes ``x1, y1, x2, y2`` → ``(N, 3)`` squares ``cx, cy, side`` that are cropped.

    Raises:
        ValueError: a box without area.
    """
    size = boxes[:, 2:4] - boxes[:, 0:2]  # (N, 2) w, h
    if not (size > 0).all():
        raise ValueError("a crop needs boxes of positive width and height")
    centre = boxes[:, 0:2] + size / 2
    side = crop_scale * size.max(axis=1)
    return np.concatenate([centre, side[:, None]], axis=1).astype(np.float64)


def crop_transform(square: np.ndarray, image_size: int) -> np.ndarray:
    """The ``(2, 3)`` affine map from frame pixels to the pixels of the crop of ``(3,)``
    ``square = (cx, cy, side)``: the square's centre goes to the crop's, ``S / 2 − 0.5``."""
    scale = image_size / square[2]
    offset = image_size / 2 - _HALF_PIXEL - scale * square[:2]
    return np.array([[scale, 0.0, offset[0]], [0.0, scale, offset[1]]])


def cut_crops(image: np.ndarray, squares: np.ndarray, spec: InputSpec) -> np.ndarray:
    """The encoder's input for the people in one frame.

    Args:
        image: ``(H, W, 3)`` uint8 BGR frame.
        squares: ``(K, 3)`` ``cx, cy, side`` (:func:`square_boxes`).
        spec: the bundle's crops.

    Returns:
        ``(K, 3, S, S)`` float32, RGB, normalised.
    """
    size = spec.image_size
    crops = np.stack(  # (K, S, S, 3) uint8 BGR
        [
            cv2.warpAffine(
                image,
                crop_transform(square, size),
                (size, size),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0,
            )
            for square in squares
        ]
    )
    rgb = crops[..., ::-1].astype(np.float32) / _UINT8_MAX
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(((rgb - mean) / std).transpose(0, 3, 1, 2))
