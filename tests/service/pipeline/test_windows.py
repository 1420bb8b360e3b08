"""Windows over a track and their blending, on synthetic predictions: window by window as the
pipeline blends them, against all windows at once with training's weights; and the temporal
model run as features stream in, with a stand-in for ``temporal.onnx``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from service.bundle import NUM_BETAS, NUM_JOINTS, WindowSpec
from service.pipeline.rotations import nearest_rotation
from service.pipeline.windows import (
    TemporalOutput,
    TemporalStream,
    Window,
    WindowBlend,
    plan_windows,
    window_weights,
)
from training.evaluation.predict import window_weights as training_window_weights

DYNAMIC = WindowSpec(length=16, stride=8, dynamic_length=True)
FIXED = WindowSpec(length=16, stride=8, dynamic_length=False)
TOLERANCE = 1e-6
FEATURE_SIZE = 5


def angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles in radians between rotations ``(..., 3, 3)``."""
    relative = Rotation.from_matrix((a.transpose(0, 2, 1) @ b).reshape(-1, 3, 3))
    return np.linalg.norm(relative.as_rotvec(), axis=-1)


def predictions(
    windows: list[Window], truth: np.ndarray, extra: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What windows predict when window ``k`` gets the per-frame truth wrong by its own
    ``extra[k]`` rotation and ``offsets[k]`` on β and the camera: every joint's rotation is
    ``truth[row] @ extra[k]``, β and the camera ``row + offsets[k]``."""
    rotmat = np.stack([(truth[w.rows] @ extra[k])[:, None] for k, w in enumerate(windows)])
    rotmat = np.repeat(rotmat, 24, axis=2)  # (K, L, 24, 3, 3)
    values = np.stack([w.rows for w in windows]) + offsets[:, None]  # (K, L)
    return rotmat, np.repeat(values[..., None], 10, axis=-1), np.repeat(values[..., None], 3, -1)


def blend(
    frames: int, windows: list[Window], rotmat: np.ndarray, betas: np.ndarray, cam: np.ndarray
) -> TemporalOutput:
    """The pipeline's blend: ``(K, L, ...)`` predictions added window by window."""
    blender = WindowBlend(frames, windows)
    for k in range(len(windows)):
        blender.add(rotmat[k], betas[k], cam[k])
    return blender.result()


def blend_all_at_once(
    frames: int, windows: list[Window], rotmat: np.ndarray, betas: np.ndarray, cam: np.ndarray
) -> TemporalOutput:
    """Every window summed over the whole track with training's weights, then averaged."""
    sums = [
        np.zeros((frames, NUM_JOINTS, 3, 3)),
        np.zeros((frames, NUM_BETAS)),
        np.zeros((frames, 3)),
    ]
    weight_sum = np.zeros(frames)
    for k, window in enumerate(windows):
        rows, real = window.rows[window.real], window.real
        weights = training_window_weights(len(real)).astype(np.float64)[real]
        for total, prediction in zip(sums, (rotmat, betas, cam), strict=True):
            total[rows] += weights.reshape(-1, *[1] * (prediction.ndim - 2)) * prediction[k, real]
        weight_sum[rows] += weights
    return TemporalOutput(
        rotmat=nearest_rotation(sums[0]).astype(np.float32),
        betas=(sums[1] / weight_sum[:, None]).astype(np.float32),
        cam=(sums[2] / weight_sum[:, None]).astype(np.float32),
    )


def random_predictions(
    windows: list[Window], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows that disagree everywhere: random rotations, β and cameras ``(K, L, ...)``."""
    count, length = len(windows), len(windows[0].rows)
    rng = np.random.default_rng(seed)
    rotmat = Rotation.random(count * length * NUM_JOINTS, random_state=seed).as_matrix()
    rotmat = rotmat.reshape(count, length, NUM_JOINTS, 3, 3).astype(np.float32)
    betas = rng.normal(size=(count, length, NUM_BETAS)).astype(np.float32)
    cam = rng.normal(size=(count, length, 3)).astype(np.float32)
    return rotmat, betas, cam


@pytest.mark.parametrize("length", [1, 7, 31, 52])
def test_weights_are_trainings(length):
    assert np.array_equal(window_weights(length), training_window_weights(length))


@pytest.mark.parametrize(("frames", "stride"), [(16, 8), (17, 8), (40, 8), (40, 5), (40, 16)])
def test_windows_cover_the_track_and_end_with_it(frames, stride):
    windows = plan_windows(frames, DYNAMIC, stride)
    starts = [int(w.rows[0]) for w in windows]
    assert all(len(w.rows) == DYNAMIC.length and w.real.all() for w in windows)
    assert starts[: len(range(0, frames - DYNAMIC.length + 1, stride))] == list(
        range(0, frames - DYNAMIC.length + 1, stride)
    )
    assert windows[-1].rows[-1] == frames - 1
    assert set(np.concatenate([w.rows for w in windows])) == set(range(frames))


def test_a_short_track_is_its_own_window_or_padded():
    (dynamic,) = plan_windows(5, DYNAMIC, 8)
    assert np.array_equal(dynamic.rows, np.arange(5))
    assert dynamic.real.all()
    (fixed,) = plan_windows(5, FIXED, 8)
    assert len(fixed.rows) == FIXED.length
    assert np.array_equal(fixed.rows[fixed.real], np.arange(5))  # the track in the middle
    assert np.array_equal(np.flatnonzero(fixed.real), np.arange(5, 10))
    assert set(fixed.rows[:5]) == {0}  # the edge frames repeated
    assert set(fixed.rows[10:]) == {4}


def test_a_stride_longer_than_the_window_is_refused():
    with pytest.raises(ValueError, match="stride"):
        plan_windows(40, DYNAMIC, 17)


def test_agreeing_windows_blend_to_their_prediction():
    frames = 40
    windows = plan_windows(frames, DYNAMIC, 8)
    truth = Rotation.random(frames, random_state=0).as_matrix()
    identity = np.broadcast_to(np.eye(3), (len(windows), 3, 3))
    blended = blend(frames, windows, *predictions(windows, truth, identity, np.zeros(len(windows))))
    assert np.abs(blended.rotmat - truth[:, None]).max() <= TOLERANCE
    assert np.abs(blended.betas - np.arange(frames)[:, None]).max() <= TOLERANCE
    assert np.abs(blended.cam - np.arange(frames)[:, None]).max() <= TOLERANCE
    assert blended.rotmat.dtype == blended.betas.dtype == np.float32


def test_seams_are_continuous():
    """Windows that disagree by 0.4 rad (alternately ±0.2 about one axis) and by 2 on β:
    blended, no frame-to-frame step comes near a jump of that size."""
    frames = 64
    windows = plan_windows(frames, DYNAMIC, 8)
    truth = np.broadcast_to(np.eye(3), (frames, 3, 3))
    signs = (-1.0) ** np.arange(len(windows))
    extra = Rotation.from_rotvec(0.2 * signs[:, None] * [0.0, 0.0, 1.0]).as_matrix()
    blended = blend(frames, windows, *predictions(windows, truth, extra, signs))
    steps = angles(blended.rotmat[:-1, 0], blended.rotmat[1:, 0])
    assert steps.max() < 0.4 / 4
    assert np.abs(np.diff(blended.betas[:, 0]) - 1.0).max() < 2.0 / 4  # the truth steps by 1
    # Every frame is a weighted mean of the windows that hold it: within ±0.2 rad of the truth.
    assert angles(blended.rotmat[:, 0], truth).max() <= 0.2 + TOLERANCE
    ortho = blended.rotmat @ blended.rotmat.swapaxes(-1, -2)
    assert np.abs(ortho - np.eye(3)).max() < 1e-5
    assert np.abs(np.linalg.det(blended.rotmat) - 1.0).max() < 1e-5


@pytest.mark.parametrize(
    ("frames", "spec", "stride"),
    [(40, DYNAMIC, 8), (41, DYNAMIC, 5), (40, DYNAMIC, 16), (17, DYNAMIC, 1), (16, FIXED, 8),
     (5, DYNAMIC, 8), (5, FIXED, 8)],
)  # fmt: skip
def test_blending_window_by_window_equals_blending_all_at_once(frames, spec, stride):
    windows = plan_windows(frames, spec, stride)
    predictions = random_predictions(windows, seed=frames + stride)
    streamed = blend(frames, windows, *predictions)
    at_once = blend_all_at_once(frames, windows, *predictions)
    for field in ("rotmat", "betas", "cam"):
        np.testing.assert_array_equal(getattr(streamed, field), getattr(at_once, field), field)


def test_a_blend_holds_sums_for_one_window_only():
    blender = WindowBlend(400, plan_windows(400, DYNAMIC, 8))
    assert len(blender.rotmat_sum) == len(blender.weight_sum) == DYNAMIC.length
    with pytest.raises(ValueError, match="never blended"):
        blender.result()


class FakeTemporal:
    """A stand-in for ``temporal.onnx`` whose every output frame depends on its features and on
    its place in the window (so overlapping windows disagree); records its batch sizes."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def run(self, names: list[str], inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        features = inputs["features"]  # (B, L, F)
        self.batches.append(len(features))
        place = np.arange(features.shape[1])[None, :, None]  # (1, L, 1)
        values = features[..., :3] + 0.01 * place  # (B, L, 3)
        rotmat = Rotation.from_rotvec(values.reshape(-1, 3)).as_matrix()
        rotmat = np.repeat(rotmat.reshape(*values.shape[:2], 1, 3, 3), NUM_JOINTS, axis=2)
        betas = np.repeat(values[..., :1], NUM_BETAS, axis=-1) + place
        return [rotmat.astype(np.float32), betas.astype(np.float32), values.astype(np.float32)]


@pytest.mark.parametrize("spec", [DYNAMIC, FIXED])
def test_streamed_windows_equal_each_track_run_at_once(spec):
    """Three tracks interleaved (one long, one short, one between) through the stream, four
    windows a run: every track as its windows run one by one and blended at once. A short
    track's window is of its own length (DYNAMIC: it runs apart) or padded (FIXED). Each
    track's features are dropped once its last window is out."""
    rng = np.random.default_rng(0)
    lengths, stride = [45, 5, 23], 8
    features = [rng.normal(0.0, 0.5, (n, FEATURE_SIZE)).astype(np.float32) for n in lengths]
    windows = [plan_windows(n, spec, stride) for n in lengths]
    model, runs = FakeTemporal(), []
    stream = TemporalStream(
        [WindowBlend(n, planned) for n, planned in zip(lengths, windows, strict=True)],
        model,
        windows_per_run=4,
        on_run=runs.append,
    )
    starts = [0, 10, 3]  # the tracks' first frames in the video
    for frame in range(max(s + n for s, n in zip(starts, lengths, strict=True))):
        for track, (start, n) in enumerate(zip(starts, lengths, strict=True)):
            if start <= frame < start + n:
                stream.add(track, frame - start, features[track][frame - start])
    assert stream.rings == [None, None, None]  # before the last batch has even run
    streamed = stream.finish()
    assert sum(runs) == sum(len(planned) for planned in windows)
    assert max(model.batches) == 4
    for track, (n, planned) in enumerate(zip(lengths, windows, strict=True)):
        alone = [
            FakeTemporal().run([], {"features": features[track][w.rows][None]}) for w in planned
        ]
        rotmat, betas, cam = (np.concatenate([out[i] for out in alone]) for i in range(3))
        expected = blend_all_at_once(n, planned, rotmat, betas, cam)
        for field in ("rotmat", "betas", "cam"):
            np.testing.assert_allclose(
                getattr(streamed[track], field), getattr(expected, field), rtol=0, atol=TOLERANCE
            )


def test_rows_out_of_order_are_refused():
    stream = TemporalStream(
        [WindowBlend(20, plan_windows(20, DYNAMIC, 8))], FakeTemporal(), 1, lambda count: None
    )
    stream.add(0, 0, np.zeros(FEATURE_SIZE, dtype=np.float32))
    with pytest.raises(ValueError, match="row 2 came, row 1 is next"):
        stream.add(0, 2, np.zeros(FEATURE_SIZE, dtype=np.float32))
