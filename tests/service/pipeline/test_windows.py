"""Windows over a track and their blending, on synthetic predictions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from service.bundle import WindowSpec
from service.pipeline.windows import (
    Window,
    blend_windows,
    plan_windows,
    window_weights,
)
from training.evaluation.predict import window_weights as training_window_weights

DYNAMIC = WindowSpec(length=16, stride=8, dynamic_length=True)
FIXED = WindowSpec(length=16, stride=8, dynamic_length=False)
TOLERANCE = 1e-6


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
    blended = blend_windows(
        frames, windows, *predictions(windows, truth, identity, np.zeros(len(windows)))
    )
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
    blended = blend_windows(frames, windows, *predictions(windows, truth, extra, signs))
    steps = angles(blended.rotmat[:-1, 0], blended.rotmat[1:, 0])
    assert steps.max() < 0.4 / 4
    assert np.abs(np.diff(blended.betas[:, 0]) - 1.0).max() < 2.0 / 4  # the truth steps by 1
    # Every frame is a weighted mean of the windows that hold it: within ±0.2 rad of the truth.
    assert angles(blended.rotmat[:, 0], truth).max() <= 0.2 + TOLERANCE
    ortho = blended.rotmat @ blended.rotmat.swapaxes(-1, -2)
    assert np.abs(ortho - np.eye(3)).max() < 1e-5
    assert np.abs(np.linalg.det(blended.rotmat) - 1.0).max() < 1e-5
