"""Silhouettes of a body mesh under the weak-perspective crop camera, soft and hard.

The soft silhouette is what SPS-Net's mask loss (Eq. 5) compares with the pseudo mask, so it
must be differentiable in the mesh and the camera. It follows the soft rasteriser of SoftRas
(Liu et al., ICCV 2019): each face ``j`` covers pixel ``p`` with probability

    D_j(p) = sigmoid(δ_j(p) · d_j(p)² / σ),

``d_j(p)`` the distance in pixels from the pixel centre to the projected triangle's boundary,
``δ_j(p) = +1`` inside the triangle and ``−1`` outside, ``σ`` (pixels²) the sharpness; the
faces are aggregated as ``S(p) = 1 − Π_j (1 − D_j(p))``. Depth plays no part in a silhouette.

Cost. A dense pixels × faces tensor (12,544 × 27,420 at 112×112 for the stand-in) is far too
big, and nearly all of it is ~0: outside a triangle, ``D_j`` falls below :data:`SOFT_CUTOFF`
once ``d > sqrt(σ · logit(1 − SOFT_CUTOFF))`` (0.3 pixel for the default σ). So each face is
paired only with the pixels of its bounding box widened by that margin, enumerated exactly
(no fixed window), and the products are summed in log space,
``log(1 − S) = −Σ_j softplus(δ d² / σ)``, with ``index_add``. Faces are processed in chunks of
at most :data:`PAIRS_PER_CHUNK` pairs under activation checkpointing: the backward pass
recomputes a chunk instead of storing it, so memory stays bounded by one chunk whatever the
camera's zoom.

The hard silhouette (pixel centres inside any projected triangle) uses the same enumeration
without margin; it is for tests and for drawing masks, not for gradients.

Image convention: the crop camera's normalised coordinates (``u`` right, ``v`` down, both in
[−1, 1] across the crop; see :mod:`training.geometry.camera`) map to pixels so that pixel
``(row, col)`` has its centre at ``u = 2 (col + ½) / W − 1``, ``v = 2 (row + ½) / H − 1``.
A camera with scale ``s ≤ 0`` puts the body behind the pinhole it stands for
(``tz = 2f / (W s)``): such frames, and faces with non-finite vertices, render empty.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from training.geometry.camera import weak_perspective_project

# Default sharpness σ in pixels². A dense mesh (27,420 faces for the stand-in, most under a
# pixel at 56–112 px) puts tens of faces within a pixel of any point of its outline, and the
# aggregation adds up their tails: the 0.5 level of S moves out by about sqrt(σ · ln 2k) for
# k such faces. SoftRas's usual 1e-4 (in [−1, 1] units, ≈ 0.1 px² at 64 px) dilates the
# stand-in's silhouette to IoU 0.74–0.77 at 56 px; 0.01 px² keeps IoU ≥ 0.9 against the hard
# silhouette at 56 px (≥ 0.93 at 112 px) while pixels within ~0.3 px of the outline still get
# a gradient. Pass a larger σ for a wider (blurrier) gradient reach.
DEFAULT_SIGMA = 0.01
# Below this coverage a face's contribution to a pixel is dropped (the culling margin).
SOFT_CUTOFF = 1e-4
# Face-pixel pairs evaluated at once: bounds the memory of one chunk (~40 bytes a pair in the
# forward pass, a few times that while recomputing it for the gradient).
PAIRS_PER_CHUNK = 1 << 21
# Smallest squared edge length divided by, so that degenerate (edge-on) faces stay finite.
_EDGE_EPS = 1e-12


def _image_size(size: int | tuple[int, int]) -> tuple[int, int]:
    height, width = (size, size) if isinstance(size, int) else size
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {size}")
    return height, width


def project_to_pixels(vertices: Tensor, cam: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Pixel coordinates ``(B, V, 2)`` as (column, row) of ``vertices (B, V, 3)`` under
    ``cam (B, 3)`` = (s, tx, ty) in a crop of ``size`` (H, W); pixel centres are integers."""
    height, width = _image_size(size)
    uv = weak_perspective_project(vertices, cam)
    half = uv.new_tensor([width / 2.0, height / 2.0])
    return (uv + 1.0) * half - 0.5


