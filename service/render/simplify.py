"""Coarser triangle meshes for drawing: vertex clustering (Rossignac and Borrel, 1993) on the
rest pose.

The preview draws each person a few hundred pixels tall at most, where most of a body's
27,000 triangles (the stand-in's) cover less than a pixel, and filling them one by one is the
preview's whole cost. Clustering the rest pose's vertices in a grid keeps one real vertex per
cell, so the coarse faces index the same posed vertices as the full mesh does: they follow
every pose, and nothing is posed twice.
"""

from __future__ import annotations

import numpy as np


def clustered_faces(vertices: np.ndarray, faces: np.ndarray, cells_per_height: int) -> np.ndarray:
    """Faces over a subset of ``vertices``: each vertex replaced by its grid cell's
    representative (the vertex nearest the cell's mean), faces that collapse dropped, and
    faces that coincide kept once (the first, with its winding).

    Args:
        vertices: ``(V, 3)`` rest-pose vertices.
        faces: ``(F, 3)`` vertex indices.
        cells_per_height: the grid's cells along the mesh's tallest extent.

    Returns:
        ``(F', 3)`` int64 indices into ``vertices``, in the order of the faces they come from.
    """
    vertices = np.asarray(vertices, dtype=np.float64)
    extent = float(np.ptp(vertices, axis=0).max())
    cell = extent / cells_per_height if extent > 0 else 1.0
    grid = np.floor((vertices - vertices.min(axis=0)) / cell).astype(np.int64)  # (V, 3)
    _, cluster, counts = np.unique(grid, axis=0, return_inverse=True, return_counts=True)
    cluster = cluster.reshape(-1)  # (V,) the cell of each vertex
    means = np.zeros((len(counts), 3))
    np.add.at(means, cluster, vertices)
    means /= counts[:, None]
    distance = np.linalg.norm(vertices - means[cluster], axis=1)
    by_cell = np.lexsort((distance, cluster))  # each cell's vertices, nearest its mean first
    first = np.ones(len(by_cell), dtype=bool)
    first[1:] = cluster[by_cell[1:]] != cluster[by_cell[:-1]]
    representative = np.empty(len(counts), dtype=np.int64)
    representative[cluster[by_cell[first]]] = by_cell[first]
    mapped = representative[cluster[np.asarray(faces, dtype=np.int64)]]  # (F, 3)
    whole = (
        (mapped[:, 0] != mapped[:, 1])
        & (mapped[:, 1] != mapped[:, 2])
        & (mapped[:, 0] != mapped[:, 2])
    )
    mapped = mapped[whole]
    _, first_of_each = np.unique(np.sort(mapped, axis=1), axis=0, return_index=True)
    return mapped[np.sort(first_of_each)]


class DetailLevels:
    """A mesh's faces at a few levels of detail, the coarsest that a drawing's size allows
    picked for it: its grid cells span at most ``max_cell_px`` pixels on the image, so the
    facets stay under the eye's notice while the triangles to fill shrink with the person."""

    def __init__(
        self,
        rest_vertices: np.ndarray,
        faces: np.ndarray,
        cells_per_height: tuple[int, ...],
        max_cell_px: float,
    ) -> None:
        """Cluster ``rest_vertices`` (``(V, 3)``) at each of ``cells_per_height``."""
        self.extent = float(np.ptp(np.asarray(rest_vertices), axis=0).max())
        self.full = np.asarray(faces)
        self.max_cell_px = max_cell_px
        # Coarsest first, so that the first level fine enough is the one drawn.
        self.levels = [
            (cells, clustered_faces(rest_vertices, faces, cells))
            for cells in sorted(cells_per_height)
        ]

    def faces(self, extent_px: float) -> np.ndarray:
        """The faces to draw the mesh with when its tallest extent spans ``extent_px``
        pixels: the whole mesh when no level is fine enough."""
        for cells, faces in self.levels:
            if extent_px / cells <= self.max_cell_px:
                return faces
        return self.full
