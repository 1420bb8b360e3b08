"""The bundle loader: a manifest that validates, files checked by sha256, clear errors, sessions.

The bundle here is made by hand (small Identity graphs, a four-vertex body), without torch: the
loader is the service's and must work where torch is not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from service.bundle import (
    CPU_PROVIDER,
    FACES_FILE,
    JOINT_REGRESSORS_FILE,
    MANIFEST_FILE,
    PARENTS_FILE,
    SCHEMA_VERSION,
    WEIGHTS_FILE,
    BodySpec,
    BundleChecksumError,
    BundleFileMissingError,
    DetectorSpec,
    FrontendSpec,
    GraphFiles,
    InputSpec,
    KeypointSpec,
    LandmarkInputSpec,
    Manifest,
    Provenance,
    WindowSpec,
    default_providers,
    file_sha256,
    load_bundle,
)
from service.pipeline.landmark_features import LANDMARK_FEATURE_CHANNELS, LANDMARK_FEATURE_SHAPE
from service.pipeline.landmarks import LANDMARK_NAMES

REPO = Path(__file__).resolve().parents[2]
PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
JOINTS = tuple(f"joint_{j}" for j in range(len(PARENTS)))
NUM_VERTICES = 4
FACES = np.array([[0, 1, 2], [0, 2, 3]])
OPSET = 17
IMAGE_INPUT = InputSpec(image_size=64, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), crop_scale=1.2)
LANDMARK_INPUT = LandmarkInputSpec(
    kind="landmarks", crop_scale=1.2, channels=LANDMARK_FEATURE_CHANNELS
)
IR_VERSION = 8  # the one of opset 17: onnxruntime refuses files newer than it knows


def identity_graph(path: Path) -> None:
    """An ONNX file whose graph returns its float input ``x`` as ``y``."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
    onnx.save(model, str(path))


def frontend_spec() -> FrontendSpec:
    """The front-end of a test bundle: Identity graphs described as NanoDet and BlazePose."""
    return FrontendSpec(
        detector=DetectorSpec(
            file="detector.onnx",
            model="test",
            input_name="x",
            input_size=416,
            channels_first=True,
            colour_order="bgr",
            mean=(103.53, 116.28, 123.675),
            std=(57.375, 57.12, 58.395),
            scores=("y",),
            distances=("y",),
            strides=(8,),
            bins=11,
            classes=("person",),
            person_class=0,
        ),
        keypoints=KeypointSpec(
            file="keypoints.onnx",
            model="test",
            input_name="x",
            input_size=256,
            colour_order="rgb",
            scale=1 / 255,
            outputs={"landmarks": "y", "pose_flag": "y", "heatmaps": "y", "world_landmarks": "y"},
            landmark_names=LANDMARK_NAMES,
        ),
        source={"test": True},
    )


def make_bundle(folder: Path, *, landmarks: bool = False) -> Manifest:
    """A small valid bundle in ``folder``: fp32 graphs, the front-end's, the body's arrays,
    the manifest. With ``landmarks``, a keypoint family's: no encoder, landmark input."""
    folder.mkdir(parents=True, exist_ok=True)
    graphs = GraphFiles(
        encoder=None if landmarks else "encoder.onnx", temporal="temporal.onnx", body="body.onnx"
    )
    frontend = frontend_spec()
    for name in [*graphs.names(), frontend.detector.file, frontend.keypoints.file]:
        identity_graph(folder / name)
    weights = np.full((NUM_VERTICES, len(PARENTS)), 1.0 / len(PARENTS), dtype=np.float32)
    np.save(folder / FACES_FILE, FACES)
    np.save(folder / WEIGHTS_FILE, weights)
    np.save(folder / PARENTS_FILE, np.array(PARENTS))
    np.savez(folder / JOINT_REGRESSORS_FILE, smpl24=weights.T.copy())
    names = [*graphs.names(), FACES_FILE, WEIGHTS_FILE, PARENTS_FILE]
    names += [JOINT_REGRESSORS_FILE, frontend.detector.file, frontend.keypoints.file]
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        family="spsnet",
        recipe="test",
        input=LANDMARK_INPUT if landmarks else IMAGE_INPUT,
        window=WindowSpec(length=16, stride=8, dynamic_length=True),
        feature_shape=LANDMARK_FEATURE_SHAPE if landmarks else (3,),
        body=BodySpec(
            name="test",
            num_vertices=NUM_VERTICES,
            num_faces=len(FACES),
            joint_names=JOINTS,
            parents=PARENTS,
            joint_sets={"smpl24": JOINTS},
        ),
        variants={"fp32": graphs},
        frontend=frontend,
        files={name: file_sha256(folder / name) for name in names},
        provenance=Provenance(
            checkpoint="runs/x/best.pt",
            checkpoint_sha256="0" * 64,
            recipe={"name": "test"},
            training_data=("train.pt",),
            parity={"fp32": {"temporal.rotmat": 0.0}},
            exporter="meshcast test",
            torch_version="none",
            onnx_version=onnx.__version__,
            onnxruntime_version="none",
            opset=OPSET,
            created=datetime.now(UTC),
        ),
    )
    (folder / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2))
    return manifest


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    make_bundle(tmp_path / "bundle")
    return tmp_path / "bundle"


