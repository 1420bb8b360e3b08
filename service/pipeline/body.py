"""The body model on demand: a bundle's ``body.onnx`` run in batches over SMPL parameters.

The pipeline keeps parameters, never vertices: a person-frame's rotations, β and cameras are
about 1.5 KiB, its ``(V, 3)`` float32 vertices 81 KiB (SMPL's 6 890) to 161 KiB (the
stand-in's 13 718), so a video's vertices would grow with its length. Whatever needs vertices
(the mesh files, ``result.npz``, the preview, the gateway serving one frame's mesh) computes
them from ``rotmat`` and ``betas`` when it needs them (the output writers: one frame at a
time, :mod:`service.outputs.posed_frames`), through a :data:`MeshVertices` callable:
:class:`BodyMeshes` on the bundle's graph in the service, or any other body model (tests use
training's, in torch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from service.bundle import NUM_JOINTS

if TYPE_CHECKING:
    from service.fixed_batches import GraphSession

# (N, 24, 3, 3) rotations and (N, 10) β → (N, V, 3) float32 vertices, metres, body frame.
MeshVertices = Callable[[np.ndarray, np.ndarray], np.ndarray]
BODY_INPUTS = ("rotmat", "betas")
VERTICES_OUTPUT, JOINTS_OUTPUT = "vertices", "joints"
# Person-frames one run of the graph takes (the pipeline's joints): 64 × 161 KiB of
# vertices inside the graph, 10 MiB, for the stand-in body.
DEFAULT_BATCH_SIZE = 64


class BodyMeshes:
    """``body.onnx`` over any number of frames, ``batch_size`` of them a run.

    Called as a :data:`MeshVertices`: ``(N, 24, 3, 3)`` rotations and ``(N, 10)`` β →
    ``(N, V, 3)`` float32 vertices. Reusable and torch-free: the pipeline, the output writers
    and the gateway share it.
    """

    def __init__(self, session: GraphSession, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.session = session
        self.batch_size = batch_size

    def __call__(self, rotmat: np.ndarray, betas: np.ndarray) -> np.ndarray:
        """``(N, V, 3)`` float32 vertices, metres, in the body frame."""
        return self.run(VERTICES_OUTPUT, rotmat, betas)

    def joints(
        self,
        rotmat: np.ndarray,
        betas: np.ndarray,
        on_run: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """``(N, 24, 3)`` float32 joints, metres, in the body frame (the vertices are not
        returned, so never held for more than one batch)."""
        return self.run(JOINTS_OUTPUT, rotmat, betas, on_run)

    def rest(self, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rest pose (every rotation the identity) at one ``(10,)`` β: ``(V, 3)`` vertices
        and ``(24, 3)`` joints, float32 metres."""
        rest_pose = np.tile(np.eye(3, dtype=np.float32), (1, NUM_JOINTS, 1, 1))  # (1, 24, 3, 3)
        inputs = dict(zip(BODY_INPUTS, (rest_pose, betas[None].astype(np.float32)), strict=True))
        vertices, joints = self.session.run([VERTICES_OUTPUT, JOINTS_OUTPUT], inputs)
        return vertices[0], joints[0]

    def run(
        self,
        output: str,
        rotmat: np.ndarray,
        betas: np.ndarray,
        on_run: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """One of the graph's outputs for ``N >= 1`` frames, ``batch_size`` a run; ``on_run``
        is called after each run with its frame count."""
        batches = []
        for first in range(0, len(rotmat), self.batch_size):
            rows = slice(first, first + self.batch_size)
            inputs = dict(zip(BODY_INPUTS, (rotmat[rows], betas[rows]), strict=True))
            (batch,) = self.session.run([output], inputs)
            batches.append(batch)
            if on_run is not None:
                on_run(len(batch))
        return batches[0] if len(batches) == 1 else np.concatenate(batches)
