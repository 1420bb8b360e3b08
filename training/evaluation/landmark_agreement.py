"""How well a result's meshes sit on a real video: their projected joints against the 2D
landmarks the front-end found, where no ground truth exists.

For the twelve limb joints both skeletons name alike (shoulders, elbows, wrists, hips, knees,
ankles), the distance in pixels between the body's joint projected into the frame and the
keypoint model's landmark, where the model reported it visible, as a share of the person box's
height. The two do not mark exactly the same point (BlazePose's hips sit lower and wider than
SMPL's), so even a perfect mesh leaves a few percent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel

from service.outputs.result_files import read_result_npz
from service.pipeline.landmarks import VISIBLE
from training.body.landmarks import LIMB_JOINTS
from training.body.skeleton import SMPL_JOINT_NAMES

PERCENTILES = (50, 90)


class LandmarkAgreement(BaseModel):
    """Errors as shares of the box height, over every visible limb landmark of every track."""

    result: str
    tracks: int
    person_frames: int
    points: int  # visible limb landmarks compared
    median: float | None
    p90: float | None
    per_joint_median: dict[str, float]


def landmark_agreement(result_npz: str | Path) -> LandmarkAgreement:
    """Compare ``result.npz``'s projected joints with its own detected landmarks."""
    result = read_result_npz(result_npz)
    names = list(result.landmark_names)
    landmark_rows = [names.index(name) for name in LIMB_JOINTS]
    joint_rows = [SMPL_JOINT_NAMES.index(name) for name in LIMB_JOINTS]
    errors: list[np.ndarray] = []  # (N, 12) each, NaN where not visible
    for track in result.tracks:
        landmarks = track.landmarks[:, landmark_rows]  # (N, 12, 3)
        joints = track.joints2d[:, joint_rows]  # (N, 12, 2)
        height = (track.boxes[:, 3] - track.boxes[:, 1])[:, None]  # (N, 1)
        distance = np.linalg.norm(joints - landmarks[..., :2], axis=-1) / height
        errors.append(np.where(landmarks[..., 2] >= VISIBLE, distance, np.nan))
    table = np.concatenate([np.empty((0, len(LIMB_JOINTS))), *errors])
    seen = table[np.isfinite(table)]
    median = p90 = None
    if len(seen):
        median, p90 = (float(value) for value in np.percentile(seen, PERCENTILES))
    per_joint = {
        name: float(np.nanmedian(column))
        for name, column in zip(LIMB_JOINTS, table.T, strict=True)
        if np.isfinite(column).any()
    }
    return LandmarkAgreement(
        result=str(result_npz),
        tracks=len(result.tracks),
        person_frames=len(table),
        points=len(seen),
        median=median,
        p90=p90,
        per_joint_median=per_joint,
    )
