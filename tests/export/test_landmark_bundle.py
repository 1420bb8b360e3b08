"""Export of the keypoint families: an SPS-Net and a MAED on landmarks, tiny and untrained
(seeded), exported once for the module. Their bundles have no encoder: the temporal graph is
the whole network, on landmarks ``(B, T, 33, 6)``. Also the body graph without the stand-in's
all-zero pose correctives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from click.testing import CliRunner

from export.benchmark import benchmark_bundle, eager_graphs
from export.bundle import export_onnx
from export.graphs import BodyGraph, body_graph, example_landmarks, network_graphs
from meshcast.cli import cli
from service.bundle import CPU_PROVIDER, LandmarkInputSpec, Sessions, load_bundle
from tests.support.bundles import Exported, landmark_bundle
from training.body import BodyModel, load_body_model
from training.geometry import axis_angle_to_rotmat
from training.models.landmark_input import LANDMARK_CHANNELS
from training.models.maed import MAED
from training.models.resnet import ResNet50
from training.models.spsnet import SPSNet
from training.train.checkpoint import load_network

TOLERANCE = 1e-4  # on rotation matrix entries and camera, as the image families' export
BODY_TOLERANCE = 1e-5  # metres
FP16_TOLERANCE = 1e-2
CONTROL_FLOW = {"Loop", "If", "Scan"}
SPSNET_WINDOW, MAED_WINDOW = 8, 4  # tests/support/bundles.py's LANDMARK_BUNDLES
CROP_SCALE = 1.2  # the keypoint recipes'
FLOAT32_BYTES = 4
# body.onnx without the correctives holds at most this share of what they alone would take.
BODY_SHARE_OF_CORRECTIVES = 0.25
# Pose correctives of a test body: small offsets (metres per unit of R - I), as SMPL's are.
POSEDIRS_STD = 0.01
BODY_VERTEX_STEP = 50  # the small test body keeps one stand-in vertex in this many


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Exported]:
    cases = {}
    for family, fp16 in (("spsnet", False), ("maed", True)):
        bundle = load_bundle(landmark_bundle(tmp_path_factory.mktemp(family), family, fp16=fp16))
        recipe, network = load_network(Path(bundle.manifest.provenance.checkpoint))
        network.eval()
        sessions = bundle.sessions(providers=[CPU_PROVIDER], threads=1)
        cases[family] = Exported(bundle, sessions, recipe, network)
    return cases


@pytest.fixture(scope="module")
def body() -> BodyModel:
    return load_body_model("standin")


def landmarks(batch: int, frames: int, seed: int) -> np.ndarray:
    """``(B, T, 33, 6)`` float32 landmarks in the service's ranges, some frames all zeros."""
    generator = torch.Generator().manual_seed(seed)
    return example_landmarks(batch, frames, generator).numpy()


def torch_outputs(case: Exported, windows: np.ndarray) -> dict[str, np.ndarray]:
    with torch.no_grad():
        out = case.network(torch.from_numpy(windows))
    return {name: out[name].numpy() for name in ("rotmat", "betas", "cam")}


def onnx_outputs(sessions: Sessions, windows: np.ndarray) -> dict[str, np.ndarray]:
    rotmat, betas, cam = sessions.temporal.run(None, {"features": windows})
    return {"rotmat": rotmat, "betas": betas, "cam": cam}


