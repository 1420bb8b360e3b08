"""The animated GLB: its structure, its skinning evaluated as glTF defines it, and the Khronos
validator's verdict."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pygltflib as gl
import pytest
import torch
import trimesh
from scipy.spatial.transform import Rotation

from service.outputs.gltf import (
    INFLUENCES_PER_VERTEX,
    OPENCV_TO_GLTF,
    joint_quaternions,
    top_influences,
    write_track_glb,
)
from service.pipeline.result import TrackResult, VideoResult
from training.body import SMPL_JOINT_NAMES as JOINT_NAMES
from training.body import BodyModel

NUM_JOINTS = 24
# The skinned body reproduces the body model to float32 precision with the GLB's own four
# weights a vertex. With all of the stand-in's weights (up to 7 a vertex, 10 % of the weight
# beyond the fourth at worst) the test's random poses move 99 % of the vertices less than
# half a millimetre and none more than 8.3 mm.
SAME_WEIGHTS_TOLERANCE_M = 1e-5
ALL_WEIGHTS_TOLERANCE_M = 1e-2
ALL_WEIGHTS_PERCENTILE = 99
ALL_WEIGHTS_PERCENTILE_TOLERANCE_M = 1e-3

VALIDATOR_VERSION = "2.0.0-dev.3.10"
VALIDATOR_DIR = Path.home() / ".cache" / "meshcast" / f"gltf-validator-{VALIDATOR_VERSION}"
NPM_INSTALL_TIMEOUT_S = 120
VALIDATE_TIMEOUT_S = 60
VALIDATE_SCRIPT = """
const fs = require("fs");
const validator = require("gltf-validator");
validator.validateBytes(new Uint8Array(fs.readFileSync(process.argv[1])))
    .then((report) => console.log(JSON.stringify(report.issues)));
