"""Export: checkpoints of tiny networks → bundles whose graphs match PyTorch.

Two bundles are exported once for the module: a MAED (KTD decoder) with float16 variants, through
the Python API, and an SPS-Net that reads precomputed features, with the ResNet-50 of a second
checkpoint as its encoder, through the command line. The networks are untrained (seeded):
parity does not need trained weights.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from unittest.mock import patch

import cv2
import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from export.benchmark import benchmark_bundle, eager_graphs
from export.bundle import export_bundle
from export.graphs import BodyGraph, network_graphs, with_standardised_kernels
from meshcast.cli import cli, main
from service.bundle import CPU_PROVIDER, MANIFEST_FILE, Manifest, Sessions, load_bundle
from tests.support.bundles import Exported, tiny_checkpoint
from training.body import BodyModel, load_body_model
from training.data.batch import IMAGE_MEAN, IMAGE_STD
from training.data.crops import crop_transform, square_box, warp_to_crop
from training.geometry import axis_angle_to_rotmat
from training.models.maed import MAED
from training.models.spsnet import SPSNet
from training.recipes import Recipe
from training.synth.backgrounds import STREET_PATH
from training.train.checkpoint import load_network

TOLERANCE = 1e-4  # on rotation matrix entries, and metres on vertices and joints
FP16_TOLERANCE = 1e-2  # the float16 graphs: rotation matrix entries, and 1 cm
CROP_SIZE = 32  # small crops keep the ResNet-50 quick
CROP_SCALE = 1.2
SPSNET_WINDOW = 16  # the tiny SPS-Net's training window
CONTROL_FLOW = {"Loop", "If", "Scan"}
UINT8_MAX = 255.0
# Overrides of the tiny recipes: small crops, and a features-reading SPS-Net on 2048-d
# features (a ResNet-50's) with a 16-frame window.
RECIPES = {
    "maed": ("maed_tiny", {}),
    "encoder": (
        "spsnet_tiny_frames",
        {"data": {"train": ["frames.pt"], "crop_size": CROP_SIZE, "crop_scale": CROP_SCALE}},
    ),
    "spsnet": (
        "spsnet_tiny",
        {
            "model": {"feature_dim": 2048},
            "training": {"clip_length": SPSNET_WINDOW, "clip_stride": 4, "batch_size": 2,
                         "epochs": 1, "iterations_per_epoch": 1, "lr": 1e-4},
            "data": {"train": ["features.pt"]},
        },
    ),
}  # fmt: skip


def save_network(folder: Path, name: str) -> Path:
    """A checkpoint of RECIPES[name]'s network, seeded, as ``load_network`` reads it."""
    return tiny_checkpoint(folder, name, *RECIPES[name])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("checkpoints")
    return {name: save_network(folder, name) for name in RECIPES}


@pytest.fixture(scope="module")
def networks(checkpoints) -> dict[str, tuple[Recipe, nn.Module]]:
    return {name: load_network(path) for name, path in checkpoints.items()}


@pytest.fixture(scope="module")
def cli_export(checkpoints, tmp_path_factory):
    """``meshcast export`` of the features-reading SPS-Net with the second checkpoint's encoder."""
    out = tmp_path_factory.mktemp("spsnet") / "bundle"
    args = ["export", str(checkpoints["spsnet"]), "--body", "standin", "--out", str(out),
            "--encoder", str(checkpoints["encoder"])]  # fmt: skip
    return CliRunner().invoke(cli, args), out


@pytest.fixture(scope="module")
def exported(checkpoints, networks, cli_export, tmp_path_factory) -> dict[str, Exported]:
    maed_out = tmp_path_factory.mktemp("maed") / "bundle"
    export_bundle(checkpoints["maed"], "standin", maed_out, fp16=True)
    encoder = networks["encoder"][1]
    assert isinstance(encoder, SPSNet)

    def loaded(folder: Path, name: str, encoder: SPSNet | None) -> Exported:
        bundle = load_bundle(folder)
        sessions = bundle.sessions(providers=[CPU_PROVIDER])
        return Exported(bundle, sessions, *networks[name], encoder)

    return {
        "maed": loaded(maed_out, "maed", None),
        "spsnet": loaded(cli_export[1], "spsnet", encoder),
    }


