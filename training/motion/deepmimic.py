"""Read DeepMimic motion clips and retarget them onto SMPL's 24 joints.

A DeepMimic clip (Peng et al. 2018, the ``humanoid3d_*.txt`` files shipped with pybullet) is
JSON: ``{"Loop": ..., "Frames": [[dt, root xyz, root quat, joint rotations...], ...]}`` with
quaternions stored w first. Its humanoid differs from SMPL in three ways, each handled here:

* World frame: the humanoid rests facing +X with its right side at +Z (Y up); SMPL faces +Z
  with its left side at +X. ``_DEEPMIMIC_TO_SMPL`` maps one onto the other (a turn about Y).
* Rest pose: the humanoid rests with its arms hanging straight down, SMPL in a T-pose with
  the arms along ±X. Each arm chain carries a fixed rest offset that lowers SMPL's arm.
* Knees and elbows are hinges: one angle about the joint's lateral (DeepMimic Z) axis.

In a walk the knee angles are negative and the elbow angles positive; with DeepMimic's axes
that bends the shins backward and the forearms forward, as in a human walk.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from training.body.skeleton import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS

MOTIONS_DIR_ENV = "MESHCAST_MOTIONS_DIR"
# The shared data folder lies beside the repository: <repo>/../shared/data/motions.
_REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MOTIONS_DIR = _REPO_ROOT.parent / "shared" / "data" / "motions"
CLIP_PREFIX = "humanoid3d_"
CLIP_SUFFIX = ".txt"

_QUAT_SIZE = 4
_HINGE_SIZE = 1
_ROOT_POS = slice(1, 4)
_ROOT_QUAT = slice(4, 8)
_FIRST_JOINT_COLUMN = 8

# DeepMimic's humanoid: each joint's name, parent and number of stored values, in file order.
_DEEPMIMIC_JOINTS: tuple[tuple[str, str, int], ...] = (
    ("chest", "root", _QUAT_SIZE),
    ("neck", "chest", _QUAT_SIZE),
    ("right_hip", "root", _QUAT_SIZE),
    ("right_knee", "right_hip", _HINGE_SIZE),
    ("right_ankle", "right_knee", _QUAT_SIZE),
    ("right_shoulder", "chest", _QUAT_SIZE),
    ("right_elbow", "right_shoulder", _HINGE_SIZE),
    ("left_hip", "root", _QUAT_SIZE),
    ("left_knee", "left_hip", _HINGE_SIZE),
    ("left_ankle", "left_knee", _QUAT_SIZE),
    ("left_shoulder", "chest", _QUAT_SIZE),
    ("left_elbow", "left_shoulder", _HINGE_SIZE),
)
FRAME_WIDTH = _FIRST_JOINT_COLUMN + sum(size for _, _, size in _DEEPMIMIC_JOINTS)

# Knees and elbows turn about the humanoid's lateral axis, which is Z in its own frames.
_HINGE_AXIS = np.array([0.0, 0.0, 1.0])

# Rows are SMPL's axes written in DeepMimic's: SMPL x (body's left) = −DeepMimic z (its right),
# y (up) = y, z (forward) = DeepMimic x (forward). A proper rotation: a −90° turn about Y.
_DEEPMIMIC_TO_SMPL = np.array(
    [
        [0.0, 0.0, -1.0],
        [0.0, 1.0, 0.0],
        [1.0, 0.0, 0.0],
    ]
)

# Which SMPL joints each DeepMimic joint drives, and the share of its rotation each takes.
# SMPL splits DeepMimic's single chest joint into three spine joints and its neck into
# neck and head; equal shares of the rotation angle compose back to the whole rotation.
_SPINE_SHARE = 1.0 / 3.0
_NECK_SHARE = 1.0 / 2.0
_SMPL_TARGETS: dict[str, tuple[tuple[str, float], ...]] = {
    "chest": (("spine1", _SPINE_SHARE), ("spine2", _SPINE_SHARE), ("spine3", _SPINE_SHARE)),
    "neck": (("neck", _NECK_SHARE), ("head", _NECK_SHARE)),
    "right_hip": (("right_hip", 1.0),),
    "right_knee": (("right_knee", 1.0),),
    "right_ankle": (("right_ankle", 1.0),),
    "right_shoulder": (("right_shoulder", 1.0),),
    "right_elbow": (("right_elbow", 1.0),),
    "left_hip": (("left_hip", 1.0),),
    "left_knee": (("left_knee", 1.0),),
    "left_ankle": (("left_ankle", 1.0),),
    "left_shoulder": (("left_shoulder", 1.0),),
    "left_elbow": (("left_elbow", 1.0),),
}

# Rest offsets: the rotation (SMPL world axes) that turns SMPL's rest segment into
# DeepMimic's. SMPL's left arm points along +X and DeepMimic's hangs along −Y: a −90° turn
# about Z (forward, +Z, is kept, so the elbow hinge still bends the forearm forward); the
# right arm mirrors it. Wrists and hands follow their forearm so they carry the same offset.
_ARM_DROP_RAD = np.pi / 2
_Z_AXIS = np.array([0.0, 0.0, 1.0])
_REST_OFFSETS: dict[str, np.ndarray] = {
    **{
        f"left_{part}": Rotation.from_rotvec(-_ARM_DROP_RAD * _Z_AXIS).as_matrix()
        for part in ("shoulder", "elbow", "wrist", "hand")
    },
    **{
        f"right_{part}": Rotation.from_rotvec(_ARM_DROP_RAD * _Z_AXIS).as_matrix()
        for part in ("shoulder", "elbow", "wrist", "hand")
    },
}


@dataclass(frozen=True)
class MotionClip:
    """A motion on SMPL's skeleton, in SMPL's world frame (Y up, ground at y = 0).

    Attributes:
        name: the clip's name, e.g. ``"walk"``.
        fps: frames per second.
        pose: ``(N, 72)`` float32 axis-angle: global orientation then SMPL's 23 local joint
            rotations, in SMPL joint order.
        transl: ``(N, 3)`` float32 world position of the pelvis (SMPL joint 0) in metres. To
            drive a body whose rest pelvis sits at ``J0``, translate its vertices by
            ``transl - J0``.
        loop: whether the clip is meant to wrap around.
    """

    name: str
    fps: float
    pose: np.ndarray
    transl: np.ndarray
    loop: bool

    @property
    def num_frames(self) -> int:
        """Number of frames N."""
        return int(self.pose.shape[0])


def _split_columns(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Cut the per-joint columns of ``frames (N, 44)`` into ``name -> (N, 4) or (N, 1)``."""
    columns = {}
    start = _FIRST_JOINT_COLUMN
    for name, _, size in _DEEPMIMIC_JOINTS:
        columns[name] = frames[:, start : start + size]
        start += size
    return columns