"""

_DTYPES = {gl.FLOAT: np.float32, gl.UNSIGNED_SHORT: np.uint16, gl.UNSIGNED_INT: np.uint32}
_WIDTHS = {gl.SCALAR: 1, gl.VEC3: 3, gl.VEC4: 4, gl.MAT4: 16}


def accessor(gltf: gl.GLTF2, index: int) -> np.ndarray:
    """An accessor's ``(count, components)`` elements read from the GLB's binary chunk."""
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    width = _WIDTHS[acc.type]
    values = np.frombuffer(
        gltf.binary_blob(),
        dtype=_DTYPES[acc.componentType],
        count=acc.count * width,
        offset=(view.byteOffset or 0) + (acc.byteOffset or 0),
    )
    return values.reshape(acc.count, width)


def world_matrices(gltf: gl.GLTF2, key: int) -> dict[int, np.ndarray]:
    """Every node's ``(4, 4)`` world transform at animation key ``key`` (glTF's rules: local
    = T · R · S, world = parent's world · local; animated paths replace the node's own)."""
    animated: dict[tuple[int, str], np.ndarray] = {}
    for channel in gltf.animations[0].channels:
        sampler = gltf.animations[0].samplers[channel.sampler]
        animated[channel.target.node, channel.target.path] = accessor(gltf, sampler.output)[key]
    worlds: dict[int, np.ndarray] = {}

    def visit(node_index: int, parent: np.ndarray) -> None:
        node = gltf.nodes[node_index]
        local = np.eye(4)
        rotation = animated.get((node_index, "rotation"), node.rotation or [0, 0, 0, 1])
        local[:3, :3] = Rotation.from_quat(np.asarray(rotation, dtype=np.float64)).as_matrix()
        local[:3, 3] = animated.get((node_index, "translation"), node.translation or [0, 0, 0])
        worlds[node_index] = parent @ local
        for child in node.children or []:
            visit(child, worlds[node_index])

    for root in gltf.scenes[gltf.scene].nodes:
        visit(root, np.eye(4))
    return worlds


def skinned_vertices(gltf: gl.GLTF2, key: int) -> np.ndarray:
    """``(V, 3)`` the skinned mesh at animation key ``key``, in glTF's world frame."""
    primitive = gltf.meshes[0].primitives[0]
    skin = gltf.skins[0]
    positions = accessor(gltf, primitive.attributes.POSITION).astype(np.float64)
    joints = accessor(gltf, primitive.attributes.JOINTS_0)
    weights = accessor(gltf, primitive.attributes.WEIGHTS_0).astype(np.float64)
    inverse_bind = accessor(gltf, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
    worlds = world_matrices(gltf, key)
    joint_matrices = np.stack(
        [worlds[node] @ ibm for node, ibm in zip(skin.joints, inverse_bind, strict=True)]
    )  # (24, 4, 4)
    blended = np.einsum("vi,vijk->vjk", weights, joint_matrices[joints])  # (V, 4, 4)
    homogeneous = np.concatenate([positions, np.ones((len(positions), 1))], axis=1)
    return np.einsum("vjk,vk->vj", blended, homogeneous)[:, :3]


def gl_fps(gltf: gl.GLTF2) -> float:
    """The frame rate the animation's extras state."""
    return float(gltf.animations[0].extras["fps"])


@pytest.fixture(scope="module")
def glb(tmp_path_factory: pytest.TempPathFactory, video_result: VideoResult) -> Path:
    path = tmp_path_factory.mktemp("gltf") / "track_002.glb"
    return write_track_glb(video_result.tracks[1], video_result.body, video_result.fps, path)


@pytest.fixture(scope="module")
def gltf(glb: Path) -> gl.GLTF2:
    return gl.GLTF2.load(str(glb))


@pytest.fixture(scope="module")
def track(video_result: VideoResult) -> TrackResult:
    return video_result.tracks[1]


def test_skin_has_the_body_joints_in_its_hierarchy(
    gltf: gl.GLTF2, video_result: VideoResult
) -> None:
    skin = gltf.skins[0]
    assert len(skin.joints) == NUM_JOINTS
    names = [gltf.nodes[node].name for node in skin.joints]
    assert names == list(video_result.body.joint_names)
    node_to_joint = {node: joint for joint, node in enumerate(skin.joints)}
    for joint, node in enumerate(skin.joints):
        for child in gltf.nodes[node].children or []:
            assert video_result.body.parents[node_to_joint[child]] == joint
    assert gltf.accessors[skin.inverseBindMatrices].count == NUM_JOINTS


def test_mesh_accessors(gltf: gl.GLTF2, video_result: VideoResult, track: TrackResult) -> None:
    primitive = gltf.meshes[0].primitives[0]
    vertex_count = len(track.rest_vertices)
    position = gltf.accessors[primitive.attributes.POSITION]
    assert position.count == vertex_count
    np.testing.assert_array_equal(position.min, track.rest_vertices.min(axis=0))
    np.testing.assert_array_equal(position.max, track.rest_vertices.max(axis=0))
    np.testing.assert_array_equal(
        accessor(gltf, primitive.attributes.POSITION), track.rest_vertices
    )
    faces = accessor(gltf, primitive.indices).reshape(-1, 3)
    np.testing.assert_array_equal(faces, video_result.body.faces)
    weights = accessor(gltf, primitive.attributes.WEIGHTS_0)
    assert weights.shape == (vertex_count, INFLUENCES_PER_VERTEX)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)


def test_animation_keys_are_the_track_frames(gltf: gl.GLTF2, track: TrackResult) -> None:
    animation = gltf.animations[0]
    assert len(animation.channels) == NUM_JOINTS + 1  # a rotation per joint, the root's move
    key_input = gltf.accessors[animation.samplers[0].input]
    frames = len(track)
    assert key_input.count == frames
    seconds = (track.frame_ids - track.frame_ids[0]) / gl_fps(gltf)
    np.testing.assert_allclose(accessor(gltf, animation.samplers[0].input)[:, 0], seconds)
    assert key_input.min == [0.0]
    assert key_input.max[0] == pytest.approx(seconds[-1])
    assert animation.extras["frame_ids"] == track.frame_ids.tolist()


def test_animation_length_of_a_contiguous_track(tmp_path: Path, video_result: VideoResult) -> None:
    track = video_result.tracks[0]  # frames 0–3
    path = write_track_glb(track, video_result.body, video_result.fps, tmp_path / "t.glb")
    gltf = gl.GLTF2.load(str(path))
    key_input = gltf.accessors[gltf.animations[0].samplers[0].input]
    assert key_input.count == len(track)
    # N keys one frame apart: the last at (N - 1) / fps, the animation covering N / fps.
    assert key_input.max[0] + 1 / video_result.fps == pytest.approx(len(track) / video_result.fps)


