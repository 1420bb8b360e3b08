"""Mesh renderer: pixels land where a pinhole camera puts them, depth order, culling."""

from __future__ import annotations

import numpy as np
import pytest

from service.render import Mesh, PinholeCamera, look_at, render_meshes, to_camera
from tests.support.shapes import UNIT_CUBE_FACES, UNIT_CUBE_VERTICES

WIDTH, HEIGHT = 320, 240
FOCAL = 200.0
CAMERA = PinholeCamera(fx=FOCAL, fy=FOCAL, cx=WIDTH / 2, cy=HEIGHT / 2)
CENTER = (HEIGHT // 2, WIDTH // 2)  # (row, column) of the principal point
RED = (255, 0, 0)
BLUE = (0, 0, 255)
BACKGROUND = 40


def cube(center: tuple[float, float, float], size: float, color: tuple[int, int, int]) -> Mesh:
    """An axis-aligned cube in camera coordinates."""
    vertices = (UNIT_CUBE_VERTICES - 0.5) * size + np.asarray(center)
    return Mesh(vertices=vertices, faces=UNIT_CUBE_FACES, color=color)


@pytest.fixture
def background() -> np.ndarray:
    return np.full((HEIGHT, WIDTH, 3), BACKGROUND, dtype=np.uint8)


def painted(image: np.ndarray) -> np.ndarray:
    """(H, W) mask of pixels that differ from the plain background."""
    return (image != BACKGROUND).any(axis=-1)


def test_cube_covers_its_projected_square(background: np.ndarray) -> None:
    depth, size = 4.0, 1.0
    out = render_meshes(background, [cube((0.0, 0.0, depth), size, RED)], CAMERA)
    # Seen head on, only the near face (z = depth − size/2) is visible: a square.
    half_px = FOCAL * (size / 2) / (depth - size / 2)
    rows, cols = np.nonzero(painted(out))
    assert rows.min() == pytest.approx(CENTER[0] - half_px, abs=1.5)
    assert rows.max() == pytest.approx(CENTER[0] + half_px, abs=1.5)
    assert cols.min() == pytest.approx(CENTER[1] - half_px, abs=1.5)
    assert cols.max() == pytest.approx(CENTER[1] + half_px, abs=1.5)
    # The face looks straight at the camera and is lit: red only, bright.
    r, g, b = out[CENTER]
    assert r > BACKGROUND
    assert g == 0
    assert b == 0


def test_triangle_lands_on_expected_pixels(background: np.ndarray) -> None:
    depth = 2.0
    # Corners at image offsets (0, 0), (+50, 0), (0, +50) px from the principal point; this
    # order faces the camera (normal toward −z).
    step = 50 * depth / FOCAL
    vertices = np.array([[0.0, 0.0, depth], [0.0, step, depth], [step, 0.0, depth]])
    out = render_meshes(background, [Mesh(vertices, np.array([[0, 1, 2]]), RED)], CAMERA)
    row, col = CENTER
    assert painted(out)[row + 10, col + 10]
    assert not painted(out)[row + 40, col + 40]  # beyond the hypotenuse
    assert not painted(out)[row - 5, col + 10]  # above the top edge
    assert painted(out).sum() == pytest.approx(50 * 50 / 2, rel=0.1)


def test_back_faces_are_culled(background: np.ndarray) -> None:
    depth = 2.0
    vertices = np.array([[0.0, 0.0, depth], [0.5, 0.0, depth], [0.0, 0.5, depth]])
    out = render_meshes(background, [Mesh(vertices, np.array([[0, 1, 2]]), RED)], CAMERA)
    np.testing.assert_array_equal(out, background)


@pytest.mark.parametrize("near_first", [True, False])
def test_nearer_mesh_occludes_farther(background: np.ndarray, near_first: bool) -> None:
    near = cube((0.0, 0.0, 3.0), 0.5, RED)
    far = cube((0.2, 0.0, 5.0), 2.0, BLUE)
    meshes = [near, far] if near_first else [far, near]
    out = render_meshes(background, meshes, CAMERA)
    assert out[CENTER][0] > 0
    assert out[CENTER][2] == 0
    assert out[CENTER[0], CENTER[1] + 100][2] > 0  # blue beside it


def test_empty_list_returns_image_unchanged(background: np.ndarray) -> None:
    out = render_meshes(background, [], CAMERA)
    np.testing.assert_array_equal(out, background)
    assert out is not background


def test_input_image_is_not_modified(background: np.ndarray) -> None:
    before = background.copy()
    render_meshes(background, [cube((0.0, 0.0, 3.0), 1.0, RED)], CAMERA)
    np.testing.assert_array_equal(background, before)


def test_geometry_behind_or_outside_the_camera_does_not_crash(background: np.ndarray) -> None:
    behind = cube((0.0, 0.0, -3.0), 1.0, RED)
    straddling = cube((0.0, 0.0, 0.0), 1.0, RED)  # half in front, half behind
    far_off = cube((1e4, -1e4, 2.0), 1.0, RED)
    grazing = cube((5.0, 0.0, 0.02), 0.01, RED)  # projects thousands of pixels off-frame
    out = render_meshes(background, [behind, straddling, far_off, grazing], CAMERA)
    assert out.shape == background.shape
    assert out.dtype == np.uint8


def test_alpha_blends_over_the_image(background: np.ndarray) -> None:
    mesh = cube((0.0, 0.0, 4.0), 1.0, RED)
    opaque = render_meshes(background, [mesh], CAMERA)
    half = render_meshes(background, [mesh], CAMERA, alpha=0.5)
    expected = (opaque[CENTER].astype(float) + BACKGROUND) / 2
    np.testing.assert_allclose(half[CENTER], expected, atol=1)
    assert half[0, 0].tolist() == [BACKGROUND] * 3


def test_faces_turned_from_the_light_are_darker(background: np.ndarray) -> None:
    # A cube turned 45° about the vertical: two side faces seen obliquely, darker than a
    # face seen head on.
    head_on = render_meshes(background, [cube((0.0, 0.0, 4.0), 1.0, RED)], CAMERA)
    angle = np.pi / 4
    turn = np.array(
        [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]]
    )
    turned = cube((0.0, 0.0, 0.0), 1.0, RED)
    turned = Mesh(turned.vertices @ turn.T + [0.0, 0.0, 4.0], turned.faces, RED)
    oblique = render_meshes(background, [turned], CAMERA)
    assert oblique[CENTER[0], CENTER[1] + 20][0] < head_on[CENTER][0]


def test_look_at_puts_target_on_the_optical_axis_with_up_upward() -> None:
    eye, target, up = np.array([3.0, 1.0, 4.0]), np.array([0.0, 1.0, 0.0]), np.array([0, 1, 0])
    rotation, translation = look_at(eye, target, up)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    np.testing.assert_allclose(to_camera(target, rotation, translation), [0, 0, 5], atol=1e-12)
    above = to_camera(target + up, rotation, translation)
    assert above[1] < 0  # image y points down
