"""A trained checkpoint → a model bundle (the folder :mod:`service.bundle` describes and loads).

:func:`export_bundle` writes the ONNX graphs of :mod:`export.graphs` (three; two for a keypoint
family, which reads landmarks and has no encoder), the body's arrays,
the pretrained front-end (:mod:`export.frontend`) and the manifest, after checking every
network graph against PyTorch (:mod:`export.parity`); with ``fp16`` it adds float16 variants
of the network's graphs and checks them against the same float32 PyTorch outputs.

The graphs go through torch's TorchScript-based exporter (``dynamo=False``). It traces: Python
loops (KTD's 24 joints, HMR's iterations, the kinematic chain) unroll into fixed steps and no
graph holds Loop or If nodes. It exports these graphs ten times faster than the dynamo-based
exporter (which also needs ``onnxscript``) and gives the same results; the parity check, run at
another batch size than the trace's, catches any size the tracer fixes.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import torch
from onnxruntime.transformers.float16 import convert_float_to_float16

from export.frontend import copy_frontend
from export.graphs import Graph, NetworkGraphs, body_graph, network_graphs
from export.parity import bundle_errors, parity_cases
from service.bundle import (
    FACES_FILE,
    JOINT_REGRESSORS_FILE,
    MANIFEST_FILE,
    PARENTS_FILE,
    SCHEMA_VERSION,
    WEIGHTS_FILE,
    BodySpec,
    GraphFiles,
    Manifest,
    Precision,
    Provenance,
    WindowSpec,
    file_sha256,
)
from training.body import BodyModel, load_body_model
from training.body.joint_sets import JOINT_SET_NAMES
from training.models.resnet import ResNet50
from training.models.spsnet import SPSNet
from training.recipes import DataConfig, LandmarkDataConfig, Recipe, SPSNetConfig
from training.train.checkpoint import load_network

OPSET = 18
# The evaluation tables `meshcast eval` writes beside a checkpoint.
EVALUATION_GLOB = "eval_*.json"
GRAPH_SUFFIX = {"fp32": ".onnx", "fp16": ".fp16.onnx"}

StepReporter = Callable[[str], None]


@dataclass(frozen=True)
class ImageEncoder:
    """The image encoder of a features-reading SPS-Net: another network's ResNet-50."""

    checkpoint: Path
    recipe: Recipe
    module: ResNet50