def test_skinning_reproduces_every_frame(
    gltf: gl.GLTF2, track: TrackResult, video_result: VideoResult, body_model: BodyModel
) -> None:
    # The body model with the GLB's four weights per vertex: the same deformation exactly.
    joints, weights = top_influences(video_result.body.skinning_weights)
    four_weights = np.zeros_like(video_result.body.skinning_weights)
    vertices = np.arange(len(four_weights))[:, None]
    np.add.at(four_weights, (vertices, joints), weights)  # unused slots add 0 to joint 0
    original = body_model.lbs_weights
    body_model.lbs_weights = torch.from_numpy(four_weights)
    try:
        with torch.no_grad():
            same_weights = body_model(torch.from_numpy(track.rotmat), torch.from_numpy(track.betas))
    finally:
        body_model.lbs_weights = original
    with torch.no_grad():
        all_weights = body_model(torch.from_numpy(track.rotmat), torch.from_numpy(track.betas))
    for key in range(len(track)):
        skinned = skinned_vertices(gltf, key)  # glTF's frame
        in_camera = skinned @ OPENCV_TO_GLTF  # back to OpenCV's (the turn is its own inverse)
        expected = same_weights.vertices[key].numpy() + track.translation[key]
        np.testing.assert_allclose(in_camera, expected, atol=SAME_WEIGHTS_TOLERANCE_M)
        body_vertices = all_weights.vertices[key].numpy()
        error = np.linalg.norm(in_camera - (body_vertices + track.translation[key]), axis=1)
        assert error.max() < ALL_WEIGHTS_TOLERANCE_M
        assert np.percentile(error, ALL_WEIGHTS_PERCENTILE) < ALL_WEIGHTS_PERCENTILE_TOLERANCE_M


def test_rest_pose_shows_upright(gltf: gl.GLTF2, track: TrackResult) -> None:
    # Without the animation, the nodes' own transforms bind every joint unrotated at its rest
    # position: the skinned mesh is the rest body, head up in glTF's y-up frame.
    gltf.animations[0].channels, channels = [], gltf.animations[0].channels
    try:
        rest = skinned_vertices(gltf, 0)
    finally:
        gltf.animations[0].channels = channels
    np.testing.assert_allclose(rest, track.rest_vertices, atol=SAME_WEIGHTS_TOLERANCE_M)
    head, pelvis = (track.rest_joints[JOINT_NAMES.index(name)] for name in ("head", "pelvis"))
    assert head[1] > pelvis[1]


def test_quaternions_are_continuous_over_time() -> None:
    # A joint turning past half a turn: scipy's quaternions would flip sign on the way.
    angles = np.linspace(0.0, 1.9 * np.pi, 12)
    rotmat = Rotation.from_rotvec(angles[:, None] * [0.0, 0.0, 1.0]).as_matrix()[:, None]
    quats = joint_quaternions(rotmat)[:, 0]  # (12, 4)
    assert (np.einsum("nc,nc->n", quats[1:], quats[:-1]) > 0).all()
    np.testing.assert_allclose(Rotation.from_quat(quats).as_matrix(), rotmat[:, 0], atol=1e-6)


def test_trimesh_reads_it(glb: Path, track: TrackResult, video_result: VideoResult) -> None:
    scene = trimesh.load(glb, force="scene")
    (mesh,) = scene.geometry.values()  # trimesh does not skin: the rest body
    np.testing.assert_array_equal(mesh.vertices, track.rest_vertices)
    np.testing.assert_array_equal(mesh.faces, video_result.body.faces)


@pytest.fixture(scope="session")
def gltf_validator() -> Path:
    """The Khronos glTF validator (npm ``gltf-validator``), installed once into the cache."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("the Khronos glTF validator runs on node and installs with npm: not found")
    if not (VALIDATOR_DIR / "node_modules" / "gltf-validator").is_dir():
        VALIDATOR_DIR.mkdir(parents=True, exist_ok=True)
        install = subprocess.run(
            [npm, "install", "--prefix", str(VALIDATOR_DIR), "--no-save", "--no-audit",
             "--no-fund", f"gltf-validator@{VALIDATOR_VERSION}"],
            capture_output=True, text=True, timeout=NPM_INSTALL_TIMEOUT_S, check=False,
        )  # fmt: skip
        if install.returncode != 0:
            pytest.skip(f"npm could not install gltf-validator: {install.stderr[-500:]}")
    return VALIDATOR_DIR


def test_khronos_validator_finds_no_issue(glb: Path, gltf_validator: Path) -> None:
    run = subprocess.run(
        ["node", "-e", VALIDATE_SCRIPT, str(glb)],
        cwd=gltf_validator, capture_output=True, text=True, timeout=VALIDATE_TIMEOUT_S,
        check=True,
    )  # fmt: skip
    issues = json.loads(run.stdout)
    assert issues["numErrors"] == 0, issues["messages"]
    assert issues["numWarnings"] == 0, issues["messages"]