def _face_triangles(vertices: Tensor, faces: Tensor, cam: Tensor, size: tuple[int, int]) -> Tensor:
    """Projected triangles ``(B·F, 3, 2)``; faces that cannot be drawn are set to NaN."""
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must be (B, V, 3), got {tuple(vertices.shape)}")
    if cam.shape != (vertices.shape[0], 3):
        raise ValueError(f"cam must be (B, 3) = (s, tx, ty), got {tuple(cam.shape)}")
    triangles = project_to_pixels(vertices, cam, size)[:, faces]  # (B, F, 3, 2)
    in_front = (cam[:, 0] > 0)[:, None, None, None]
    triangles = torch.where(in_front, triangles, torch.full_like(triangles, math.nan))
    return triangles.reshape(-1, 3, 2)


def _pixel_ranges(
    triangles: Tensor, margin: float, size: tuple[int, int]
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per face, the first column and row and the number of columns and rows of pixels whose
    centres lie within ``margin`` of its bounding box, clipped to the crop (0 when outside or
    not finite). Computed without gradient: it only decides which pairs are evaluated."""
    height, width = size
    with torch.no_grad():
        finite = torch.isfinite(triangles).all(dim=(1, 2))
        safe = torch.where(finite[:, None, None], triangles, torch.zeros_like(triangles))
        low = torch.ceil(safe.amin(dim=1) - margin)
        high = torch.floor(safe.amax(dim=1) + margin)
        limit = safe.new_tensor([width - 1, height - 1])
        low = low.clamp(min=0).minimum(limit + 1)
        high = high.minimum(limit)
        count = (high - low + 1).clamp(min=0) * finite[:, None]
        return low[:, 0].long(), low[:, 1].long(), count[:, 0].long(), count[:, 1].long()


def face_pixel_pairs(
    triangles: Tensor, margin: float, size: tuple[int, int], first_face: int, faces_per_item: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Enumerate the (face, pixel) pairs of a chunk of faces.

    Returns:
        ``face (N,)`` index into ``triangles``; ``centre (N, 2)`` the pixel centre (column,
        row); ``pixel (N,)`` the flat index into the batch's ``B·H·W`` pixels.
    """
    height, width = size
    col0, row0, cols, rows = _pixel_ranges(triangles, margin, size)
    per_face = cols * rows
    face = torch.repeat_interleave(torch.arange(len(triangles), device=triangles.device), per_face)
    start = torch.cumsum(per_face, 0) - per_face
    offset = torch.arange(len(face), device=triangles.device) - start[face]
    col = col0[face] + offset % cols[face]
    row = row0[face] + torch.div(offset, cols[face], rounding_mode="floor")
    item = torch.div(face + first_face, faces_per_item, rounding_mode="floor")
    pixel = (item * height + row) * width + col
    centre = torch.stack([col, row], dim=-1).to(triangles.dtype)
    return face, centre, pixel


def _signed_squared_distance(tri: Tensor, point: Tensor) -> Tensor:
    """``δ · d²``: squared distance from ``point (N, 2)`` to the boundary of ``tri (N, 3, 2)``,
    positive inside the triangle (either winding), negative outside."""
    start = tri
    edge = torch.roll(tri, shifts=-1, dims=1) - tri  # a→b, b→c, c→a
    to_point = point[:, None, :] - start
    along = (to_point * edge).sum(-1) / (edge * edge).sum(-1).clamp(min=_EDGE_EPS)
    nearest = start + along.clamp(0.0, 1.0)[..., None] * edge
    squared = (point[:, None, :] - nearest).square().sum(-1).amin(dim=1)
    side = edge[..., 0] * to_point[..., 1] - edge[..., 1] * to_point[..., 0]  # (N, 3)
    inside = ((side >= 0).all(dim=1) | (side <= 0).all(dim=1)) & (side != 0).any(dim=1)
    return torch.where(inside, squared, -squared)


def _chunks(triangles: Tensor, margin: float, size: tuple[int, int]) -> list[tuple[int, int]]:
    """Split the faces into runs of consecutive faces of at most ~PAIRS_PER_CHUNK pairs."""
    _, _, cols, rows = _pixel_ranges(triangles, margin, size)
    ends = torch.cumsum(cols * rows, 0)
    total = int(ends[-1]) if len(ends) else 0
    chunks = max(total - 1, 0) // PAIRS_PER_CHUNK + 1
    cuts = torch.arange(1, chunks, device=ends.device) * PAIRS_PER_CHUNK
    inner = torch.searchsorted(ends, cuts, right=True).unique().tolist()
    bounds = [0, *(c for c in inner if 0 < c < len(triangles)), len(triangles)]
    return list(itertools.pairwise(bounds))


def _accumulate(
    triangles: Tensor,
    batch: int,
    size: tuple[int, int],
    faces_per_item: int,
    margin: float,
    per_pair: Callable[[Tensor, Tensor], Tensor],
) -> Tensor:
    """``Σ_faces per_pair(triangle, centre)`` per pixel, flat ``(B·H·W,)``, chunk by chunk
    (each chunk checkpointed when a gradient is needed)."""
    height, width = size
    total = triangles.new_zeros(batch * height * width)
    for first, last in _chunks(triangles, margin, size):

        def chunk(tri: Tensor, first: int = first) -> Tensor:
            face, centre, pixel = face_pixel_pairs(tri, margin, size, first, faces_per_item)
            values = per_pair(tri[face], centre)
            return tri.new_zeros(batch * height * width).index_add(0, pixel, values)

        piece = triangles[first:last]
        if torch.is_grad_enabled() and piece.requires_grad:
            total = total + checkpoint(chunk, piece, use_reentrant=False)
        else:
            total = total + chunk(piece)
    return total


def soft_silhouette(
    vertices: Tensor,
    faces: Tensor,
    cam: Tensor,
    size: int | tuple[int, int],
    sigma: float = DEFAULT_SIGMA,
) -> Tensor:
    """Differentiable silhouette (SoftRas aggregation) of a mesh in the crop camera.

    Args:
        vertices: ``(B, V, 3)`` in metres, body frame.
        faces: ``(F, 3)`` long.
        cam: ``(B, 3)`` weak-perspective ``(s, tx, ty)``; frames with ``s ≤ 0`` render empty.
        size: crop side ``H = W`` or ``(H, W)`` in pixels.
        sigma: sharpness σ in pixels² (smaller is sharper).

    Returns:
        ``(B, H, W)`` coverage probabilities in [0, 1], differentiable in vertices and cam.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    height, width = _image_size(size)
    triangles = _face_triangles(vertices, faces, cam, (height, width))
    margin = math.sqrt(sigma * math.log((1.0 - SOFT_CUTOFF) / SOFT_CUTOFF))

    def minus_log_uncovered(tri: Tensor, centre: Tensor) -> Tensor:
        # −log(1 − sigmoid(x)) = softplus(x): the product over faces becomes a stable sum.
        return torch.nn.functional.softplus(_signed_squared_distance(tri, centre) / sigma)

    total = _accumulate(
        triangles, len(vertices), (height, width), len(faces), margin, minus_log_uncovered
    )
    return (1.0 - torch.exp(-total)).reshape(-1, height, width)


def hard_silhouette(
    vertices: Tensor, faces: Tensor, cam: Tensor, size: int | tuple[int, int]
) -> Tensor:
    """Binary silhouette: pixels whose centre lies inside (or on) a projected triangle.

    Same arguments as :func:`soft_silhouette`; not differentiable. Returns ``(B, H, W)`` bool.
    """
    height, width = _image_size(size)
    with torch.no_grad():
        triangles = _face_triangles(vertices, faces, cam, (height, width))

        def covered(tri: Tensor, centre: Tensor) -> Tensor:
            return (_signed_squared_distance(tri, centre) >= 0).to(tri.dtype)

        total = _accumulate(triangles, len(vertices), (height, width), len(faces), 0.0, covered)
    return (total > 0).reshape(-1, height, width)