@pytest.fixture(scope="module")
def body() -> BodyModel:
    return load_body_model("standin")


def random_crops(batch: int, frames: int, size: int, seed: int = 1) -> np.ndarray:
    """``(B, T, 3, S, S)`` float32 standard-normal crops (normalised images)."""
    return np.random.default_rng(seed).standard_normal((batch, frames, 3, size, size), np.float32)


def street_crops(batch: int, frames: int, size: int) -> np.ndarray:
    """``(B, T, 3, S, S)`` normalised crops of a real photo (the synthetic videos' street), a
    box sliding along it as a walker would, cut and normalised as the training data is."""
    image = cv2.cvtColor(cv2.imread(str(STREET_PATH)), cv2.COLOR_BGR2RGB)
    height, width = image.shape[:2]
    box_w, box_h = width / 8, height / 2
    starts = np.linspace(box_w, width - box_w, batch * frames)
    crops = []
    for cx in starts:
        centre, side = square_box(np.array([cx, height / 2, box_w, box_h]), CROP_SCALE)
        crop = warp_to_crop(image, crop_transform(centre, side, size), size)
        crops.append((crop / UINT8_MAX - np.array(IMAGE_MEAN)) / np.array(IMAGE_STD))
    stacked = np.stack(crops).astype(np.float32).transpose(0, 3, 1, 2)  # (B·T, 3, S, S)
    return stacked.reshape(batch, frames, 3, size, size)


def torch_pipeline(exported: Exported, body: BodyModel, crops: np.ndarray) -> dict[str, np.ndarray]:
    """The training networks on crops ``(B, T, 3, S, S)``: rotations, shape, camera, vertices."""
    frames = torch.from_numpy(crops)
    with torch.no_grad():
        if exported.encoder is not None:
            features = exported.encoder.encode(frames)  # (B, T, 2048)
            out = exported.network(features=features)
        else:
            out = exported.network(frames)
        posed = body(out["rotmat"].flatten(0, 1), out["betas"].flatten(0, 1))
    return {
        "rotmat": out["rotmat"].numpy(),
        "betas": out["betas"].numpy(),
        "cam": out["cam"].numpy(),
        "vertices": posed.vertices.numpy(),
        "joints": posed.joints.numpy(),
    }


def onnx_pipeline(sessions: Sessions, crops: np.ndarray) -> dict[str, np.ndarray]:
    """A bundle's three graphs on onnxruntime, chained as the service chains them."""
    b, t = crops.shape[:2]
    (features,) = sessions.encoder.run(None, {"crops": crops.reshape(b * t, *crops.shape[2:])})
    windows = features.reshape(b, t, *features.shape[1:])
    rotmat, betas, cam = sessions.temporal.run(None, {"features": windows})
    vertices, joints = sessions.body.run(
        None, {"rotmat": rotmat.reshape(b * t, 24, 3, 3), "betas": betas.reshape(b * t, -1)}
    )
    return {"rotmat": rotmat, "betas": betas, "cam": cam, "vertices": vertices, "joints": joints}


