"""The committed front-end models (``export/frontend``, made by ``make frontend``): on the real
frames of ``reference.npz`` they give what their original runtimes gave (TensorFlow for NanoDet,
TFLite for BlazePose), match the hashes of ``record.json``, and batch like single runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

import export
from export.frontend import frontend_spec, read_record
from service.pipeline.detect import NanoDetDetector

FRONTEND = Path(export.__file__).parent / "frontend"
GRAPHS = {"detector": "detector.onnx", "keypoints": "keypoints.onnx"}
# Issue 14's thresholds: NanoDet's raw outputs; landmarks' x, y in crop pixels (of 256).
DETECTOR_TOLERANCE = 1e-4
LANDMARK_XY_TOLERANCE_PX = 0.01
# BlazePose's other outputs, a margin over what the conversion measured (record.json): z and
# the logits of the landmarks (2.5e-3), the pose flag (7e-6), heatmap logits (2e-4), world
# points in metres (4e-5).
KEYPOINT_TOLERANCES = {
    "landmarks": 0.01,
    "pose_flag": 1e-4,
    "heatmaps": 1e-3,
    "world_landmarks": 1e-4,
}
LANDMARK_VALUES = 5  # x, y, z, visibility logit, presence logit
# A batch against single runs: the same kernels on the same data.
BATCH_TOLERANCE = 1e-5


def load_record(folder: Path = FRONTEND) -> dict[str, Any]:
    """``record.json`` of a conversion."""
    record: dict[str, Any] = json.loads((folder / "record.json").read_text())
    return record


def load_reference(folder: Path = FRONTEND) -> dict[str, np.ndarray]:
    """``reference.npz`` of a conversion, every array."""
    with np.load(folder / "reference.npz", allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def graph_inputs(graph: str, images: np.ndarray, record: dict[str, Any]) -> np.ndarray:
    """uint8 images ``(N, S, S, 3)`` in the graph's colour order → its float32 input, by the
    layout and normalisation ``record.json`` gives."""
    spec = record[graph]["input"]
    pixels = images.astype(np.float32) * np.float32(spec["scale"])
    mean = np.asarray(spec["mean"], dtype=np.float32)
    std = np.asarray(spec["std"], dtype=np.float32)
    normalised = (pixels - mean) / std
    if spec["layout"] == "NCHW":
        normalised = normalised.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(normalised)


def run(session: ort.InferenceSession, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """All outputs of ``session`` by name for one input tensor."""
    names = [output.name for output in session.get_outputs()]
    (image,) = session.get_inputs()
    return dict(zip(names, session.run(names, {image.name: inputs}), strict=True))


def kept(record: dict[str, Any], name: str, value: np.ndarray) -> np.ndarray:
    """The part of output ``name`` that ``reference.npz`` keeps (record's slices)."""
    spec = record["reference"]["slices"].get(name)
    return value if spec is None else value[tuple(slice(*axis) for axis in spec)]


def session(folder: Path, graph: str) -> ort.InferenceSession:
    """An onnxruntime CPU session of one of the folder's graphs."""
    return ort.InferenceSession(str(folder / GRAPHS[graph]), providers=["CPUExecutionProvider"])


def images_of(graph: str, reference: dict[str, np.ndarray]) -> np.ndarray:
    """The reference's uint8 images for ``graph``."""
    return reference["detector_images" if graph == "detector" else "keypoint_images"]


@pytest.fixture(scope="module")
def record() -> dict[str, Any]:
    return load_record()


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return load_reference()


@pytest.fixture(scope="module")
def outputs(record: dict[str, Any], reference: dict[str, np.ndarray]) -> dict[str, Any]:
    """Each committed graph's outputs on all its reference images in one batch."""
    return {
        graph: run(
            session(FRONTEND, graph), graph_inputs(graph, images_of(graph, reference), record)
        )
        for graph in GRAPHS
    }


@pytest.mark.parametrize("graph", GRAPHS)
def test_files_match_the_record(graph: str, record: dict[str, Any]) -> None:
    path = FRONTEND / GRAPHS[graph]
    assert record[graph]["file"] == path.name
    assert record[graph]["bytes"] == path.stat().st_size
    assert record[graph]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_detector_matches_tensorflow(
    record: dict[str, Any], reference: dict[str, np.ndarray], outputs: dict[str, Any]
) -> None:
    detector = outputs["detector"]
    assert set(detector) == set(record["detector"]["outputs"])
    for name, value in detector.items():
        original = reference[f"detector/{name}"]
        difference = np.abs(kept(record, name, value) - original).max()
        assert difference <= DETECTOR_TOLERANCE, name


def test_keypoints_match_tflite(
    record: dict[str, Any], reference: dict[str, np.ndarray], outputs: dict[str, Any]
) -> None:
    keypoints = outputs["keypoints"]
    assert set(keypoints) == set(KEYPOINT_TOLERANCES)
    for name, value in keypoints.items():
        original = reference[f"keypoints/{name}"]
        difference = np.abs(kept(record, name, value) - original).max()
        assert difference <= KEYPOINT_TOLERANCES[name], name
    points = (len(keypoints["landmarks"]), -1, LANDMARK_VALUES)
    xy = keypoints["landmarks"].reshape(points)[..., :2]
    original_xy = reference["keypoints/landmarks"].reshape(points)[..., :2]
    assert np.abs(xy - original_xy).max() <= LANDMARK_XY_TOLERANCE_PX


@pytest.mark.parametrize("graph", GRAPHS)
def test_a_batch_gives_what_single_runs_give(
    graph: str, record: dict[str, Any], reference: dict[str, np.ndarray], outputs: dict[str, Any]
) -> None:
    assert record[graph]["inputs"]["image"][0] == "batch"
    graph_session = session(FRONTEND, graph)
    inputs = graph_inputs(graph, images_of(graph, reference), record)
    assert len(inputs) > 1
    for index in range(len(inputs)):
        single = run(graph_session, inputs[index : index + 1])
        for name, value in single.items():
            difference = np.abs(value[0] - outputs[graph][name][index]).max()
            assert difference <= BATCH_TOLERANCE, (name, index)


def test_decoded_person_boxes_match_tensorflows(
    reference: dict[str, np.ndarray], outputs: dict[str, Any]
) -> None:
    """The pipeline's decoder, on the ONNX graph's outputs and on TensorFlow's, finds the same
    people on the reference frames (their boxes and scores within 1e-4)."""
    spec = frontend_spec(read_record(FRONTEND)).detector
    detector = NanoDetDetector(session(FRONTEND, "detector"), spec)
    names = [*spec.scores, *spec.distances]
    size, origin = spec.input_size, np.zeros(2)
    found = 0
    for frame in range(len(reference["detector_images"])):
        # The reference keeps the person column of the scores: it is column 0 of what it holds.
        onnx_levels = [outputs["detector"][name][frame] for name in names]
        onnx_levels[: len(spec.scores)] = [
            level[:, spec.person_class : spec.person_class + 1]
            for level in onnx_levels[: len(spec.scores)]
        ]
        tf_levels = [reference[f"detector/{name}"][frame] for name in names]
        ours = detector.decode(onnx_levels, 1.0, origin, size, size)
        theirs = detector.decode(tf_levels, 1.0, origin, size, size)
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).max(initial=0.0) <= DETECTOR_TOLERANCE
        found += len(ours)
    assert found >= 2 * len(reference["detector_images"])  # people on every frame