def max_errors(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> dict[str, float]:
    assert {k: v.shape for k, v in got.items()} == {k: v.shape for k, v in expected.items()}
    return {name: float(np.abs(got[name] - expected[name]).max()) for name in expected}


@pytest.mark.parametrize("family", ["spsnet", "maed"])
@pytest.mark.parametrize("batch", [1, 3])
def test_landmark_bundle_matches_pytorch(exported, body, family, batch):
    """Landmarks → temporal → body on onnxruntime equals the network and the body model, at
    batch sizes other than the trace's."""
    case = exported[family]
    windows = landmarks(batch, case.bundle.manifest.window.length, seed=batch)
    got, expected = onnx_outputs(case.sessions, windows), torch_outputs(case, windows)
    assert max(max_errors(got, expected).values()) <= TOLERANCE
    frames = batch * case.bundle.manifest.window.length
    vertices, joints = case.sessions.body.run(
        None,
        {
            "rotmat": got["rotmat"].reshape(frames, 24, 3, 3),
            "betas": got["betas"].reshape(frames, -1),
        },
    )
    with torch.no_grad():
        posed = body(
            torch.from_numpy(expected["rotmat"]).flatten(0, 1),
            torch.from_numpy(expected["betas"]).flatten(0, 1),
        )
    assert np.abs(vertices - posed.vertices.numpy()).max() <= TOLERANCE
    assert np.abs(joints - posed.joints.numpy()).max() <= TOLERANCE


@pytest.mark.parametrize("frames", [3, SPSNET_WINDOW, 13])
def test_spsnet_landmarks_take_any_window(exported, frames):
    case = exported["spsnet"]
    assert case.bundle.manifest.window.dynamic_length
    assert [i.shape for i in case.sessions.temporal.get_inputs()] == [["batch", "window", 33, 6]]
    windows = landmarks(2, frames, seed=frames)
    errors = max_errors(onnx_outputs(case.sessions, windows), torch_outputs(case, windows))
    assert max(errors.values()) <= TOLERANCE, errors


def test_maed_landmarks_keep_their_window(exported):
    case = exported["maed"]
    window = case.bundle.manifest.window
    assert (window.length, window.dynamic_length) == (MAED_WINDOW, False)
    assert [i.shape for i in case.sessions.temporal.get_inputs()] == [["batch", MAED_WINDOW, 33, 6]]


@pytest.mark.parametrize("family", ["spsnet", "maed"])
def test_the_manifest_describes_landmarks_and_no_encoder(exported, family):
    case = exported[family]
    manifest = case.bundle.manifest
    assert manifest.family == family
    assert isinstance(manifest.input, LandmarkInputSpec)
    assert manifest.input.kind == "landmarks"
    assert (manifest.input.crop_scale, manifest.input.channels) == (CROP_SCALE, LANDMARK_CHANNELS)
    assert manifest.feature_shape == (33, len(LANDMARK_CHANNELS))
    assert all(files.encoder is None for files in manifest.variants.values())
    assert not list(case.bundle.path.glob("encoder*"))
    assert case.sessions.encoder is None
    for precision, errors in manifest.provenance.parity.items():
        assert not [name for name in errors if name.startswith("encoder")], precision
    assert max(manifest.provenance.parity["fp32"].values()) <= TOLERANCE
    (data,) = manifest.provenance.training_data
    assert data.startswith("synthetic landmarks (standin body): clips backflip, cartwheel")


@pytest.mark.parametrize("family", ["spsnet", "maed"])
def test_landmark_temporal_graph_has_no_control_flow(exported, family):
    model = onnx.load(str(exported[family].bundle.graph_path("temporal", "fp32")))
    assert not CONTROL_FLOW & {node.op_type for node in model.graph.node}


def test_fp16_variants_skip_the_encoder_and_run_close_to_pytorch(exported):
    case = exported["maed"]
    manifest = case.bundle.manifest
    assert set(manifest.variants) == {"fp32", "fp16"}
    assert manifest.variants["fp16"].names() == ["temporal.fp16.onnx", "body.fp16.onnx"]
    assert manifest.provenance.parity["fp16"].keys() == manifest.provenance.parity["fp32"].keys()
    fp16 = case.bundle.sessions("fp16", providers=[CPU_PROVIDER], threads=1)
    windows = landmarks(1, MAED_WINDOW, seed=7)
    errors = max_errors(onnx_outputs(fp16, windows), torch_outputs(case, windows))
    assert errors["rotmat"] <= FP16_TOLERANCE, errors


def test_a_landmark_network_takes_no_image_encoder(exported):
    case = exported["spsnet"]
    assert isinstance(case.network, SPSNet)
    with pytest.raises(ValueError, match="reads landmarks"):
        network_graphs(case.recipe, case.network, (case.recipe, ResNet50()))
    graphs = network_graphs(case.recipe, case.network)
    assert graphs.encoder is None
    assert isinstance(exported["maed"].network, MAED)
    assert network_graphs(exported["maed"].recipe, exported["maed"].network).encoder is None


def test_the_standin_body_graph_leaves_out_its_zero_correctives(exported, body):
    """The stand-in's posedirs are all zero: body.onnx holds none of them, and still poses the
    body as the body model does."""
    assert not body.posedirs.any()
    assert BodyGraph(body).posedirs is None
    corrective_bytes = body.posedirs.numel() * FLOAT32_BYTES
    size = exported["spsnet"].bundle.graph_path("body", "fp32").stat().st_size
    assert size < BODY_SHARE_OF_CORRECTIVES * corrective_bytes, (size, corrective_bytes)
    session = exported["spsnet"].sessions.body
    generator = torch.Generator().manual_seed(3)
    rotmat = axis_angle_to_rotmat(0.5 * torch.randn(3, 24, 3, generator=generator))
    betas = torch.randn(3, 10, generator=generator)
    vertices, joints = session.run(None, {"rotmat": rotmat.numpy(), "betas": betas.numpy()})
    with torch.no_grad():
        expected = body(rotmat, betas)
    assert np.abs(vertices - expected.vertices.numpy()).max() <= BODY_TOLERANCE
    assert np.abs(joints - expected.joints.numpy()).max() <= BODY_TOLERANCE


def test_real_correctives_stay_in_the_body_graph(body, tmp_path):
    """A body whose posedirs are not zero (as SMPL's) keeps them, in PyTorch and in ONNX."""
    keep = np.arange(0, body.num_vertices, BODY_VERTEX_STEP)
    plain, small = body.restricted(keep), body.restricted(keep)  # zero correctives, as given
    generator = torch.Generator().manual_seed(0)
    small.posedirs = POSEDIRS_STD * torch.randn(small.posedirs.shape, generator=generator)
    assert BodyGraph(small).posedirs is not None
    rotmat = axis_angle_to_rotmat(0.5 * torch.randn(3, 24, 3, generator=generator))
    betas = torch.randn(3, 10, generator=generator)
    with torch.no_grad():
        expected = small(rotmat, betas)
        uncorrected, _ = BodyGraph(plain)(rotmat, betas)
    assert np.abs(uncorrected.numpy() - expected.vertices.numpy()).max() > BODY_TOLERANCE
    path = tmp_path / "body.onnx"
    export_onnx(body_graph(small), path)
    session = onnxruntime.InferenceSession(str(path), providers=[CPU_PROVIDER])
    vertices, joints = session.run(None, {"rotmat": rotmat.numpy(), "betas": betas.numpy()})
    assert np.abs(vertices - expected.vertices.numpy()).max() <= BODY_TOLERANCE
    assert np.abs(joints - expected.joints.numpy()).max() <= BODY_TOLERANCE


def test_bench_export_times_the_two_graphs(exported):
    """`meshcast bench export` on a bundle without an encoder: temporal and body only."""
    bundle = exported["maed"].bundle
    graphs = eager_graphs(bundle)
    assert set(graphs) == {"temporal", "body"}
    timings = benchmark_bundle(bundle, graphs, batches=(1,), repeats=1, threads=1)
    assert [t.graph for t in timings] == ["temporal", "body"]
    result = CliRunner().invoke(
        cli, ["bench", "export", str(bundle.path), "--batch", "1", "--repeats", "1"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["image_size"] is None
    assert {row["graph"] for row in report["results"]} == {"temporal", "body", "temporal+body"}
