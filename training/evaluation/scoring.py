"""The papers' evaluation table from per-frame predictions and a dataset's ground truth.

Protocol (VIBE and MAED on 3DPW; SPS-Net follows VIBE): 14 LSP joints regressed from the
predicted and the true mesh with the same body model (and the same H36M regressor when the
user gives it); MPJPE after aligning the pelvis (mean of the hips), PA-MPJPE after a per-frame
similarity alignment, PVE on the two meshes as the body model gives them (both without
translation, as VIBE's ``compute_error_verts``), ACCEL (the predicted joints' own
acceleration, MAED's and VIBE's column) and ACCEL_ERR (against the truth), both within each
person track and never across two. Rows whose truth has no SMPL but has 3D joints
(MPI-INF-3DHP-style data) are scored on the 14 LSP joints of SPIN's 49, without PVE; PCK and
AUC are given for them too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from training.body import BodyModel
from training.body.joint_sets import LSP14_NAMES, SPIN49_NAMES
from training.data.video_clips import track_runs
from training.evaluation import metrics

# LSP's 14 joints within SPIN's 49 (the 24 that follow OpenPose's 25 begin with them).
LSP14_IN_SPIN49 = [SPIN49_NAMES.index(name) for name in LSP14_NAMES]
# Frames posed per body-model call: bounds memory on long sets.
BODY_BATCH = 256
METRIC_COLUMNS = ("pa_mpjpe", "mpjpe", "pve", "accel", "accel_error", "pck", "auc")
# Each metric as the papers' tables title it.
METRIC_TITLES = {
    "pa_mpjpe": "PA-MPJPE",
    "mpjpe": "MPJPE",
    "pve": "PVE",
    "accel": "ACCEL",
    "accel_error": "ACCEL_ERR",
    "pck": "PCK",
    "auc": "AUC",
}


@dataclass(frozen=True)
class Predictions:
    """One row per dataset row (person-frame), in the dataset's order."""

    rotmat: np.ndarray  # (N, 24, 3, 3)
    betas: np.ndarray  # (N, 10)
    features: np.ndarray | None = None  # (N, D): the network's per-frame features


def _posed(body: BodyModel, pose: np.ndarray, betas: np.ndarray) -> Iterator[torch.Tensor]:
    """Vertices of ``pose`` ((N, 72) or (N, 24, 3, 3)) and ``betas`` in batches."""
    with torch.no_grad():
        for start in range(0, len(pose), BODY_BATCH):
            out = body(
                torch.as_tensor(pose[start : start + BODY_BATCH], dtype=torch.float32),
                torch.as_tensor(betas[start : start + BODY_BATCH], dtype=torch.float32),
            )
            yield out.vertices


def _lsp_and_vertices(
    body: BodyModel, pose: np.ndarray, betas: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    joints, vertices = [], []
    for batch in _posed(body, pose, betas):
        joints.append(body.regress_joints(batch, "lsp14").numpy())
        vertices.append(batch.numpy())
    return np.concatenate(joints), np.concatenate(vertices)


def score(
    predictions: Predictions, truth: Mapping[str, np.ndarray], body: BodyModel
) -> dict[str, float]:
    """The mean of each metric over the rows that have its ground truth.

    ``truth`` is a dataset file's arrays (:func:`training.data.dataset_file.read_dataset_file`).
    Returns the columns of :data:`METRIC_COLUMNS` that apply (mm, or percent for PCK/AUC) and
    ``frames``, the number of rows scored.
    """
    rows = len(truth["vid_name"])
    has_smpl = np.zeros(rows, dtype=bool)
    if "pose" in truth and "shape" in truth:
        has_smpl = truth["valid"].astype(bool) if "valid" in truth else np.ones(rows, bool)
    pred_joints, pred_vertices = _lsp_and_vertices(body, predictions.rotmat, predictions.betas)
    true_joints = np.zeros_like(pred_joints)
    true_vertices = np.zeros_like(pred_vertices)
    if has_smpl.any():
        joints, vertices = _lsp_and_vertices(
            body, truth["pose"][has_smpl], truth["shape"][has_smpl]
        )
        true_joints[has_smpl], true_vertices[has_smpl] = joints, vertices
    has_3d = has_smpl.copy()
    if "joints3D" in truth:
        joints_only = ~has_smpl & (truth["joints3D"][:, LSP14_IN_SPIN49, 3] > 0).all(axis=1)
        true_joints[joints_only] = truth["joints3D"][joints_only][:, LSP14_IN_SPIN49, :3]
        has_3d |= joints_only

    results: dict[str, list[np.ndarray]] = {name: [] for name in METRIC_COLUMNS}
    for track in track_runs(np.asarray(truth["vid_name"]), np.asarray(truth["frame_id"])):
        track = track[has_3d[track]]
        if len(track) == 0:
            continue
        pred, true = pred_joints[track], true_joints[track]
        results["pa_mpjpe"].append(metrics.pa_mpjpe(pred, true))
        results["mpjpe"].append(metrics.mpjpe(pred, true))
        smpl_rows = track[has_smpl[track]]
        if len(smpl_rows):
            results["pve"].append(metrics.pve(pred_vertices[smpl_rows], true_vertices[smpl_rows]))
        else:
            results["pck"].append(metrics.pck(pred, true))
            results["auc"].append(metrics.auc(pred, true))
        if len(track) >= metrics.MIN_FRAMES_FOR_ACCEL:
            results["accel"].append(metrics.accel(pred))
            results["accel_error"].append(metrics.accel_error(pred, true))
    table = {
        name: float(np.concatenate(values).mean()) for name, values in results.items() if values
    }
    table["frames"] = float(has_3d.sum())
    return table
