"""A few fixed batch sizes for the graphs on a GPU.

A video's batches change size all the time: the people in a frame (keypoint crops), the windows
ready at once, the last body batch of a track. On onnxruntime's CUDA provider every batch size
a session meets for the first time costs up to seconds (on an H200 with onnxruntime-gpu 1.31:
0.8 to 3.3 s for each of the keypoint model's first batches of 1 to 4 crops, with either of
cuDNN's algorithm searches, against 2 to 3 ms a run once met; docs/results.md, "On a GPU"), and
``meshcast bench pipeline`` of vtest.avi did not finish in 85 s there. :class:`FixedBatchSession`
pads each batch to the next of :data:`GPU_BATCH_SIZES` (repeating its last row) and cuts the
outputs back, so that a session meets only those sizes, and :meth:`FixedBatchSession.warm_up`
meets each once before the first job. On the CPU padding only costs arithmetic: sessions
there are used as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

# Each a quarter of the next: padding wastes at most 3/4 of a batch, which a GPU runs at
# nearly the cost of one row (the keypoint model: 1.95 ms for 1 crop, 2.8 ms for 8 on the
# H200), and four first sights per graph. 64 is the largest batch the pipeline makes but for
# keypoint crops of a crowd, which run in multiples of it.
GPU_BATCH_SIZES = (1, 4, 16, 64)
_NUMPY_TYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}


class GraphSession(Protocol):
    """What the pipeline uses of an onnxruntime ``InferenceSession``."""

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any]) -> list[Any]:
        """The outputs named (all when ``None``) for ``input_feed``."""
        ...

    def get_inputs(self) -> list[Any]:
        """The graph's inputs (``name``, ``shape``, ``type``)."""
        ...

    def get_outputs(self) -> list[Any]:
        """The graph's outputs (``name``, ``shape``, ``type``)."""
        ...

    def get_providers(self) -> list[str]:
        """The execution providers the session runs on, in order."""
        ...


def padded_size(count: int, sizes: Sequence[int] = GPU_BATCH_SIZES) -> int:
    """The smallest of ``sizes`` that holds ``count`` rows; past the largest, the next multiple
    of it."""
    for size in sorted(sizes):
        if count <= size:
            return size
    largest = max(sizes)
    return -(-count // largest) * largest


class FixedBatchSession:
    """A session whose every run has a batch size from ``sizes``: inputs padded along their
    first axis, outputs cut back to the rows asked for. Every input and output of the graph
    has the batch first."""

    def __init__(self, session: GraphSession, sizes: Sequence[int] = GPU_BATCH_SIZES) -> None:
        self.session = session
        self.sizes = tuple(sizes)

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any]) -> list[Any]:
        """As ``InferenceSession.run``, on a padded batch.

        Raises:
            ValueError: inputs with different batch sizes.
        """
        counts = {len(value) for value in input_feed.values()}
        if len(counts) != 1:
            raise ValueError(f"inputs of different batch sizes: {sorted(counts)}")
        (count,) = counts
        extra = padded_size(count, self.sizes) - count
        if extra == 0 or count == 0:
            return self.session.run(output_names, input_feed)
        padded = {name: _pad_rows(np.asarray(value), extra) for name, value in input_feed.items()}
        return [output[:count] for output in self.session.run(output_names, padded)]

    def warm_up(self, dims: Mapping[str, int]) -> None:
        """Run the graph once at each batch size, on inputs of zeros: the first sight of each
        is paid here. ``dims``: the size of each other named (dynamic) dimension."""
        for size in self.sizes:
            feed = {
                spec.name: np.zeros(concrete_shape(spec.shape, size, dims), dtype=_dtype(spec.type))
                for spec in self.session.get_inputs()
            }
            self.session.run(None, feed)

    def get_inputs(self) -> list[Any]:
        """The graph's inputs."""
        return self.session.get_inputs()

    def get_outputs(self) -> list[Any]:
        """The graph's outputs."""
        return self.session.get_outputs()

    def get_providers(self) -> list[str]:
        """The providers of the session inside."""
        return self.session.get_providers()


def _pad_rows(value: np.ndarray, extra: int) -> np.ndarray:
    """``value`` with its last row repeated ``extra`` times (a real row: valid input)."""
    return np.concatenate([value, np.repeat(value[-1:], extra, axis=0)])


def concrete_shape(
    shape: Sequence[int | str | None], batch: int, dims: Mapping[str, int]
) -> list[int]:
    """A graph input's shape made concrete: ``batch`` first, named dimensions from ``dims``.

    Raises:
        ValueError: a dynamic dimension ``dims`` does not name.
    """
    concrete = [batch]
    for dim in shape[1:]:
        if isinstance(dim, int):
            concrete.append(dim)
        elif isinstance(dim, str) and dim in dims:
            concrete.append(dims[dim])
        else:
            raise ValueError(f"no size for the dimension {dim!r} of an input of shape {shape}")
    return concrete


def _dtype(onnx_type: str) -> type[np.generic]:
    """numpy's type for onnxruntime's ``tensor(float)`` and the like."""
    return _NUMPY_TYPES[onnx_type]
