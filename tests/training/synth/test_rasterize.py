"""The z-buffer rasteriser: coverage, depth, occlusion between items, shading."""

from __future__ import annotations

import torch

from training.body import load_body_model
from training.synth.rasterize import AMBIENT, NO_ITEM, Mesh, rasterize

SIZE = (60, 80)  # (H, W)
FOCAL = 100.0
K = torch.tensor([[FOCAL, 0.0, (SIZE[1] - 1) / 2], [0.0, FOCAL, (SIZE[0] - 1) / 2], [0, 0, 1.0]])
QUAD_FACES = torch.tensor([[0, 1, 2], [0, 2, 3]])


def _quad(left: float, top: float, right: float, bottom: float, depth: float) -> Mesh:
    """A quad facing the camera covering the pixel rectangle given (pixel units) at ``depth``."""
    corners = torch.tensor([[left, top], [right, top], [right, bottom], [left, bottom]])
    centre = torch.tensor([(SIZE[1] - 1) / 2, (SIZE[0] - 1) / 2])
    xy = (corners - centre) * depth / FOCAL
    return Mesh(torch.cat([xy, torch.full((4, 1), depth)], dim=1), QUAD_FACES)


def test_a_quad_covers_exactly_the_pixel_centres_inside_it() -> None:
    raster = rasterize([_quad(10.5, 5.5, 30.5, 25.5, 3.0)], K, SIZE)
    expected = torch.zeros(SIZE, dtype=torch.bool)
    expected[6:26, 11:31] = True
    assert torch.equal(raster.item == 0, expected)
    assert torch.all(raster.item[~expected] == NO_ITEM)
    torch.testing.assert_close(raster.depth[expected], torch.full((400,), 3.0))
    assert torch.isinf(raster.depth[~expected]).all()
    assert torch.all(raster.shade[expected] == 1.0)  # flat shading


def test_the_nearer_item_hides_the_farther_whatever_the_order() -> None:
    near = _quad(0.5, 0.5, 40.5, 40.5, 2.0)
    far = _quad(20.5, 20.5, 70.5, 55.5, 4.0)
    for meshes, near_id in (([near, far], 0), ([far, near], 1)):
        raster = rasterize(meshes, K, SIZE)
        assert torch.all(raster.item[1:41, 1:41] == near_id)
        assert torch.all(raster.item[41:56, 41:71] == 1 - near_id)


def test_perspective_correct_depth_of_a_tilted_plane() -> None:
    # a plane z = 2 + x (x right, metres) seen head-on: depth at a pixel follows from its ray
    xs = torch.tensor([-1.0, 1.0])
    corners = torch.tensor(
        [
            [xs[0], -1.0, 2 + xs[0]],
            [xs[1], -1.0, 2 + xs[1]],
            [xs[1], 1.0, 2 + xs[1]],
            [xs[0], 1.0, 2 + xs[0]],
        ]
    )
    raster = rasterize([Mesh(corners, QUAD_FACES)], K, SIZE)
    covered = raster.item == 0
    cols = torch.arange(SIZE[1], dtype=torch.float32).expand(SIZE)
    ray_x = (cols - K[0, 2]) / FOCAL  # x / z along the ray
    expected = 2.0 / (1.0 - ray_x)  # z = 2 + x = 2 + ray_x · z
    torch.testing.assert_close(raster.depth[covered], expected[covered])
    assert covered.sum() > SIZE[0] * SIZE[1] / 4


def test_a_nearer_person_removes_pixels_from_a_farther_one() -> None:
    body = load_body_model("standin")
    vertices = body(torch.zeros(1, 72), torch.zeros(1, 10)).vertices[0]
    in_camera = vertices * torch.tensor([1.0, -1.0, -1.0])  # turn to face the camera, head up
    near = Mesh(in_camera + torch.tensor([0.0, 0.0, 4.0]), body.faces)
    far = Mesh(in_camera + torch.tensor([0.3, 0.0, 5.0]), body.faces)
    alone_near = rasterize([near], K, SIZE).item == 0
    alone_far = rasterize([far], K, SIZE).item == 0
    both = rasterize([far, near], K, SIZE)
    near_mask, far_mask = both.item == 1, both.item == 0
    assert torch.equal(near_mask, alone_near)  # nothing hides the nearer one
    assert torch.equal(far_mask, alone_far & ~alone_near)  # it hides part of the farther one
    assert (alone_far & alone_near).sum() > 20
    assert torch.all(both.depth[near_mask] < 4.5)


def test_lambert_shading_is_brightest_facing_the_light() -> None:
    facing = _quad(0.5, 0.5, 30.5, 30.5, 3.0)
    raster = rasterize([facing], K, SIZE, light=torch.tensor([0.0, 0.0, 1.0]))
    torch.testing.assert_close(raster.shade[raster.item == 0], torch.ones(900))
    raster = rasterize([facing], K, SIZE, light=torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(raster.shade[raster.item == 0], torch.full((900,), AMBIENT))


def test_nothing_to_draw_gives_empty_buffers() -> None:
    raster = rasterize([], K, SIZE)
    assert torch.all(raster.item == NO_ITEM)
    assert torch.isinf(raster.depth).all()
    behind = _quad(10.5, 10.5, 20.5, 20.5, 3.0)
    raster = rasterize([Mesh(behind.vertices * -1.0, behind.faces)], K, SIZE)
    assert torch.all(raster.item == NO_ITEM)
