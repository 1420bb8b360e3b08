"""``meshcast bench graphs``: each graph of a bundle alone on onnxruntime, at several batch
sizes, on the device a worker would use: the first run at each size (on a GPU, what
:mod:`service.fixed_batches` is for), then the median run with the inputs and outputs in host
memory (``run``) and with both bound in the device's memory (I/O binding)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from service.bundle import (
    CUDA_PROVIDER,
    WINDOW_DIM,
    Bundle,
    FrontendGraph,
    GraphName,
    Precision,
)
from service.fixed_batches import GraphSession, concrete_shape

WARM_RUNS = 3  # after the first, before the timed ones
FRONTEND: tuple[FrontendGraph, ...] = ("detector", "keypoints")


def random_feed(session: GraphSession, batch: int, dims: dict[str, int]) -> dict[str, Any]:
    """Inputs of ``batch`` rows for every input of ``session``: random in [0, 1), named dynamic
    dimensions from ``dims``."""
    rng = np.random.default_rng(0)
    feed = {}
    for spec in session.get_inputs():
        feed[spec.name] = rng.random(concrete_shape(spec.shape, batch, dims), dtype=np.float32)
    return feed


def _median_ms(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def bench_graph(
    session: Any, batches: Sequence[int], dims: dict[str, int], repeats: int
) -> list[dict[str, Any]]:
    """One graph (an onnxruntime ``InferenceSession``) at each batch size: milliseconds of its
    first run, of a run, of a run with I/O binding, and of a run per row."""
    import onnxruntime

    device = "cuda" if session.get_providers()[0] == CUDA_PROVIDER else "cpu"
    rows = []
    for batch in batches:
        feed = random_feed(session, batch, dims)
        start = time.perf_counter()
        session.run(None, feed)
        first = 1000 * (time.perf_counter() - start)
        for _ in range(WARM_RUNS):
            session.run(None, feed)
        plain = _median_ms(lambda: session.run(None, feed), repeats)  # noqa: B023
        binding = session.io_binding()
        for name, value in feed.items():
            binding.bind_ortvalue_input(
                name, onnxruntime.OrtValue.ortvalue_from_numpy(value, device, 0)
            )
        for output in session.get_outputs():
            binding.bind_output(output.name, device, 0)

        def bound_run(binding: Any = binding) -> None:
            session.run_with_iobinding(binding)
            binding.synchronize_outputs()

        bound_run()
        bound = _median_ms(bound_run, repeats)
        rows.append({"batch": batch, "first_run_ms": round(first, 2), "run_ms": round(plain, 3),
                     "io_binding_ms": round(bound, 3),
                     "run_ms_per_row": round(plain / batch, 4)})  # fmt: skip
    return rows


def bench_graphs(
    bundle: Bundle,
    providers: list[str],
    precision: Precision,
    batches: Sequence[int],
    repeats: int,
) -> dict[str, Any]:
    """Every graph of ``bundle`` (the network's in ``precision``, the front-end's in float32)
    on ``providers``: :func:`bench_graph`'s rows by graph, and the provider each ran on.

    Raises:
        ValueError: ``precision`` the bundle lacks.
    """
    if precision not in bundle.manifest.variants:
        raise ValueError(f"{bundle.path} has no {precision} graphs (export it with --fp16)")
    dims = {WINDOW_DIM: bundle.manifest.window.length}
    sessions: dict[str, Any] = {g: bundle.frontend_session(g, providers) for g in FRONTEND}
    network: list[GraphName] = ["temporal", "body"]
    if bundle.manifest.variants[precision].encoder is not None:
        network.insert(0, "encoder")
    for graph in network:
        sessions[graph] = bundle.session(graph, precision, providers)
    return {
        graph: {
            "provider": session.get_providers()[0],
            "batches": bench_graph(session, batches, dims, repeats),
        }
        for graph, session in sessions.items()
    }
