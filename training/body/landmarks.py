"""BlazePose's 33 body landmarks as a linear regressor from a body's vertices.

The keypoint families read the 33 landmarks of BlazePose GHUM 3D (the bundle's keypoint model).
To train them on synthetic bodies, every landmark is defined on the mesh as a fixed affine
combination (weights summing to one) of the body's 24 joints and its named vertices (nose,
eyes, ears, fingertips, toes, heels; see :attr:`training.body.BodyModel.landmarks`), so that
one ``(33, V)`` matrix maps any posed mesh to its landmarks, as the joint sets do.

The definition follows what each of MediaPipe's landmarks marks (its ``PoseLandmark`` names):

* limbs (shoulders, elbows, wrists, hips, knees, ankles): the body's joints of those names;
* eyes: the eye vertex; the inner and outer corners a quarter of the eyes' distance either side;
* mouth corners: below the nose tip by 0.7 of the eyes-to-nose offset, a fifth of the eyes'
  distance to the side;
* pinky, index and thumb: halfway from the wrist to that fingertip (BlazePose marks knuckles);
* heels and foot indices: the heel and big-toe vertices.

The error this definition leaves against what BlazePose itself reports on renders of the body is
part of the front-end's error that training adds as noise; ``meshcast score`` measures that
error on synthetic videos (the limb landmarks against the true joints).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from training.body.skeleton import SMPL_JOINT_NAMES

# MediaPipe Pose's landmark order (service.pipeline.landmarks holds the same names; the service
# does not import training code).
BLAZEPOSE_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
NUM_LANDMARKS = len(BLAZEPOSE_NAMES)
# The hips, whose midpoint is the origin of BlazePose's metric ("world") landmarks.
HIP_LANDMARKS = (BLAZEPOSE_NAMES.index("left_hip"), BLAZEPOSE_NAMES.index("right_hip"))
# The twelve limb joints BlazePose's landmarks and the body's joints both name, and mean
# nearly alike (shoulders to ankles): what the meshes are scored on against the landmarks.
LIMB_JOINTS: tuple[str, ...] = tuple(
    f"{side}_{joint}"
    for joint in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
    for side in ("left", "right")
)
# Index of each landmark's mirror image (left ↔ right).
BLAZEPOSE_FLIP_PERMUTATION: tuple[int, ...] = tuple(
    BLAZEPOSE_NAMES.index(name.replace("left", "@").replace("right", "left").replace("@", "right"))
    for name in BLAZEPOSE_NAMES
)

_EYE_CORNER = 0.25  # of the eyes' distance, beyond (outer) or short of (inner) each eye
_MOUTH_DROP = 0.7  # of the offset from the eyes' midpoint to the nose tip, past the tip
_MOUTH_SIDE = 0.2  # of the eyes' distance, to the mouth's side
_KNUCKLE = 0.5  # of the way from the wrist to the fingertip


def _side(side: str) -> dict[str, str]:
    """Point names of one side: the body's joints and its landmark vertices' prefixes."""
    other = "right" if side == "left" else "left"
    return {"side": side, "other": other, "v": side[0], "V": side[0].upper(), "o": other[0]}


def _definition() -> dict[str, dict[str, float]]:
    """Landmark → {point: weight}; a point is a joint name or "@vertex name"."""
    definition: dict[str, dict[str, float]] = {"nose": {"@nose": 1.0}}
    for side in ("left", "right"):
        s = _side(side)
        eye, other_eye = f"@{s['v']}eye", f"@{s['o']}eye"
        definition |= {
            f"{side}_eye_inner": {eye: 1.0 - _EYE_CORNER, other_eye: _EYE_CORNER},
            f"{side}_eye": {eye: 1.0},
            f"{side}_eye_outer": {eye: 1.0 + _EYE_CORNER, other_eye: -_EYE_CORNER},
            f"{side}_ear": {f"@{s['v']}ear": 1.0},
            # nose + drop·(nose − eyes' midpoint) + side·(this eye − the other)
            f"mouth_{side}": {
                "@nose": 1.0 + _MOUTH_DROP,
                eye: -_MOUTH_DROP / 2 + _MOUTH_SIDE,
                other_eye: -_MOUTH_DROP / 2 - _MOUTH_SIDE,
            },
            f"{side}_heel": {f"@{s['V']}Heel": 1.0},
            f"{side}_foot_index": {f"@{s['V']}BigToe": 1.0},
        }
        for joint in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
            definition[f"{side}_{joint}"] = {f"{side}_{joint}": 1.0}
        for finger, tip in (("pinky", "pinky"), ("index", "index"), ("thumb", "thumb")):
            definition[f"{side}_{finger}"] = {
                f"{side}_wrist": 1.0 - _KNUCKLE,
                f"@{s['v']}{tip}": _KNUCKLE,
            }
    return definition


BLAZEPOSE_DEFINITION: dict[str, dict[str, float]] = _definition()


def landmark_regressor(joint_regressor: np.ndarray, vertices: Mapping[str, int]) -> np.ndarray:
    """The ``(33, V)`` regressor of BlazePose's landmarks, in :data:`BLAZEPOSE_NAMES` order.

    Args:
        joint_regressor: the body's ``(24, V)`` joint regressor.
        vertices: the body's named vertices (``BodyModel.landmarks``).
    """
    num_vertices = joint_regressor.shape[1]
    rows = np.zeros((NUM_LANDMARKS, num_vertices), dtype=np.float32)
    for row, name in enumerate(BLAZEPOSE_NAMES):
        for point, weight in BLAZEPOSE_DEFINITION[name].items():
            if point.startswith("@"):
                rows[row, vertices[point[1:]]] += weight
            else:
                rows[row] += weight * joint_regressor[SMPL_JOINT_NAMES.index(point)]
    return rows
