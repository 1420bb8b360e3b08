"""Keypoints and the bones between them drawn over an image, in OpenCV.

Points are drawn as filled discs and bones as lines, anti-aliased, at sub-pixel positions
(the fixed-point coordinates :mod:`.mesh_renderer` fills triangles with). Only visible points
are drawn, and a bone only when both its ends are: a bone to a point the model did not see
would point somewhere arbitrary.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from service.render.mesh_renderer import MAX_PIXEL_COORD, SUBPIXEL_BITS

_SUBPIXEL_SCALE = 1 << SUBPIXEL_BITS


def draw_skeleton(
    image: np.ndarray,
    points: np.ndarray,
    visible: np.ndarray,
    bones: Sequence[tuple[int, int]],
    color: tuple[int, int, int],
    *,
    radius: float,
    line_width: int,
) -> np.ndarray:
    """Draw a skeleton's visible points, and the bones between two visible points, over an
    image; bones first, so the points sit on top of them.

    Args:
        image: ``(H, W, 3)`` uint8, colours in any channel order.
        points: ``(K, 2)`` pixel coordinates ``x, y``.
        visible: ``(K,)`` bool: which points to draw (non-finite points never are).
        bones: pairs of indices into ``points``.
        color: the colour of points and bones, in ``image``'s channel order.
        radius: the points' radius, pixels.
        line_width: the bones' width, pixels.

    Returns:
        ``(H, W, 3)`` uint8 new image; ``image`` itself is left untouched.
    """
    xy = np.asarray(points, dtype=np.float64)
    shown = np.asarray(visible, dtype=bool) & np.isfinite(xy).all(axis=-1)
    # Clamped far beyond any image so that the fixed-point conversion cannot overflow.
    clamped = np.clip(np.nan_to_num(xy), -MAX_PIXEL_COORD, MAX_PIXEL_COORD)
    fixed_point = [
        tuple(point) for point in np.round(clamped * _SUBPIXEL_SCALE).astype(int).tolist()
    ]
    canvas = image.copy()
    for start, end in bones:
        if shown[start] and shown[end]:
            cv2.line(
                canvas,
                fixed_point[start],
                fixed_point[end],
                color,
                line_width,
                cv2.LINE_AA,
                SUBPIXEL_BITS,
            )
    fixed_radius = round(radius * _SUBPIXEL_SCALE)
    for index in np.flatnonzero(shown).tolist():
        cv2.circle(
            canvas, fixed_point[index], fixed_radius, color, cv2.FILLED, cv2.LINE_AA, SUBPIXEL_BITS
        )
    return canvas