def max_errors(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> dict[str, float]:
    assert {k: v.shape for k, v in got.items()} == {k: v.shape for k, v in expected.items()}
    return {name: float(np.abs(got[name] - expected[name]).max()) for name in expected}


def window_of(exported: Exported) -> int:
    return exported.bundle.manifest.window.length


@pytest.mark.parametrize("family", ["maed", "spsnet"])
@pytest.mark.parametrize(("inputs", "batch"), [("random", 1), ("random", 3), ("street", 2)])
def test_bundle_matches_pytorch(exported, body, family, inputs, batch):
    """Crops → encoder → temporal → body on onnxruntime equals the training networks and the
    body model (smplx) to 1e-4, at batch sizes other than the trace's."""
    case = exported[family]
    size = case.bundle.manifest.input.image_size
    make = random_crops if inputs == "random" else street_crops
    crops = make(batch, window_of(case), size)
    errors = max_errors(onnx_pipeline(case.sessions, crops), torch_pipeline(case, body, crops))
    assert max(errors.values()) <= TOLERANCE, errors


@pytest.mark.parametrize("frames", [8, 16])
def test_spsnet_temporal_takes_any_window(exported, frames):
    case = exported["spsnet"]
    assert case.bundle.manifest.window.dynamic_length
    features = np.random.default_rng(frames).random((2, frames, 2048), np.float32)
    rotmat, betas, cam = case.sessions.temporal.run(None, {"features": features})
    with torch.no_grad():
        out = case.network(features=torch.from_numpy(features))
    assert rotmat.shape == (2, frames, 24, 3, 3)
    assert np.abs(rotmat - out["rotmat"].numpy()).max() <= TOLERANCE
    assert np.abs(betas - out["betas"].numpy()).max() <= TOLERANCE
    assert np.abs(cam - out["cam"].numpy()).max() <= TOLERANCE


@pytest.mark.parametrize("batch", [1, 3])
def test_body_graph_matches_the_standin(exported, body, batch):
    generator = torch.Generator().manual_seed(batch)
    rotmat = axis_angle_to_rotmat(0.5 * torch.randn(batch, 24, 3, generator=generator))
    betas = torch.randn(batch, 10, generator=generator)
    session = exported["maed"].sessions.body
    vertices, joints = session.run(None, {"rotmat": rotmat.numpy(), "betas": betas.numpy()})
    with torch.no_grad():
        expected = body(rotmat, betas)
    assert vertices.shape == (batch, body.num_vertices, 3)
    assert np.abs(vertices - expected.vertices.numpy()).max() <= TOLERANCE
    assert np.abs(joints - expected.joints.numpy()).max() <= TOLERANCE


@pytest.mark.parametrize("family", ["maed", "spsnet"])
def test_temporal_graph_has_no_control_flow(exported, family):
    case = exported[family]
    if isinstance(case.network, MAED):
        assert case.network.config.decoder == "ktd"
    model = onnx.load(str(case.bundle.graph_path("temporal", "fp32")))
    assert not CONTROL_FLOW & {node.op_type for node in model.graph.node}


def test_manifests_describe_the_networks(exported, body, checkpoints):
    maed, spsnet = exported["maed"].bundle.manifest, exported["spsnet"].bundle.manifest
    assert (maed.family, spsnet.family) == ("maed", "spsnet")
    assert (maed.window.length, maed.window.dynamic_length) == (4, False)  # maed_tiny's T
    assert (spsnet.window.length, spsnet.window.dynamic_length) == (SPSNET_WINDOW, True)
    # The features-reading SPS-Net's crops are its encoder's (the second recipe's data).
    assert (spsnet.input.image_size, spsnet.input.crop_scale) == (CROP_SIZE, CROP_SCALE)
    assert spsnet.feature_shape == (2048,)
    assert maed.feature_shape == (16, 64)  # (64 / 16)² patches of maed_tiny's width
    for manifest in (maed, spsnet):
        assert (manifest.input.mean, manifest.input.std) == (IMAGE_MEAN, IMAGE_STD)
        assert manifest.body.num_vertices == body.num_vertices
        assert manifest.body.parents == tuple(body.parents.tolist())
        assert max(manifest.provenance.parity["fp32"].values()) <= TOLERANCE
    assert spsnet.provenance.training_data == ("features.pt", "frames.pt")
    assert spsnet.provenance.encoder_recipe is not None
    written = Manifest.model_validate_json(
        (exported["maed"].bundle.path / MANIFEST_FILE).read_text()
    )
    assert written == maed


def test_fp16_variants_run_close_to_pytorch(exported, body):
    """The float16 graphs (float32 in and out) on onnxruntime's CPU, against float32 PyTorch."""
    case = exported["maed"]
    manifest = case.bundle.manifest
    assert set(manifest.variants) == {"fp32", "fp16"}
    crops = street_crops(1, window_of(case), manifest.input.image_size)
    fp16 = case.bundle.sessions("fp16", providers=[CPU_PROVIDER])
    errors = max_errors(onnx_pipeline(fp16, crops), torch_pipeline(case, body, crops))
    assert max(errors["rotmat"], errors["vertices"]) <= FP16_TOLERANCE, errors
    assert manifest.provenance.parity["fp16"].keys() == manifest.provenance.parity["fp32"].keys()


def test_the_command_writes_a_bundle_and_its_summary(cli_export):
    result, out = cli_export
    assert result.exit_code == 0, result.output
    assert (out / MANIFEST_FILE).is_file()
    assert "temporal.rotmat" in result.output  # the parity table
    assert "encoder.onnx" in result.output  # the files


def test_a_features_recipe_without_encoder_fails_in_one_line(checkpoints, tmp_path, capsys):
    """As a user runs it (``main``, which turns errors into one line), in this process."""
    argv = ["meshcast", "export", str(checkpoints["spsnet"]), "--body", "standin",
            "--out", str(tmp_path / "bundle")]  # fmt: skip
    with patch.object(sys, "argv", argv), pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code != 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "--encoder" in lines[0]
    assert not (tmp_path / "bundle").exists()


def test_a_network_with_its_own_encoder_takes_no_other(networks):
    maed_recipe, maed = networks["maed"]
    frames_recipe, frames_network = networks["encoder"]
    assert isinstance(frames_network, SPSNet)
    assert frames_network.encoder is not None
    with pytest.raises(ValueError, match="own image encoder"):
        network_graphs(maed_recipe, maed, (frames_recipe, frames_network.encoder))
    graphs = network_graphs(frames_recipe, frames_network)
    assert graphs.encoder.module is frames_network.encoder


def test_standardised_kernels_keep_the_backbone_output(networks):
    network = networks["maed"][1]
    assert isinstance(network, MAED)
    crops = torch.from_numpy(random_crops(1, 2, 64)[0])
    with torch.no_grad():
        expected = network.encoder.patch_embed(crops)
        got = with_standardised_kernels(network.encoder.patch_embed)(crops)
    assert torch.allclose(got, expected, atol=1e-5)


def test_body_graph_is_smplx_skinning(body):
    generator = torch.Generator().manual_seed(0)
    rotmat = axis_angle_to_rotmat(torch.randn(2, 24, 3, generator=generator))
    betas = 2 * torch.randn(2, 10, generator=generator)
    with torch.no_grad():
        vertices, joints = BodyGraph(body)(rotmat, betas)
        expected = body(rotmat, betas)
    assert torch.allclose(vertices, expected.vertices, atol=1e-5)
    assert torch.allclose(joints, expected.joints, atol=1e-5)


def test_bench_export_times_both_runtimes_on_the_same_graphs(exported, checkpoints):
    """`meshcast bench export`: every graph at every batch, both runtimes, JSON on stdout; the
    eager modules come from the checkpoints the provenance names."""
    bundle = exported["spsnet"].bundle
    graphs = eager_graphs(bundle)
    assert set(graphs) == {"encoder", "temporal", "body"}
    timings = benchmark_bundle(bundle, graphs, batches=(1, 2), repeats=1, threads=1)
    assert [(t.graph, t.batch) for t in timings] == [
        (graph, batch) for graph in ("encoder", "temporal", "body") for batch in (1, 2)
    ]
    assert all(t.onnxruntime_ms > 0 and t.torch_ms > 0 for t in timings)

    result = CliRunner().invoke(
        cli, ["bench", "export", str(bundle.path), "--batch", "1", "--repeats", "1"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["recipe"] == bundle.manifest.recipe
    rows = {(row["graph"], row["batch"]) for row in report["results"]}
    assert rows == {("encoder", 1), ("temporal", 1), ("body", 1), ("temporal+body", 1)}


def test_bench_export_refuses_a_checkpoint_the_bundle_did_not_come_from(exported, checkpoints):
    with pytest.raises(ValueError, match="not the checkpoint"):
        eager_graphs(exported["spsnet"].bundle, checkpoint=checkpoints["maed"])
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        eager_graphs(exported["spsnet"].bundle, checkpoint=Path("absent.pt"))
