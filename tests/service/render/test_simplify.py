"""Levels of detail by vertex clustering: fewer faces over the same vertices, facing the same
way, the coarsest level chosen that a drawing's size allows."""

from __future__ import annotations

import numpy as np
import trimesh

from service.render.simplify import DetailLevels, clustered_faces

SPHERE = trimesh.creation.icosphere(subdivisions=4)  # 2,562 vertices, 5,120 faces, radius 1


def test_clustering_keeps_a_closed_outward_surface_with_fewer_faces() -> None:
    faces = clustered_faces(SPHERE.vertices, SPHERE.faces, cells_per_height=8)
    assert 50 < len(faces) < len(SPHERE.faces) / 10
    assert faces.min() >= 0
    assert faces.max() < len(SPHERE.vertices)
    assert (faces[:, 0] != faces[:, 1]).all()
    assert (faces[:, 1] != faces[:, 2]).all()
    assert len(np.unique(np.sort(faces, axis=1), axis=0)) == len(faces)  # no face twice
    corners = SPHERE.vertices[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    outward = np.einsum("ti,ti->t", normals, corners.mean(axis=1)) > 0
    assert outward.mean() > 0.95  # the winding survives
    coarse = trimesh.Trimesh(SPHERE.vertices, faces, process=False)
    # Its area is close to the sphere's: no hole worth the name (4π for a unit sphere).
    assert abs(coarse.area - SPHERE.area) / SPHERE.area < 0.1


def test_a_mesh_coarser_than_the_grid_keeps_every_face() -> None:
    box = trimesh.creation.box()
    faces = clustered_faces(box.vertices, box.faces, cells_per_height=16)
    assert sorted(map(tuple, faces)) == sorted(map(tuple, box.faces))


def test_the_coarsest_level_fine_enough_is_picked() -> None:
    levels = DetailLevels(SPHERE.vertices, SPHERE.faces, (4, 8, 16), max_cell_px=2.0)
    sizes = [len(levels.faces(extent_px)) for extent_px in (8.0, 16.0, 32.0, 1000.0)]
    assert sizes[0] < sizes[1] < sizes[2] < sizes[3] == len(SPHERE.faces)
    assert len(DetailLevels(SPHERE.vertices, SPHERE.faces, (4,), 0.0).faces(1.0)) == len(
        SPHERE.faces
    )
