"""Parity of exported graphs: PyTorch against onnxruntime's CPU, on the same random inputs.

The inputs follow the data each graph sees in service: random normalised crops for the
encoder, the (PyTorch) encoder's features of those crops for the temporal graph (random
landmarks for a keypoint family's, which has no encoder), random poses and shapes for the
body. The batch differs from the one the graphs were traced with, so a size the tracer baked
into a graph shows as a failure here rather than in service.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from torch import Tensor

from export.graphs import EXAMPLE_BATCH, RGB, Graph, NetworkGraphs, example_landmarks
from service.bundle import GraphFiles, InputSpec
from training.body import BodyModel
from training.body.model import NUM_BETAS
from training.body.skeleton import NUM_JOINTS
from training.geometry import axis_angle_to_rotmat

PARITY_BATCH = EXAMPLE_BATCH + 1
PARITY_SEED = 0
# Spread of the random body inputs: joint angles of ~30°, shapes of one standard deviation.
POSE_STD_RAD = 0.5
BETAS_STD = 1.0
CPU_ONLY = ["CPUExecutionProvider"]


@dataclass(frozen=True)
class Case:
    """Inputs of one graph by name, and what PyTorch outputs for them, by output name."""

    inputs: dict[str, Tensor]
    expected: dict[str, Tensor]


def parity_cases(graphs: NetworkGraphs, body: BodyModel) -> dict[str, Case]:
    """One case per graph ("encoder" when there is one, "temporal", "body"); the body's
    reference is the body model itself (smplx's skinning), not the graph's re-implementation
    of it."""
    generator = torch.Generator().manual_seed(PARITY_SEED)
    cases: dict[str, Case] = {}
    if graphs.encoder is None:
        windows = example_landmarks(PARITY_BATCH, graphs.window, generator)  # (B, T, 33, 6)
    else:
        cases["encoder"], windows = _encoder_case(graphs.encoder, graphs, generator)
    rotmat = axis_angle_to_rotmat(
        POSE_STD_RAD * torch.randn(PARITY_BATCH, NUM_JOINTS, 3, generator=generator)
    )
    betas = BETAS_STD * torch.randn(PARITY_BATCH, NUM_BETAS, generator=generator)
    with torch.no_grad():
        temporal = graphs.temporal.module(windows)
        posed = body(rotmat, betas)
    cases["temporal"] = _case(graphs.temporal.outputs, {"features": windows}, temporal)
    cases["body"] = _case(("vertices", "joints"), {"rotmat": rotmat, "betas": betas}, posed)
    return cases


def _encoder_case(
    encoder: Graph, graphs: NetworkGraphs, generator: torch.Generator
) -> tuple[Case, Tensor]:
    """The encoder's case on random crops, and windows ``(B, T, *feature_shape)`` of their
    features for the temporal graph."""
    if not isinstance(graphs.input, InputSpec):
        raise TypeError("an encoder reads crops: its network's input is an image")
    size = graphs.input.image_size
    crops = torch.randn(PARITY_BATCH, RGB, size, size, generator=generator)
    with torch.no_grad():
        features = encoder.module(crops)  # (B, *feature_shape)
    # Window b holds the crops' features from b on, cyclically: (B, T, *feature_shape).
    frames = torch.arange(PARITY_BATCH)[:, None] + torch.arange(graphs.window)[None]
    windows = features[frames % PARITY_BATCH]
    return _case(encoder.outputs, {"crops": crops}, (features,)), windows


def _case(names: tuple[str, ...], inputs: dict[str, Tensor], outputs: tuple[Tensor, ...]) -> Case:
    return Case(inputs, dict(zip(names, outputs, strict=True)))


def max_errors(path: Path, case: Case, prefix: str) -> dict[str, float]:
    """Max |Δ| of each output of the ONNX file at ``path`` on onnxruntime's CPU against
    ``case.expected``, keyed ``"{prefix}.{output}"``."""
    session = onnxruntime.InferenceSession(str(path), providers=CPU_ONLY)
    feeds = {name: value.numpy() for name, value in case.inputs.items()}
    outputs = session.run(list(case.expected), feeds)
    return {
        f"{prefix}.{name}": float(np.abs(got - expected.numpy()).max())
        for (name, expected), got in zip(case.expected.items(), outputs, strict=True)
    }


def bundle_errors(cases: dict[str, Case], folder: Path, files: GraphFiles) -> dict[str, float]:
    """:func:`max_errors` of every graph of one precision, its files in ``folder``."""
    errors: dict[str, float] = {}
    for graph, case in cases.items():
        errors |= max_errors(folder / getattr(files, graph), case, graph)
    return errors
