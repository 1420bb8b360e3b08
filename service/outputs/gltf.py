"""One track as an animated glTF binary (``.glb``): the body's mesh skinned on its skeleton.

What the file holds:

- a mesh: the track's rest-pose body (``rest_vertices`` at its mean β) and the body's faces,
  with ``JOINTS_0``/``WEIGHTS_0`` from the skinning weights: glTF gives a vertex four joints,
  so each keeps its :data:`INFLUENCES_PER_VERTEX` largest weights, renormalised to sum to one;
- a skin of the 24 joints: one node per joint in the body's hierarchy (``parents``), each at
  its rest position relative to its parent (``rest_joints``), with inverse bind matrices;
- one animation sampled at the video's frame rate, key ``i`` at
  ``(frame_ids[i] − frame_ids[0]) / fps`` seconds (time 0 is the track's first frame; the
  animation extras list its ``frame_ids``): per joint a rotation channel (quaternions x, y,
  z, w from ``rotmat``: the root's global orientation, the others relative to their parent,
  which is what a joint node's local rotation is, since every rest joint frame is unrotated);
  and a translation channel on the root joint, so the person moves through the scene as in
  the video. The body model's rest root joint is not at the origin and linear blend skinning
  keeps the posed root where it rests, so the root node's translation is the rest root
  position plus the frame's ``translation``.

Coordinates. Ours are OpenCV's camera frame, x right, y down, z forward; glTF's are y up, z
toward the viewer: a half turn about x between the two. A top node ``opencv_to_gltf`` carries
that turn, with the skeleton under it, so animation values stay in our frame: the root
joint's rotation is the frame's global orientation and its translation the rest root position
plus the frame's translation, as above. A viewer sees the body at
``turn · (posed vertex + translation)``: where the camera saw it, from behind the camera.

The bind pose is the body model's own rest pose, whose frame (y up, facing +z) is glTF's: the
mesh's positions are ``rest_vertices`` as they are, and each joint binds unrotated at its rest
position (inverse bind matrices are translations by ``−rest_joints``). For that, the root
joint's rest rotation is the half turn again (undoing the top node's) and its rest
translation the turned rest root position; the animation replaces both. A viewer that does
not play the animation (or does not skin) shows the body upright at the origin in its rest
pose. The skinned mesh node lies at the scene's root, as glTF ignores its transform.

Written with ``pygltflib``: its typed glTF objects and its GLB container writer (chunk
headers, alignment, padding) replace hand-packed bytes and JSON.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pygltflib as gl
from scipy.spatial.transform import Rotation

from service.pipeline.result import BodyTopology, TrackResult

INFLUENCES_PER_VERTEX = 4  # glTF's JOINTS_0/WEIGHTS_0 are VEC4
# OpenCV's camera frame → glTF's: a half turn about x, as a matrix and as a quaternion
# (x, y, z, w) = (sin(π/2)·x̂, cos(π/2)).
OPENCV_TO_GLTF = np.diag([1.0, -1.0, -1.0])
OPENCV_TO_GLTF_QUATERNION = [1.0, 0.0, 0.0, 0.0]
GLB_ALIGNMENT = 4  # bytes: every buffer view starts on a multiple of 4
HOMOGENEOUS = 4  # 4 × 4 matrices
GENERATOR = "meshcast"
# Nodes: the skinned mesh, the coordinate turn, then one per joint in the body's joint order.
MESH_NODE, TURN_NODE, FIRST_JOINT_NODE = 0, 1, 2

_COMPONENT_TYPES = {
    np.dtype(np.float32): gl.FLOAT,
    np.dtype(np.uint16): gl.UNSIGNED_SHORT,
    np.dtype(np.uint32): gl.UNSIGNED_INT,
}


def track_glb(track: TrackResult, body: BodyTopology, fps: float) -> bytes:
    """The GLB file of one track (see the module's docstring).

    Args:
        track: the person; ``rest_vertices``, ``rest_joints``, ``rotmat``, ``translation``
            and ``frame_ids`` are used.
        body: faces, parents, skinning weights and joint names.
        fps: the video's frame rate.
    """
    gltf = gl.GLTF2(asset=gl.Asset(generator=GENERATOR), scene=0)
    blob = bytearray()
    gltf.meshes.append(_skinned_mesh(gltf, blob, track, body))
    gltf.skins.append(_skin(gltf, blob, track, body))
    gltf.animations.append(_animation(gltf, blob, track, body, fps))
    gltf.nodes = [
        gl.Node(name=f"track_{track.track_id:03d}", mesh=0, skin=0),
        gl.Node(
            name="opencv_to_gltf",
            rotation=OPENCV_TO_GLTF_QUATERNION,
            children=[_joint_node(_root_joint(body))],
        ),
        *_joint_nodes(track, body),
    ]
    gltf.scenes.append(gl.Scene(nodes=[MESH_NODE, TURN_NODE]))
    gltf.buffers.append(gl.Buffer(byteLength=len(blob)))
    gltf.set_binary_blob(bytes(blob))
    return b"".join(gltf.save_to_bytes())


def write_track_glb(track: TrackResult, body: BodyTopology, fps: float, path: str | Path) -> Path:
    """Write :func:`track_glb` to ``path``; returns the path."""
    path = Path(path)
    path.write_bytes(track_glb(track, body, fps))
    return path


def top_influences(skinning_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each vertex's :data:`INFLUENCES_PER_VERTEX` heaviest joints and their weights.

    Args:
        skinning_weights: ``(V, J)`` weights, each row summing to one.

    Returns:
        ``joints (V, 4)`` uint16 joint indices, heaviest first, 0 where the weight is 0 (as
        glTF asks of unused ones), and ``weights (V, 4)`` float32 renormalised so that each
        row sums to one in float32.
    """
    weights = np.asarray(skinning_weights, dtype=np.float64)
    joints = np.argsort(-weights, axis=1, kind="stable")[:, :INFLUENCES_PER_VERTEX]
    kept = np.take_along_axis(weights, joints, axis=1)
    kept = (kept / kept.sum(axis=1, keepdims=True)).astype(np.float32)
    # The heaviest takes what float32 rounding left over, so the row sums to one exactly.
    kept[:, 0] = np.float32(1.0) - kept[:, 1:].sum(axis=1, dtype=np.float32)
    joints[kept == 0] = 0
    return joints.astype(np.uint16), kept


def joint_quaternions(rotmat: np.ndarray) -> np.ndarray:
    """``(N, J, 3, 3)`` rotations → ``(N, J, 4)`` float32 unit quaternions x, y, z, w.

    ``q`` and ``−q`` are one rotation: each frame's sign is chosen nearest to the frame
    before, so interpolating between keys takes the short way round.
    """
    frames, joints = rotmat.shape[:2]
    quats = Rotation.from_matrix(np.asarray(rotmat, dtype=np.float64).reshape(-1, 3, 3))
    xyzw = quats.as_quat().reshape(frames, joints, 4)  # scipy's order is glTF's: scalar last
    agrees = np.einsum("njc,njc->nj", xyzw[1:], xyzw[:-1]) >= 0  # (N - 1, J)
    signs = np.cumprod(np.where(agrees, 1.0, -1.0), axis=0)
    xyzw[1:] *= signs[..., None]
    return xyzw.astype(np.float32)


def _skinned_mesh(
    gltf: gl.GLTF2, blob: bytearray, track: TrackResult, body: BodyTopology
) -> gl.Mesh:
    """The rest body with its skinning attributes."""
    positions = np.asarray(track.rest_vertices, dtype=np.float32)  # (V, 3)
    joints, weights = top_influences(body.skinning_weights)  # (V, 4), (V, 4)
    attributes = gl.Attributes(
        POSITION=_add_accessor(gltf, blob, positions, gl.VEC3, gl.ARRAY_BUFFER, bounds=True),
        JOINTS_0=_add_accessor(gltf, blob, joints, gl.VEC4, gl.ARRAY_BUFFER),
        WEIGHTS_0=_add_accessor(gltf, blob, weights, gl.VEC4, gl.ARRAY_BUFFER),
    )
    indices = np.asarray(body.faces, dtype=np.uint32).ravel()  # (3F,)
    primitive = gl.Primitive(
        attributes=attributes,
        indices=_add_accessor(gltf, blob, indices, gl.SCALAR, gl.ELEMENT_ARRAY_BUFFER),
        mode=gl.TRIANGLES,
    )
    return gl.Mesh(name=body.name, primitives=[primitive])


def _skin(gltf: gl.GLTF2, blob: bytearray, track: TrackResult, body: BodyTopology) -> gl.Skin:
    """The 24 joints and their inverse bind matrices.

    Joint ``j`` binds unrotated at its rest position ``J_j`` (the top node's turn and the root
    node's rest turn cancel out; the translations below add up to ``J_j``), so its inverse
    bind matrix is the translation by ``−J_j``.
    """
    rest_joints = np.asarray(track.rest_joints, dtype=np.float64)  # (24, 3)
    inverse_bind = np.tile(np.eye(HOMOGENEOUS), (len(rest_joints), 1, 1))  # (24, 4, 4)
    inverse_bind[:, :3, 3] = -rest_joints
    column_major = inverse_bind.transpose(0, 2, 1).astype(np.float32)  # glTF's layout
    return gl.Skin(
        name=body.name,
        inverseBindMatrices=_add_accessor(gltf, blob, column_major, gl.MAT4),
        joints=[_joint_node(joint) for joint in range(len(rest_joints))],
        skeleton=_joint_node(_root_joint(body)),
    )


def _joint_nodes(track: TrackResult, body: BodyTopology) -> list[gl.Node]:
    """One node per joint in its bind pose: at its rest offset from its parent; the root
    turned back to the body model's frame, at its turned rest position."""
    parents = np.asarray(body.parents)
    rest_joints = np.asarray(track.rest_joints, dtype=np.float64)  # (24, 3)
    nodes = []
    for joint, parent in enumerate(parents.tolist()):
        children = [_joint_node(child) for child in np.flatnonzero(parents == joint).tolist()]
        node = gl.Node(name=body.joint_names[joint], children=children)
        if parent >= 0:
            node.translation = (rest_joints[joint] - rest_joints[parent]).tolist()
        else:
            node.translation = (OPENCV_TO_GLTF @ rest_joints[joint]).tolist()
            node.rotation = OPENCV_TO_GLTF_QUATERNION
        nodes.append(node)
    return nodes


def _animation(
    gltf: gl.GLTF2, blob: bytearray, track: TrackResult, body: BodyTopology, fps: float
) -> gl.Animation:
    """Per-joint rotations and the root's translation, one key per frame of the track."""
    frame_ids = np.asarray(track.frame_ids, dtype=np.int64)
    times = ((frame_ids - frame_ids[0]) / fps).astype(np.float32)  # (N,) seconds
    quaternions = joint_quaternions(np.asarray(track.rotmat))  # (N, 24, 4)
    root = _root_joint(body)
    root_translation = np.asarray(track.rest_joints[root], dtype=np.float64) + np.asarray(
        track.translation, dtype=np.float64
    )  # (N, 3)
    key_times = _add_accessor(gltf, blob, times, gl.SCALAR, bounds=True)
    outputs = [
        (joint, gl.ROTATION, _add_accessor(gltf, blob, quaternions[:, joint], gl.VEC4))
        for joint in range(quaternions.shape[1])
    ]
    outputs.append(
        (
            root,
            gl.TRANSLATION,
            _add_accessor(gltf, blob, root_translation.astype(np.float32), gl.VEC3),
        )
    )
    samplers: list[gl.AnimationSampler] = []
    channels: list[gl.AnimationChannel] = []
    for joint, path, values in outputs:
        channels.append(
            gl.AnimationChannel(
                sampler=len(samplers),
                target=gl.AnimationChannelTarget(node=_joint_node(joint), path=path),
            )
        )
        samplers.append(
            gl.AnimationSampler(input=key_times, output=values, interpolation=gl.ANIM_LINEAR)
        )
    return gl.Animation(
        name=f"track_{track.track_id:03d}",
        samplers=samplers,
        channels=channels,
        extras={"fps": fps, "frame_ids": frame_ids.tolist()},
    )


def _add_accessor(
    gltf: gl.GLTF2,
    blob: bytearray,
    array: np.ndarray,
    accessor_type: str,
    target: int | None = None,
    *,
    bounds: bool = False,
) -> int:
    """Append ``array`` (one element per row) to the binary chunk in a buffer view of its own
    and describe it with an accessor; returns the accessor's index.

    Args:
        gltf: the document the views and accessors are added to.
        blob: the binary chunk so far, padded to :data:`GLB_ALIGNMENT`.
        array: ``(count, ...)`` float32, uint16 or uint32, in glTF's memory layout.
        accessor_type: SCALAR, VEC3, VEC4 or MAT4.
        target: the buffer view's GPU binding (vertex attributes, indices), if any.
        bounds: write min and max per component (glTF requires them on positions and
            animation inputs).
    """
    array = np.ascontiguousarray(array)
    gltf.bufferViews.append(
        gl.BufferView(buffer=0, byteOffset=len(blob), byteLength=array.nbytes, target=target)
    )
    blob.extend(array.tobytes())
    blob.extend(bytes(-len(blob) % GLB_ALIGNMENT))
    accessor = gl.Accessor(
        bufferView=len(gltf.bufferViews) - 1,
        componentType=_COMPONENT_TYPES[array.dtype],
        count=len(array),
        type=accessor_type,
    )
    if bounds:
        components = array.reshape(len(array), -1)
        accessor.min = components.min(axis=0).tolist()
        accessor.max = components.max(axis=0).tolist()
    gltf.accessors.append(accessor)
    return len(gltf.accessors) - 1


def _root_joint(body: BodyTopology) -> int:
    """The joint without a parent."""
    return int(np.flatnonzero(np.asarray(body.parents) < 0)[0])


def _joint_node(joint: int) -> int:
    """The node index of a joint."""
    return FIRST_JOINT_NODE + joint