def export_bundle(
    checkpoint: Path,
    body: str,
    out: Path,
    *,
    encoder_checkpoint: Path | None = None,
    fp16: bool = False,
    on_step: StepReporter | None = None,
) -> Manifest:
    """Export ``checkpoint``'s network with the body model ``body`` as a bundle in ``out``.

    Args:
        checkpoint: a training checkpoint (``load_network`` reads it).
        body: "standin", "smpl" or an SMPL-format file.
        out: the bundle's folder, created if needed; its files are overwritten.
        encoder_checkpoint: for an SPS-Net that reads precomputed features, the checkpoint of
            the network whose ResNet-50 made them; it becomes ``encoder.onnx``.
        fp16: also write float16 graphs (``*.fp16.onnx``; inputs and outputs stay float32).
        on_step: called with a description as each step starts (for a progress display).

    Returns:
        The manifest written to ``out/manifest.json``; its provenance holds the parity errors.

    Raises:
        FileNotFoundError: a checkpoint or the body file is missing.
        ValueError: a features-reading SPS-Net without ``encoder_checkpoint``, or an encoder
            that does not fit the network.
    """
    report = on_step or _silent
    report("loading the checkpoint")
    recipe, network = load_network(checkpoint)
    encoder = image_encoder(checkpoint, recipe, encoder_checkpoint)
    graphs = network_graphs(recipe, network, (encoder.recipe, encoder.module) if encoder else None)
    body_model = load_body_model(body)
    out.mkdir(parents=True, exist_ok=True)
    # Written last: a bundle whose export fails half-way has no manifest, so nothing loads it.
    (out / MANIFEST_FILE).unlink(missing_ok=True)

    with_encoder = graphs.encoder is not None
    variants: dict[Precision, GraphFiles] = {"fp32": _graph_files("fp32", with_encoder)}
    for graph in (graphs.encoder, graphs.temporal, body_graph(body_model)):
        if graph is None:  # a keypoint family: no encoder
            continue
        file = getattr(variants["fp32"], graph.name)
        report(f"exporting {file}")
        export_onnx(graph, out / file)
    report("writing the body's arrays")
    _write_body_arrays(body_model, out)
    report("copying the front-end (detector.onnx, keypoints.onnx)")
    frontend = copy_frontend(out)

    report("checking parity (fp32)")
    cases = parity_cases(graphs, body_model)
    parity: dict[Precision, dict[str, float]] = {
        "fp32": bundle_errors(cases, out, variants["fp32"])
    }
    if fp16:
        variants["fp16"] = _graph_files("fp16", with_encoder)
        for source, target in zip(variants["fp32"].names(), variants["fp16"].names(), strict=True):
            report(f"converting {source} to float16")
            to_float16(out / source, out / target)
        report("checking parity (fp16)")
        parity["fp16"] = bundle_errors(cases, out, variants["fp16"])

    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        family=graphs.family,
        recipe=recipe.name,
        input=graphs.input,
        window=_window(graphs),
        feature_shape=graphs.feature_shape,
        body=_body_spec(body_model),
        variants=variants,
        frontend=frontend,
        files=_file_hashes(
            out, [*_graph_names(variants), frontend.detector.file, frontend.keypoints.file]
        ),
        provenance=_provenance(checkpoint, recipe, encoder, parity),
    )
    (out / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2) + "\n")
    return manifest


