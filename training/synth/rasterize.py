"""A z-buffer rasteriser for several meshes under one pinhole camera (torch, CPU or GPU).

Every mesh (a person, an occluder) is an *item*; the rasteriser returns per pixel the depth of
the nearest surface, which item and which face it belongs to, and its shade. Because all items
go through one z-buffer, people and occluders hide each other correctly and each item's
visible mask (``raster.item == i``) is exact at pixel centres.

Conventions. Vertices are in the camera frame in metres (OpenCV's: x right, y down, z forward).
``intrinsics`` is the 3×3 matrix ``K`` mapping them to pixel coordinates (column, row) whose
integers are pixel centres, as in OpenCV and :mod:`training.render.silhouette`. A pixel is
covered by a triangle when its centre lies inside or on it. Depth is interpolated as ``1/z``
linearly in the image, which is exact for planar triangles under perspective.

Face–pixel pairs are enumerated with the exact bounding-box pairing of
:mod:`training.render.silhouette` (margin 0), so the cost follows the area the meshes cover.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from training.render.silhouette import face_pixel_pairs

# Faces with a vertex nearer than this (metres) are not drawn: they would cross the camera's
# plane, where perspective division blows up. People and occluders stay metres away.
NEAR_PLANE = 0.05
# Lambert shading: light every lit surface gets whatever its orientation, so that faces turned
# from the light keep some shape instead of going black.
AMBIENT = 0.35
NO_ITEM = -1


class Mesh(NamedTuple):
    """A triangle mesh in the camera frame: ``vertices (V, 3)`` metres, ``faces (F, 3)`` long."""

    vertices: Tensor
    faces: Tensor


class Raster(NamedTuple):
    """Per-pixel buffers of an ``H × W`` image.

    Attributes:
        depth: ``(H, W)`` float, camera-frame z of the nearest surface; ``inf`` where empty.
        item: ``(H, W)`` long, index of the mesh seen there; ``NO_ITEM`` (−1) where empty.
        face: ``(H, W)`` long, index of the face seen there into the meshes' faces
            concatenated in order; −1 where empty.
        shade: ``(H, W)`` float in [0, 1]: Lambert brightness, or 1 for flat shading; 0 where
            empty.
    """

    depth: Tensor
    item: Tensor
    face: Tensor
    shade: Tensor


def _project(vertices: Tensor, intrinsics: Tensor) -> Tensor:
    """Pixel coordinates ``(V, 2)`` (column, row) of camera-frame ``vertices (V, 3)``."""
    homogeneous = vertices @ intrinsics.T
    # vertices behind the near plane only belong to faces that are not drawn; the floor keeps
    # their (discarded) projection finite
    return homogeneous[:, :2] / homogeneous[:, 2:3].clamp(min=NEAR_PLANE)


def _cross(a: Tensor, b: Tensor) -> Tensor:
    """z of the cross product of 2D vectors ``(..., 2)``."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _face_shade(corners: Tensor, light: Tensor | None) -> Tensor:
    """Per-face brightness ``(F,)`` of triangles ``corners (F, 3, 3)`` in the camera frame.

    The normal is turned towards the camera (meshes are seen from either side), then
    ``AMBIENT + (1 − AMBIENT) · max(0, n · −light)`` for a light travelling along ``light``.
    """
    if light is None:
        return corners.new_ones(len(corners))
    normal = torch.linalg.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normal = torch.nn.functional.normalize(normal, dim=-1)
    facing_away = (normal * corners[:, 0]).sum(-1) > 0  # camera at the origin
    normal = torch.where(facing_away[:, None], -normal, normal)
    lit = (normal * -torch.nn.functional.normalize(light, dim=0)).sum(-1).clamp(min=0.0)
    return AMBIENT + (1.0 - AMBIENT) * lit


def rasterize(
    meshes: Sequence[Mesh],
    intrinsics: Tensor,
    size: tuple[int, int],
    light: Tensor | None = None,
) -> Raster:
    """Z-buffer ``meshes`` into an image of ``size`` (H, W).

    Args:
        meshes: items in the camera frame; item ``i`` is ``meshes[i]``.
        intrinsics: ``(3, 3)`` pinhole matrix K (pixel centres at integers).
        size: ``(H, W)`` in pixels.
        light: ``(3,)`` direction the light travels, camera frame, for Lambert shading;
            ``None`` for flat shading.

    Returns:
        The :class:`Raster` buffers. Where two faces are at exactly the same depth the one
        listed last wins, so the result is deterministic.
    """
    height, width = size
    device, dtype = intrinsics.device, intrinsics.dtype
    vertices, faces, items, first = [], [], [], 0
    for index, mesh in enumerate(meshes):
        vertices.append(mesh.vertices.to(dtype))
        faces.append(mesh.faces + first)
        items.append(torch.full((len(mesh.faces),), index, dtype=torch.long, device=device))
        first += len(mesh.vertices)
    pixels_total = height * width
    depth = torch.full((pixels_total,), torch.inf, dtype=dtype, device=device)
    item = torch.full((pixels_total,), NO_ITEM, dtype=torch.long, device=device)
    face_buffer = torch.full_like(item, NO_ITEM)
    shade = torch.zeros(pixels_total, dtype=dtype, device=device)
    if not meshes:
        return Raster(*(b.reshape(height, width) for b in (depth, item, face_buffer, shade)))
    all_vertices = torch.cat(vertices)
    all_faces = torch.cat(faces)
    face_item = torch.cat(items)

    corners = all_vertices[all_faces]  # (F, 3, 3)
    drawable = (corners[..., 2] > NEAR_PLANE).all(dim=1)
    triangles = _project(all_vertices, intrinsics)[all_faces]
    triangles = torch.where(drawable[:, None, None], triangles, torch.nan)
    face, centre, pixel = face_pixel_pairs(triangles, 0.0, size, 0, len(all_faces))

    a, b, c = triangles[face].unbind(dim=1)
    # Edge functions, each computed from its edge's two endpoints alone: a shared edge gives
    # exactly opposite values in its two triangles, so no pixel centre falls through the crack.
    edges = torch.stack(
        [
            _cross(b - centre, c - centre),
            _cross(c - centre, a - centre),
            _cross(a - centre, b - centre),
        ],
        dim=1,
    )
    area = edges.sum(dim=1)  # twice the signed area of the triangle
    inside = (area != 0) & (((edges >= 0).all(dim=1)) | ((edges <= 0).all(dim=1)))
    w0, w1, w2 = (edges / torch.where(area == 0, torch.ones_like(area), area)[:, None]).unbind(1)
    inv_z = 1.0 / corners[face, :, 2]
    pair_depth = 1.0 / (w0 * inv_z[:, 0] + w1 * inv_z[:, 1] + w2 * inv_z[:, 2])
    face, pixel, pair_depth = face[inside], pixel[inside], pair_depth[inside]

    depth = depth.scatter_reduce(0, pixel, pair_depth, reduce="amin")
    nearest = pair_depth == depth[pixel]
    # among the nearest pairs of a pixel keep the last listed one: a deterministic tie-break
    order = torch.arange(len(face), device=device)
    winner = torch.full_like(item, NO_ITEM).scatter_reduce(
        0, pixel[nearest], order[nearest], reduce="amax"
    )
    seen = winner >= 0
    face_buffer[seen] = face[winner[seen]]
    item[seen] = face_item[face_buffer[seen]]
    shade[seen] = _face_shade(corners[face_buffer[seen]], light)
    return Raster(*(b.reshape(height, width) for b in (depth, item, face_buffer, shade)))