@pytest.fixture
def landmark_bundle_dir(tmp_path: Path) -> Path:
    make_bundle(tmp_path / "landmarks", landmarks=True)
    return tmp_path / "landmarks"


def edit_manifest(folder: Path, **changes: object) -> None:
    path = folder / MANIFEST_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_a_bundle_loads_with_its_arrays(bundle_dir):
    bundle = load_bundle(bundle_dir)
    assert bundle.manifest.family == "spsnet"
    assert bundle.manifest.window.dynamic_length
    np.testing.assert_array_equal(bundle.faces, FACES)
    assert bundle.skinning_weights.shape == (NUM_VERTICES, len(PARENTS))
    assert tuple(bundle.parents.tolist()) == PARENTS
    assert bundle.joint_regressors["smpl24"].shape == (len(PARENTS), NUM_VERTICES)


def test_the_manifest_round_trips_through_json(bundle_dir):
    written = json.loads((bundle_dir / MANIFEST_FILE).read_text())
    assert Manifest.model_validate(written) == load_bundle(bundle_dir).manifest


@pytest.mark.parametrize("name", ["temporal.onnx", "detector.onnx", "keypoints.onnx"])
def test_a_missing_file_is_named(bundle_dir, name):
    (bundle_dir / name).unlink()
    with pytest.raises(BundleFileMissingError, match=rf"lacks {name}") as error:
        load_bundle(bundle_dir)
    assert isinstance(error.value, FileNotFoundError)


@pytest.mark.parametrize("name", [WEIGHTS_FILE, "detector.onnx", "keypoints.onnx"])
def test_a_corrupted_file_is_named(bundle_dir, name):
    data = bytearray((bundle_dir / name).read_bytes())
    data[-1] ^= 0xFF  # one flipped byte
    (bundle_dir / name).write_bytes(bytes(data))
    with pytest.raises(BundleChecksumError, match=rf"{name} .* sha256") as error:
        load_bundle(bundle_dir)
    assert isinstance(error.value, ValueError)


def test_the_frontend_is_described_in_the_manifest(bundle_dir):
    frontend = load_bundle(bundle_dir).manifest.frontend
    assert frontend.keypoints.landmark_names == LANDMARK_NAMES
    assert frontend.detector.colour_order == "bgr"
    assert frontend.keypoints.outputs.keys() == {
        "landmarks",
        "pose_flag",
        "heatmaps",
        "world_landmarks",
    }


def test_a_folder_without_manifest_is_not_a_bundle(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model bundle"):
        load_bundle(tmp_path)


def test_another_schema_version_is_refused(bundle_dir):
    edit_manifest(bundle_dir, schema_version=SCHEMA_VERSION + 1)
    with pytest.raises(ValueError, match="schema version"):
        load_bundle(bundle_dir)


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"files": {"../outside.onnx": "0" * 64}}, "files"),
        ({"family": "vibe"}, "family"),
        ({"variants": {}}, "fp32"),
        ({"frontend": None}, "frontend"),
    ],
)
def test_an_invalid_manifest_is_one_readable_line(bundle_dir, changes, where):
    edit_manifest(bundle_dir, **changes)
    with pytest.raises(ValueError, match="not a valid manifest") as error:
        load_bundle(bundle_dir)
    message = str(error.value)
    assert "\n" not in message
    assert where in message


