"""Tracks' features through the temporal model, window by window, blended at the seams.

As evaluation runs it (``training.evaluation.predict``): windows of the bundle's length T start
every ``stride`` frames, the last one ending with the track. Where windows overlap their
predictions are blended with triangular weights ``min(t + 1, T − t)``: β and the camera as
weighted means, rotations as the nearest rotation (SVD) to the weighted mean of the matrices,
so the result does not jump at a seam.

A track shorter than T is one window: of its own length when the temporal model takes any T
(SPS-Net), else (MAED) padded to T by repeating its first and last frames, the padding's
predictions dropped.

Windows run while the video is encoded (:class:`TemporalStream`): each as soon as its last
frame's features are in, its predictions added to its track's running blend
(:class:`WindowBlend`), so no track's features are ever held whole (MAED's are 588 KiB a
frame).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from service.bundle import NUM_BETAS, NUM_JOINTS, WindowSpec
from service.pipeline.rotations import nearest_rotation

if TYPE_CHECKING:
    from service.fixed_batches import GraphSession

CAMERA_SIZE = 3  # s, tx, ty
TEMPORAL_INPUT = "features"
TEMPORAL_OUTPUTS = ["rotmat", "betas", "cam"]


@dataclass(frozen=True)
class Window:
    """The frames one run of the temporal model reads, as rows of the track's arrays."""

    rows: np.ndarray  # (L,) int: padding repeats the track's first or last row
    real: np.ndarray  # (L,) bool: False on padding


@dataclass(frozen=True)
class TemporalOutput:
    """The temporal model's per-frame predictions for a whole track."""

    rotmat: np.ndarray  # (N, 24, 3, 3) float32 rotations
    betas: np.ndarray  # (N, 10) float32
    cam: np.ndarray  # (N, 3) float32 s, tx, ty of each frame's crop


def window_weights(length: int) -> np.ndarray:
    """``(length,)`` blending weights ``1, 2, …`` from either edge: a window's neighbours, which
    see its edge frames in their middle, with more context, decide those frames."""
    positions = np.arange(length)
    return np.minimum(positions + 1, length - positions).astype(np.float64)


def window_starts(frames: int, length: int, stride: int) -> list[int]:
    """First rows of the windows of ``length`` that cover ``frames >= length`` rows: one every
    ``stride``, and one ending with the last row."""
    last = frames - length
    starts = list(range(0, last + 1, stride))
    if starts[-1] < last:
        starts.append(last)
    return starts


def plan_windows(frames: int, spec: WindowSpec, stride: int) -> list[Window]:
    """The windows over a track of ``frames`` rows (see the module's docstring).

    Raises:
        ValueError: a stride outside ``[1, T]``.
    """
    if not 1 <= stride <= spec.length:
        raise ValueError(f"the window stride must be between 1 and {spec.length}, not {stride}")
    if frames >= spec.length:
        rows = [
            np.arange(start, start + spec.length)
            for start in window_starts(frames, spec.length, stride)
        ]
        return [Window(row, np.ones(spec.length, dtype=bool)) for row in rows]
    if spec.dynamic_length:
        return [Window(np.arange(frames), np.ones(frames, dtype=bool))]
    before = (spec.length - frames) // 2  # the track in the window's middle
    positions = np.arange(spec.length) - before
    return [Window(np.clip(positions, 0, frames - 1), (positions >= 0) & (positions < frames))]


class WindowBlend:
    """One track's predictions blended window by window, in the order of its windows.

    After window ``k`` the rows before window ``k + 1``'s first row are final (later windows
    start later): they are blended then, and only the rows still open, at most one window's,
    keep running float64 sums. The result equals blending all windows at once.
    """

    def __init__(self, frames: int, windows: Sequence[Window]) -> None:
        """``frames``: N, the track's rows; ``windows``: :func:`plan_windows`'s over them."""
        self.frames = frames
        self.windows = windows
        self.added = 0  # windows blended so far
        self.first_open = 0  # the track row of the sums' first row
        span = max(len(window.rows) for window in windows)
        self.rotmat_sum = np.zeros((span, NUM_JOINTS, 3, 3))
        self.betas_sum = np.zeros((span, NUM_BETAS))
        self.cam_sum = np.zeros((span, CAMERA_SIZE))
        self.weight_sum = np.zeros(span)
        self.rotmat = np.empty((frames, NUM_JOINTS, 3, 3), dtype=np.float32)
        self.betas = np.empty((frames, NUM_BETAS), dtype=np.float32)
        self.cam = np.empty((frames, CAMERA_SIZE), dtype=np.float32)

    @property
    def complete(self) -> bool:
        """Whether every window has been blended in."""
        return self.added == len(self.windows)

    def add(self, rotmat: np.ndarray, betas: np.ndarray, cam: np.ndarray) -> None:
        """Blend in the next window's predictions: ``(L, 24, 3, 3)`` rotations, ``(L, 10)`` β
        and ``(L, 3)`` cameras, weighted by :func:`window_weights` (padding dropped)."""
        window = self.windows[self.added]
        real = window.real
        rows = window.rows[real] - self.first_open  # (L',) rows of the sums
        weights = window_weights(len(real))[real]  # (L',)
        self.rotmat_sum[rows] += weights[:, None, None, None] * rotmat[real]
        self.betas_sum[rows] += weights[:, None] * betas[real]
        self.cam_sum[rows] += weights[:, None] * cam[real]
        self.weight_sum[rows] += weights
        self.added += 1
        if self.complete:
            self._close(self.frames)
        else:
            upcoming = self.windows[self.added]
            self._close(int(upcoming.rows[upcoming.real][0]))

    def result(self) -> TemporalOutput:
        """Per row: the nearest rotation to the weighted mean of the rotations, and the
        weighted means of β and the camera.

        Raises:
            ValueError: windows are still to be blended.
        """
        if not self.complete:
            raise ValueError(f"{len(self.windows) - self.added} windows were never blended in")
        return TemporalOutput(rotmat=self.rotmat, betas=self.betas, cam=self.cam)

    def _close(self, end: int) -> None:
        """Rows ``first_open`` to ``end - 1`` are final: blend them, move the sums past them."""
        count = end - self.first_open
        weights = self.weight_sum[:count]
        if not (weights > 0).all():
            raise ValueError("the windows leave rows of the track uncovered")
        rows = slice(self.first_open, end)
        self.rotmat[rows] = nearest_rotation(self.rotmat_sum[:count])
        self.betas[rows] = self.betas_sum[:count] / weights[:, None]
        self.cam[rows] = self.cam_sum[:count] / weights[:, None]
        for sums in (self.rotmat_sum, self.betas_sum, self.cam_sum, self.weight_sum):
            sums[: len(sums) - count] = sums[count:]
            sums[len(sums) - count :] = 0.0
        self.first_open = end