def export_onnx(graph: Graph, path: Path) -> None:
    """Write ``graph`` to ``path`` as ONNX (opset :data:`OPSET`), its dynamic axes named."""
    with warnings.catch_warnings():
        # The exporter's notice that it is the TorchScript-based one (see the module docstring),
        # the tracer's about Python conditions on sizes, and the GRU's about batch sizes: the
        # sizes those conditions read are fixed (MAED's T, the joints), and the parity check
        # runs at another batch than the trace's.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", "Exporting a model to ONNX with a batch_size other")
        torch.onnx.export(
            graph.module,
            tuple(graph.inputs.values()),
            str(path),
            input_names=list(graph.inputs),
            output_names=list(graph.outputs),
            dynamic_axes=graph.dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
    onnx.checker.check_model(str(path))


def to_float16(source: Path, target: Path) -> None:
    """A float16 copy of an ONNX graph: weights and arithmetic in float16, inputs and outputs
    float32 (onnxruntime's converter; the ops it lists as lacking float16 kernels stay float32)."""
    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.save(model, str(target))


def _silent(_: str) -> None:
    """A step reporter that reports nothing."""


def image_encoder(
    checkpoint: Path, recipe: Recipe, encoder_checkpoint: Path | None
) -> ImageEncoder | None:
    """The encoder from ``encoder_checkpoint``, which a features-reading SPS-Net needs and
    every other network refuses."""
    reads_features = isinstance(recipe.model, SPSNetConfig) and recipe.model.encoder == "features"
    if not reads_features:
        if encoder_checkpoint is not None:
            raise ValueError(
                f"{checkpoint} ({recipe.name}) has its own image encoder: drop the encoder "
                "checkpoint"
            )
        return None
    if encoder_checkpoint is None:
        raise ValueError(
            f"{checkpoint} ({recipe.name}) reads precomputed features and has no image "
            "encoder: pass the checkpoint of the network whose features it was trained on "
            "(--encoder CHECKPOINT)"
        )
    encoder_recipe, encoder_network = load_network(encoder_checkpoint)
    if not isinstance(encoder_network, SPSNet) or not isinstance(encoder_network.encoder, ResNet50):
        raise ValueError(
            f"{encoder_checkpoint} ({encoder_recipe.name}) has no ResNet-50 image encoder"
        )
    return ImageEncoder(encoder_checkpoint, encoder_recipe, encoder_network.encoder)


def _graph_files(precision: Precision, with_encoder: bool) -> GraphFiles:
    suffix = GRAPH_SUFFIX[precision]
    return GraphFiles(
        encoder=f"encoder{suffix}" if with_encoder else None,
        temporal=f"temporal{suffix}",
        body=f"body{suffix}",
    )


def _window(graphs: NetworkGraphs) -> WindowSpec:
    """The window as evaluation runs it: the trained length, half a window between starts."""
    return WindowSpec(
        length=graphs.window,
        stride=max(1, graphs.window // 2),
        dynamic_length=graphs.dynamic_window,
    )


def _body_spec(body: BodyModel) -> BodySpec:
    return BodySpec(
        name=body.name,
        num_vertices=body.num_vertices,
        num_faces=body.faces.shape[0],
        joint_names=body.joint_names,
        parents=tuple(body.parents.tolist()),
        joint_sets=dict(JOINT_SET_NAMES),
    )


def _write_body_arrays(body: BodyModel, out: Path) -> None:
    """faces (F, 3), skinning weights (V, 24), parents (24,) and every joint set's regressor."""
    np.save(out / FACES_FILE, body.faces.numpy())
    np.save(out / WEIGHTS_FILE, body.lbs_weights.numpy())
    np.save(out / PARENTS_FILE, body.parents.numpy())
    regressors = {name: body.joint_regressor(name).numpy() for name in JOINT_SET_NAMES}
    np.savez(out / JOINT_REGRESSORS_FILE, allow_pickle=False, **regressors)


def _graph_names(variants: dict[Precision, GraphFiles]) -> list[str]:
    return [name for files in variants.values() for name in files.names()]


def _file_hashes(out: Path, graphs: list[str]) -> dict[str, str]:
    names = [*graphs, FACES_FILE, WEIGHTS_FILE, PARENTS_FILE, JOINT_REGRESSORS_FILE]
    return {name: file_sha256(out / name) for name in names}


def _training_data(recipe: Recipe) -> list[str]:
    """What a recipe trains on: its dataset files, or for synthetic landmarks (made on the
    fly, no files) which motion clips of which body."""
    data = recipe.data
    if isinstance(data, DataConfig):
        return list(data.train)
    if isinstance(data, LandmarkDataConfig):
        return [f"synthetic landmarks ({data.body} body): clips {', '.join(data.clips)}"]
    return []


def _provenance(
    checkpoint: Path,
    recipe: Recipe,
    encoder: ImageEncoder | None,
    parity: dict[Precision, dict[str, float]],
) -> Provenance:
    recipes = [recipe, encoder.recipe] if encoder else [recipe]
    training_data = [item for source in recipes for item in _training_data(source)]
    evaluation: dict[str, dict[str, Any]] = {
        path.name: json.loads(path.read_text())
        for path in sorted(checkpoint.parent.glob(EVALUATION_GLOB))
    }
    return Provenance(
        checkpoint=str(checkpoint),
        checkpoint_sha256=file_sha256(checkpoint),
        recipe=recipe.model_dump(mode="json"),
        encoder_checkpoint=str(encoder.checkpoint) if encoder else None,
        encoder_checkpoint_sha256=file_sha256(encoder.checkpoint) if encoder else None,
        encoder_recipe=encoder.recipe.model_dump(mode="json") if encoder else None,
        training_data=tuple(dict.fromkeys(training_data)),
        evaluation=evaluation,
        parity=parity,
        exporter=f"meshcast {version('meshcast')}",
        torch_version=torch.__version__,
        onnx_version=onnx.__version__,
        onnxruntime_version=onnxruntime.__version__,
        opset=OPSET,
        created=datetime.now(UTC),
    )
