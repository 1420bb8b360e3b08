"""Skeleton overlay: visible points and the bones between them, nothing else."""

from __future__ import annotations

import numpy as np

from service.render import draw_skeleton

HEIGHT, WIDTH = 60, 80
BACKGROUND = 50
COLOR = (10, 200, 30)
RADIUS = 3.0
LINE_WIDTH = 2
# Anti-aliasing spreads a shape over the pixels it touches: one more around it.
AA_MARGIN = 1.5
POINTS = np.array([[10.0, 10.0], [50.0, 10.0], [10.0, 45.0], [60.0, 40.0]])
VISIBLE = np.array([True, True, True, False])
BONES = ((0, 1), (0, 3))  # one between visible points, one to the hidden point


def pixel_centres() -> np.ndarray:
    """``(H, W, 2)``: every pixel's ``x, y``."""
    rows, columns = np.mgrid[:HEIGHT, :WIDTH]
    return np.stack([columns, rows], axis=-1).astype(float)


def distances_to_segment(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """``(H, W)`` distance of every pixel centre from the segment ``start``–``end``."""
    pixels = pixel_centres()
    along = end - start
    t = np.clip((pixels - start) @ along / (along @ along), 0.0, 1.0)
    return np.linalg.norm(pixels - (start + t[..., None] * along), axis=-1)


def drawn() -> tuple[np.ndarray, np.ndarray]:
    background = np.full((HEIGHT, WIDTH, 3), BACKGROUND, dtype=np.uint8)
    image = draw_skeleton(
        background, POINTS, VISIBLE, BONES, COLOR, radius=RADIUS, line_width=LINE_WIDTH
    )
    return background, image


def test_visible_points_and_their_bone_are_drawn_in_the_colour() -> None:
    _, image = drawn()
    for x, y in POINTS[VISIBLE].astype(int):
        np.testing.assert_array_equal(image[y, x], COLOR)
    middle = (POINTS[0] + POINTS[1]) / 2
    np.testing.assert_array_equal(image[int(middle[1]), int(middle[0])], COLOR)


def test_nothing_else_is_drawn() -> None:
    """Neither the hidden point nor its bone, nor any pixel away from the drawn shapes."""
    background, image = drawn()
    near = np.zeros((HEIGHT, WIDTH), dtype=bool)
    for point in POINTS[VISIBLE]:
        near |= np.linalg.norm(pixel_centres() - point, axis=-1) <= RADIUS + AA_MARGIN
    near |= distances_to_segment(POINTS[0], POINTS[1]) <= LINE_WIDTH / 2 + AA_MARGIN
    changed = (image != background).any(axis=-1)
    assert changed.any()
    assert not (changed & ~near).any()
    x, y = POINTS[3].astype(int)
    np.testing.assert_array_equal(image[y, x], background[y, x])


def test_the_image_given_is_left_untouched() -> None:
    background, _ = drawn()
    assert (background == BACKGROUND).all()


def test_points_far_outside_or_not_finite_are_harmless() -> None:
    points = np.array([[1e12, -1e12], [np.nan, 5.0], [20.0, 20.0]])
    background = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    image = draw_skeleton(
        background, points, np.ones(3, dtype=bool), ((0, 2), (1, 2)), COLOR,
        radius=RADIUS, line_width=LINE_WIDTH,
    )  # fmt: skip
    np.testing.assert_array_equal(image[20, 20], COLOR)
    assert not image[:, :5].any()  # no bone to the point that is not a number
