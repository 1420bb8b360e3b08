"""The evaluation table: exact on perfect predictions, known errors, tracks kept apart."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.body import load_body_model
from training.evaluation.scoring import LSP14_IN_SPIN49, Predictions, score
from training.geometry import smpl_pose_to_rotmats
from training.motion import load_builtin_clip


@pytest.fixture(scope="module")
def body():
    return load_body_model("standin")


def walk_truth(frames: int = 12, tracks: int = 2) -> dict[str, np.ndarray]:
    pose = load_builtin_clip("walk").pose[:frames]
    return {
        "vid_name": np.repeat([f"v{i}" for i in range(tracks)], frames),
        "frame_id": np.tile(np.arange(frames), tracks),
        "pose": np.tile(pose, (tracks, 1)),
        "shape": np.zeros((tracks * frames, 10), dtype=np.float32),
        "valid": np.ones(tracks * frames),
    }


def as_predictions(pose: np.ndarray, betas: np.ndarray) -> Predictions:
    rotmat = smpl_pose_to_rotmats(torch.as_tensor(pose)).numpy()
    return Predictions(rotmat=rotmat, betas=betas)


def test_perfect_predictions_score_zero_error(body):
    truth = walk_truth()
    table = score(as_predictions(truth["pose"], truth["shape"]), truth, body)
    for column in ("pa_mpjpe", "mpjpe", "pve", "accel_error"):
        assert table[column] == pytest.approx(0.0, abs=1e-3)
    assert table["accel"] > 1.0  # a walk accelerates
    assert table["frames"] == 24


def test_a_wrong_shape_shows_in_pve_and_mpjpe_not_in_accel_error(body):
    truth = walk_truth()
    betas = truth["shape"].copy()
    betas[:, 0] = 2.0  # a much larger body, the same motion
    table = score(as_predictions(truth["pose"], betas), truth, body)
    assert table["pve"] > 20.0
    assert table["mpjpe"] > 10.0
    assert table["pa_mpjpe"] < table["mpjpe"]  # mostly a scale error, which Procrustes removes
    assert table["accel_error"] < 2.0


def test_acceleration_never_spans_two_tracks(body):
    truth = walk_truth(frames=6, tracks=2)
    # the second track jumps to another pose: a track boundary, not motion
    truth["pose"][6:] = load_builtin_clip("jump").pose[:6]
    table = score(as_predictions(truth["pose"], truth["shape"]), truth, body)
    assert table["accel_error"] == pytest.approx(0.0, abs=1e-3)


def test_rows_with_only_3d_joints_get_pck_and_no_pve(body):
    truth = walk_truth(frames=5, tracks=1)
    with torch.no_grad():
        vertices = body(torch.as_tensor(truth["pose"]), torch.zeros(5, 10)).vertices
    joints49 = np.zeros((5, 49, 4), dtype=np.float32)
    joints49[:, LSP14_IN_SPIN49, :3] = body.regress_joints(vertices, "lsp14").numpy()
    joints49[:, LSP14_IN_SPIN49, 3] = 1.0
    truth_3dhp = {k: truth[k] for k in ("vid_name", "frame_id")} | {"joints3D": joints49}
    table = score(as_predictions(truth["pose"], truth["shape"]), truth_3dhp, body)
    assert "pve" not in table
    assert table["pck"] == pytest.approx(100.0)
    assert table["mpjpe"] == pytest.approx(0.0, abs=1e-3)