def _local_rotations(frames: np.ndarray) -> dict[str, Rotation]:
    """DeepMimic's local joint rotations per frame, in DeepMimic's frames.

    Args:
        frames: ``(N, 44)`` raw frame rows.

    Returns:
        ``name -> Rotation`` of N rotations for every DeepMimic joint and ``"root"``.
    """
    rotations = {"root": Rotation.from_quat(frames[:, _ROOT_QUAT], scalar_first=True)}
    for name, values in _split_columns(frames).items():
        if values.shape[1] == _HINGE_SIZE:
            rotations[name] = Rotation.from_rotvec(values * _HINGE_AXIS)
        else:
            rotations[name] = Rotation.from_quat(values, scalar_first=True)
    return rotations


def _to_smpl_frame(rotations: Rotation) -> np.ndarray:
    """Express rotations given in DeepMimic's axes in SMPL's: ``C R Cᵀ``, ``(N, 3, 3)``."""
    C = _DEEPMIMIC_TO_SMPL
    return np.einsum("ij,njk,lk->nil", C, rotations.as_matrix(), C)


def retarget_frames(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Retarget raw DeepMimic frames onto SMPL.

    A DeepMimic joint's local rotation ``R`` (its axes) becomes SMPL's local rotation
    ``A_parentᵀ · C R Cᵀ · A_joint`` where ``C`` changes axes and ``A`` are the rest offsets:
    then every SMPL segment's global orientation equals DeepMimic's, measured from each
    skeleton's own rest pose. Joints DeepMimic lacks get only their rest offsets (identity
    unless their parent's offset differs).

    Args:
        frames: ``(N, 44)`` rows of a DeepMimic clip.

    Returns:
        pose ``(N, 72)`` float32 axis-angle and transl ``(N, 3)`` float32 pelvis positions.
    """
    if frames.ndim != 2 or frames.shape[1] != FRAME_WIDTH:
        raise ValueError(
            f"expected DeepMimic frames of shape (N, {FRAME_WIDTH}), got {frames.shape}"
        )
    num_frames = frames.shape[0]
    local = _local_rotations(frames)

    smpl_local = np.tile(np.eye(3), (num_frames, NUM_JOINTS, 1, 1))
    smpl_local[:, 0] = _to_smpl_frame(local["root"])
    for dm_name, targets in _SMPL_TARGETS.items():
        rotvec = local[dm_name].as_rotvec()
        for smpl_name, share in targets:
            smpl_local[:, SMPL_JOINT_NAMES.index(smpl_name)] = _to_smpl_frame(
                Rotation.from_rotvec(share * rotvec)
            )

    identity = np.eye(3)
    for joint in range(1, NUM_JOINTS):
        offset = _REST_OFFSETS.get(SMPL_JOINT_NAMES[joint], identity)
        parent_offset = _REST_OFFSETS.get(SMPL_JOINT_NAMES[SMPL_PARENTS[joint]], identity)
        smpl_local[:, joint] = parent_offset.T @ smpl_local[:, joint] @ offset

    pose = Rotation.from_matrix(smpl_local.reshape(-1, 3, 3)).as_rotvec().reshape(num_frames, -1)
    transl = frames[:, _ROOT_POS] @ _DEEPMIMIC_TO_SMPL.T
    return pose.astype(np.float32), transl.astype(np.float32)


def load_deepmimic_clip(path: str | Path) -> MotionClip:
    """Read a DeepMimic clip file and retarget it onto SMPL.

    Args:
        path: a ``humanoid3d_<name>.txt`` JSON file.

    Returns:
        The clip named after the file (without the ``humanoid3d_`` prefix).
    """
    path = Path(path)
    data = json.loads(path.read_text())
    frames = np.asarray(data["Frames"], dtype=np.float64)
    # The last frame's dt is 0 (nothing follows it), so take the typical positive step.
    steps = frames[:, 0][frames[:, 0] > 0]
    if steps.size == 0:
        raise ValueError(f"{path}: no frame has a positive duration")
    pose, transl = retarget_frames(frames)
    return MotionClip(
        name=path.stem.removeprefix(CLIP_PREFIX),
        fps=float(1.0 / np.median(steps)),
        pose=pose,
        transl=transl,
        loop=data.get("Loop") == "wrap",
    )


def motions_dir() -> Path:
    """The DeepMimic source clips: ``$MESHCAST_MOTIONS_DIR`` or ``../shared/data/motions``."""
    override = os.environ.get(MOTIONS_DIR_ENV)
    return Path(override) if override else DEFAULT_MOTIONS_DIR


def list_source_clips() -> list[str]:
    """Names of the DeepMimic clips in :func:`motions_dir`, sorted (``["backflip", …]``)."""
    folder = motions_dir()
    return sorted(
        p.name.removeprefix(CLIP_PREFIX).removesuffix(CLIP_SUFFIX)
        for p in folder.glob(f"{CLIP_PREFIX}*{CLIP_SUFFIX}")
    )


def load_source_clip(name: str) -> MotionClip:
    """Load the DeepMimic source clip ``name`` (e.g. ``"walk"``) retargeted onto SMPL."""
    available = list_source_clips()
    if name not in available:
        raise KeyError(
            f"unknown DeepMimic clip {name!r} in {motions_dir()}; available: "
            + (", ".join(available) if available else f"none (set {MOTIONS_DIR_ENV})")
        )
    return load_deepmimic_clip(motions_dir() / f"{CLIP_PREFIX}{name}{CLIP_SUFFIX}")
