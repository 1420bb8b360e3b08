"""Square person crops around a bounding box, and the keypoints that follow them (VIBE's crops).

A box ``(cx, cy, w, h)`` becomes a square of side ``crop_scale × max(w, h)`` centred on
``(cx, cy)`` (VIBE makes boxes square and scales them by 1.1), resized to ``crop_size``
pixels by one affine warp whose outside is filled with zeros.

Coordinates: image and crop pixels follow OpenCV (pixel ``i`` is centred on ``i``, so the
crop's edges lie at ``-0.5`` and ``S - 0.5``). Normalised crop coordinates put those edges at
``-1`` and ``+1``: ``u = (x - cx) / (side / 2)``, whatever the crop's size in pixels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# OpenCV's pixel centres lie on integers; a pixel reaches half a pixel either side.
_HALF_PIXEL = 0.5


def square_box(bbox: np.ndarray, crop_scale: float) -> tuple[np.ndarray, float]:
    """The centre ``(2,)`` and side of the square crop of a ``(cx, cy, w, h)`` box."""
    centre = np.asarray(bbox[:2], dtype=np.float64)
    side = float(crop_scale * max(bbox[2], bbox[3]))
    if side <= 0:
        raise ValueError(f"a crop needs a box of positive size, got {bbox}")
    return centre, side


def crop_transform(centre: np.ndarray, side: float, crop_size: int) -> np.ndarray:
    """The ``(2, 3)`` affine map from image pixels to the pixels of the square crop."""
    scale = crop_size / side
    # The square's centre goes to the crop's centre, crop_size / 2 - 0.5 in pixel indices.
    offset = crop_size / 2 - _HALF_PIXEL - scale * centre
    return np.array([[scale, 0.0, offset[0]], [0.0, scale, offset[1]]])


def warp_to_crop(
    image: np.ndarray, transform: np.ndarray, crop_size: int, interpolation: int = cv2.INTER_LINEAR
) -> np.ndarray:
    """Warp an ``(H, W)`` or ``(H, W, C)`` image into the ``(S, S[, C])`` crop; outside is 0."""
    return cv2.warpAffine(
        image,
        transform,
        (crop_size, crop_size),
        flags=interpolation,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def read_rgb(path: str | Path) -> np.ndarray:
    """Read a frame as ``(H, W, 3)`` uint8 RGB."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read the frame image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_gray(path: str | Path) -> np.ndarray:
    """Read a mask as ``(H, W)`` float32 in [0, 1]."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise FileNotFoundError(f"cannot read the mask image {path}")
    return image.astype(np.float32) / np.iinfo(np.uint8).max


def crop_frame(
    img_name: str | Path, centre: np.ndarray, side: float, crop_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Crop a frame image: the ``(S, S, 3)`` uint8 RGB crop and its ``(2, 3)`` transform."""
    transform = crop_transform(centre, side, crop_size)
    return warp_to_crop(read_rgb(img_name), transform, crop_size), transform


def keypoints_to_crop(keypoints: np.ndarray, transform: np.ndarray, crop_size: int) -> np.ndarray:
    """Map ``(J, 3)`` pixel keypoints ``(x, y, confidence)`` into normalised crop coordinates.

    Returns ``(J, 3)`` float32: ``(u, v)`` in [-1, 1] inside the crop, and the confidence,
    set to 0 for keypoints that fall outside the crop.
    """
    pixels = keypoints[:, :2] @ transform[:, :2].T + transform[:, 2]
    normalised = (pixels + _HALF_PIXEL) * (2.0 / crop_size) - 1.0
    inside = np.all(np.abs(normalised) <= 1.0, axis=1)
    confidence = np.where(inside, keypoints[:, 2], 0.0)
    return np.concatenate([normalised, confidence[:, None]], axis=1).astype(np.float32)