class TemporalStream:
    """The temporal model on every track's windows as soon as their features are encoded.

    Feed each track's features row by row in order (:meth:`add`; tracks may interleave). When
    a window's last row comes, its features are copied out and it waits with other tracks'
    windows of its length; ``windows_per_run`` of them run together, and their predictions go
    to their tracks' :class:`WindowBlend`. A track keeps only the features its next window can
    still read, in a ring of one window's length, and none once its last window is out. Memory
    is thus bounded by the people in view, not by the video's length.
    """

    def __init__(
        self,
        blends: Sequence[WindowBlend],
        session: GraphSession,
        windows_per_run: int,
        on_run: Callable[[int], None],
    ) -> None:
        """
        Args:
            blends: one per track, each with its windows.
            session: the bundle's ``temporal.onnx``.
            windows_per_run: how many windows one run of the model takes at most.
            on_run: called after each run with the number of windows it took.
        """
        self.blends = blends
        self.session = session
        self.windows_per_run = windows_per_run
        self.on_run = on_run
        self.rings: list[np.ndarray | None] = [None] * len(blends)  # (R, *feature_shape)
        self.received = [0] * len(blends)  # rows of each track added so far
        self.queued = [0] * len(blends)  # windows of each track sent to a batch so far
        # window length → (track, (L, *feature_shape) features) of the windows waiting
        self.pending: dict[int, list[tuple[int, np.ndarray]]] = {}

    def add(self, track: int, row: int, features: np.ndarray) -> None:
        """The ``(*feature_shape)`` features of a track's row; queue the windows it completes.

        Raises:
            ValueError: a row out of order.
        """
        if row != self.received[track]:
            raise ValueError(f"track {track}: row {row} came, row {self.received[track]} is next")
        windows = self.blends[track].windows
        ring = self.rings[track]
        if ring is None:
            ring = np.empty((len(windows[0].rows), *features.shape), dtype=np.float32)
            self.rings[track] = ring
        ring[row % len(ring)] = features
        self.received[track] += 1
        while self.queued[track] < len(windows) and windows[self.queued[track]].rows.max() <= row:
            self._queue(track, ring[windows[self.queued[track]].rows % len(ring)])
        if self.queued[track] == len(windows):
            self.rings[track] = None

    def finish(self) -> list[TemporalOutput]:
        """Run the windows still waiting; every track's blended predictions.

        Raises:
            ValueError: rows of a track never came, so windows were never run.
        """
        for length in list(self.pending):
            self._run(length)
        return [blend.result() for blend in self.blends]

    def _queue(self, track: int, features: np.ndarray) -> None:
        """Put a track's next window, ``(L, *feature_shape)``, in the batch of its length."""
        self.queued[track] += 1
        waiting = self.pending.setdefault(len(features), [])
        waiting.append((track, features))
        if len(waiting) == self.windows_per_run:
            self._run(len(features))

    def _run(self, length: int) -> None:
        """Run the waiting windows of ``length`` and blend each into its track."""
        batch = self.pending.pop(length)
        inputs = np.stack([features for _, features in batch])  # (B, L, *feature_shape)
        outputs = self.session.run(TEMPORAL_OUTPUTS, {TEMPORAL_INPUT: inputs})
        for (track, _), rotmat, betas, cam in zip(batch, *outputs, strict=True):
            self.blends[track].add(rotmat, betas, cam)
        self.on_run(len(batch))