def test_sessions_run_on_the_cpu(bundle_dir):
    sessions = load_bundle(bundle_dir).sessions(providers=[CPU_PROVIDER])
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    graphs = (sessions.encoder, sessions.temporal, sessions.body, sessions.detector)
    for session in (*graphs, sessions.keypoints):
        np.testing.assert_array_equal(session.run(None, {"x": x})[0], x)
    assert default_providers()[-1] == CPU_PROVIDER


def test_sessions_take_a_thread_count(bundle_dir):
    sessions = load_bundle(bundle_dir).sessions(providers=[CPU_PROVIDER], threads=1)
    for session in (sessions.encoder, sessions.body, sessions.detector, sessions.keypoints):
        options = session.get_session_options()
        assert options.intra_op_num_threads == options.inter_op_num_threads == 1


def test_a_precision_the_bundle_lacks_is_refused(bundle_dir):
    with pytest.raises(ValueError, match="no fp16 graphs"):
        load_bundle(bundle_dir).sessions("fp16")


def test_the_loader_needs_no_torch():
    code = "import sys, service.bundle; assert 'torch' not in sys.modules, 'torch imported'"
    probe = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert probe.returncode == 0, probe.stderr


def test_a_landmark_bundle_has_no_encoder(landmark_bundle_dir):
    bundle = load_bundle(landmark_bundle_dir)
    assert isinstance(bundle.manifest.input, LandmarkInputSpec)
    assert bundle.manifest.input.channels == LANDMARK_FEATURE_CHANNELS
    assert bundle.manifest.feature_shape == LANDMARK_FEATURE_SHAPE
    assert bundle.manifest.variants["fp32"].encoder is None
    assert not (landmark_bundle_dir / "encoder.onnx").exists()
    sessions = bundle.sessions(providers=[CPU_PROVIDER], threads=1)
    assert sessions.encoder is None
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(sessions.temporal.run(None, {"x": x})[0], x)
    with pytest.raises(ValueError, match="no encoder graph"):
        bundle.graph_path("encoder", "fp32")


def test_the_input_kind_is_written_and_read_back(bundle_dir, landmark_bundle_dir):
    for folder, kind in ((bundle_dir, "image"), (landmark_bundle_dir, "landmarks")):
        written = json.loads((folder / MANIFEST_FILE).read_text())
        assert written["input"]["kind"] == kind
        assert load_bundle(folder).manifest.input.kind == kind


def test_crops_need_an_encoder(landmark_bundle_dir):
    edit_manifest(landmark_bundle_dir, input=IMAGE_INPUT.model_dump(mode="json"))
    with pytest.raises(ValueError, match="reads crops needs an encoder"):
        load_bundle(landmark_bundle_dir)


def test_landmarks_take_no_encoder(bundle_dir):
    landmarks = LANDMARK_INPUT.model_dump(mode="json")
    edit_manifest(bundle_dir, input=landmarks, feature_shape=list(LANDMARK_FEATURE_SHAPE))
    with pytest.raises(ValueError, match="reads landmarks takes no encoder"):
        load_bundle(bundle_dir)


def test_landmark_features_must_end_in_the_channels(landmark_bundle_dir):
    edit_manifest(landmark_bundle_dir, feature_shape=[33, 5])
    with pytest.raises(ValueError, match="channels"):
        load_bundle(landmark_bundle_dir)


def test_a_schema_2_bundle_is_refused(bundle_dir):
    """Bundles exported before the keypoint families (no input kind) are exported again."""
    edit_manifest(bundle_dir, schema_version=2)
    with pytest.raises(ValueError, match="schema version 2; this meshcast reads version 3"):
        load_bundle(bundle_dir)
