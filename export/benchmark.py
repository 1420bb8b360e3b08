"""Latency of a bundle's graphs on onnxruntime against the same modules in PyTorch eager.

The eager modules are rebuilt from the checkpoint(s) the bundle was exported from (its
provenance names them; their sha256 must match), so both sides compute the same function on
the same inputs. Each measurement alternates the two runtimes call by call, so that a noisy
machine slows both alike, and reports medians; the figure to read is their ratio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import onnxruntime
import torch
from torch import Tensor, nn

from export.bundle import image_encoder
from export.graphs import Graph, body_graph, network_graphs
from service.bundle import Bundle, GraphName, file_sha256
from training.body import load_body_model
from training.train.checkpoint import load_network

DEFAULT_BATCHES = (1, 16)
CPU_ONLY = ["CPUExecutionProvider"]


@dataclass(frozen=True)
class Timing:
    """Median milliseconds of one graph at one batch, on both runtimes."""

    graph: str
    batch: int
    onnxruntime_ms: float
    torch_ms: float

    @property
    def speedup(self) -> float:
        """How many times faster onnxruntime is than PyTorch eager."""
        return self.torch_ms / self.onnxruntime_ms


def eager_graphs(
    bundle: Bundle, checkpoint: Path | None = None, encoder_checkpoint: Path | None = None
) -> dict[GraphName, Graph]:
    """The bundle's graphs (three; two without an encoder) as PyTorch modules, from the
    checkpoints it was made from.

    Raises:
        FileNotFoundError: a checkpoint is not where the provenance (or the caller) says.
        ValueError: a checkpoint's sha256 is not the one the bundle was exported from.
    """
    provenance = bundle.manifest.provenance
    checkpoint = checkpoint or Path(provenance.checkpoint)
    _check_source(checkpoint, provenance.checkpoint_sha256, bundle)
    recipe, network = load_network(checkpoint)
    encoder_path = None
    if provenance.encoder_checkpoint_sha256 is not None:
        encoder_path = encoder_checkpoint or Path(provenance.encoder_checkpoint or "")
        _check_source(encoder_path, provenance.encoder_checkpoint_sha256, bundle)
    encoder = image_encoder(checkpoint, recipe, encoder_path)
    graphs = network_graphs(recipe, network, (encoder.recipe, encoder.module) if encoder else None)
    body = body_graph(load_body_model(bundle.manifest.body.name))
    eager: dict[GraphName, Graph] = {"temporal": graphs.temporal, "body": body}
    # A keypoint family's bundle has no encoder: its temporal graph reads the landmarks.
    return eager if graphs.encoder is None else {"encoder": graphs.encoder, **eager}


def _check_source(path: Path, sha256: str, bundle: Bundle) -> None:
    if not path.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {path}: PyTorch eager needs the checkpoint {bundle.path} was "
            "exported from (pass its path)"
        )
    if file_sha256(path) != sha256:
        raise ValueError(f"{path} is not the checkpoint {bundle.path} was exported from")


def benchmark_bundle(
    bundle: Bundle,
    graphs: dict[GraphName, Graph],
    *,
    batches: tuple[int, ...] = DEFAULT_BATCHES,
    repeats: int = 10,
    threads: int | None = None,
) -> list[Timing]:
    """Time every graph at every batch size on onnxruntime (CPU) and PyTorch eager.

    Inputs are the graphs' example inputs repeated to the batch; one warm-up call each, then
    ``repeats`` alternating calls. Both runtimes get ``threads`` threads (default: PyTorch's).
    """
    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    timings = []
    for name, graph in graphs.items():
        session = onnxruntime.InferenceSession(
            str(bundle.graph_path(name, "fp32")), options, providers=CPU_ONLY
        )
        for batch in batches:
            inputs = {key: _batch_of(value, batch) for key, value in graph.inputs.items()}
            feeds = {key: value.numpy() for key, value in inputs.items()}

            run_onnx = partial(session.run, None, feeds)
            run_torch = partial(_call_eager, graph.module, inputs)
            onnx_ms, torch_ms = _alternate(run_onnx, run_torch, repeats)
            timings.append(Timing(name, batch, onnx_ms, torch_ms))
    return timings


def _call_eager(module: nn.Module, inputs: dict[str, Tensor]) -> None:
    """The module on the inputs in their order (the graph's input names are not its
    arguments' names)."""
    with torch.inference_mode():
        module(*inputs.values())


def _batch_of(example: Tensor, batch: int) -> Tensor:
    """The example input's first row repeated ``batch`` times."""
    return example[:1].expand(batch, *example.shape[1:]).contiguous()


def _alternate(
    first: Callable[[], object], second: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median milliseconds of ``first`` and ``second``, called in turn after a warm-up each."""
    first()
    second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for run, spent in ((first, times[0]), (second, times[1])):
            started = time.perf_counter()
            run()
            spent.append(1000 * (time.perf_counter() - started))
    return statistics.median(times[0]), statistics.median(times[1])
