"""A track as a BVH file (Biovision Hierarchy), the skeleton-and-motion format that animation
tools (Blender, MotionBuilder, Maya) read when they do not read glTF.

The hierarchy is the body's 24 joints, each ``OFFSET`` its rest position (at the track's mean
β, as the GLB binds) less its parent's, in metres; the root's ``OFFSET`` is zero and its position
channels carry where it is. Then a line of channels per video frame at the video's rate: the
root's position, then every joint's rotation as Euler angles in degrees, ``Zrotation Xrotation
Yrotation`` (the rotation is ``Rz · Rx · Ry``, each about the joint's own turned axes: what BVH
readers compose). Leaf joints end in an ``End Site`` at their own position.

Axes as the GLB and the OBJ and PLY files: y up, facing +z, the rest body's own frame. The
result's rotations (``rotmat``) are local to each parent in that frame, except the root's,
which turns the body into OpenCV's camera frame (x right, y down, z forward); a half turn
``T`` about x brings that frame to y up, so the root's rotation is ``T · R_root`` and its
position ``T · (rest root + translation)``, where the GLB puts it.

A track that the tracker bridged has no gaps in its frames; should one have a gap, the frames
in it hold the last pose, since BVH frames are evenly spaced.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from service.outputs.gltf import OPENCV_TO_GLTF
from service.pipeline.result import BodyTopology, TrackResult

ROTATION_CHANNELS = "Zrotation Xrotation Yrotation"
EULER_ORDER = "ZXY"  # scipy's intrinsic order for the channels above
ROOT_CHANNELS = f"Xposition Yposition Zposition {ROTATION_CHANNELS}"
DECIMALS = 6  # degrees and metres: far below the ±1e-4 rad a reader needs
INDENT = "  "


def track_bvh(track: TrackResult, body: BodyTopology, fps: float) -> str:
    """The BVH text of ``track`` (see the module) at ``fps`` frames a second."""
    parents = np.asarray(body.parents)
    rest = np.asarray(track.rest_joints, dtype=np.float64)  # (24, 3)
    lines = ["HIERARCHY"]
    _joint_lines(0, parents, rest, body.joint_names, lines, depth=0)
    rows = _row_of_each_frame(np.asarray(track.frame_ids))
    lines += ["MOTION", f"Frames: {len(rows)}", f"Frame Time: {1.0 / fps:.{DECIMALS + 2}f}"]
    rotations = np.asarray(track.rotmat, dtype=np.float64)  # (N, 24, 3, 3)
    turned_root = OPENCV_TO_GLTF @ rotations[:, 0]  # (N, 3, 3)
    positions = (rest[0] + np.asarray(track.translation, dtype=np.float64)) @ OPENCV_TO_GLTF.T
    with warnings.catch_warnings():
        # At ±90° about x, Euler angles lose a degree of freedom; scipy's still compose to R.
        warnings.filterwarnings("ignore", message="Gimbal lock detected")
        root_angles = Rotation.from_matrix(turned_root).as_euler(EULER_ORDER, degrees=True)
        joint_angles = (
            Rotation.from_matrix(rotations[:, 1:].reshape(-1, 3, 3))
            .as_euler(EULER_ORDER, degrees=True)
            .reshape(len(rotations), -1, 3)
        )  # (N, 23, 3)
    order = _depth_first(parents)
    for row in rows:
        values = [*positions[row], *root_angles[row]]
        for joint in order[1:]:
            values.extend(joint_angles[row, joint - 1])
        lines.append(" ".join(f"{value:.{DECIMALS}f}" for value in values))
    return "\n".join(lines) + "\n"


def write_track_bvh(track: TrackResult, body: BodyTopology, fps: float, path: Path) -> Path:
    """Write :func:`track_bvh` to ``path``; return it."""
    path.write_text(track_bvh(track, body, fps), encoding="ascii")
    return path


def _joint_lines(
    joint: int,
    parents: np.ndarray,
    rest: np.ndarray,
    names: tuple[str, ...],
    lines: list[str],
    depth: int,
) -> None:
    """The hierarchy's lines of ``joint`` and its descendants, children in joint order."""
    pad = INDENT * depth
    if joint == 0:
        lines.append(f"ROOT {names[joint]}")
        offset, channels = np.zeros(3), f"CHANNELS 6 {ROOT_CHANNELS}"
    else:
        lines.append(f"{pad}JOINT {names[joint]}")
        offset, channels = rest[joint] - rest[parents[joint]], f"CHANNELS 3 {ROTATION_CHANNELS}"
    inner = pad + INDENT
    lines += [f"{pad}{{", f"{inner}OFFSET {_vector(offset)}", f"{inner}{channels}"]
    children = np.flatnonzero(parents == joint)
    for child in children:
        _joint_lines(int(child), parents, rest, names, lines, depth + 1)
    if len(children) == 0:
        lines += [f"{inner}End Site", f"{inner}{{", f"{inner}{INDENT}OFFSET 0 0 0", f"{inner}}}"]
    lines.append(f"{pad}}}")


def _depth_first(parents: np.ndarray) -> list[int]:
    """Joints in the order the hierarchy lists them (their channels' order in a frame)."""
    order: list[int] = []

    def visit(joint: int) -> None:
        order.append(joint)
        for child in np.flatnonzero(parents == joint):
            visit(int(child))

    visit(0)
    return order


def _row_of_each_frame(frame_ids: np.ndarray) -> list[int]:
    """For each video frame from the track's first to its last, the row that poses it (the
    last one seen at or before it)."""
    frames = np.arange(frame_ids[0], frame_ids[-1] + 1)
    return (np.searchsorted(frame_ids, frames, side="right") - 1).tolist()


def _vector(values: np.ndarray) -> str:
    return " ".join(f"{value:.{DECIMALS}f}" for value in values)
