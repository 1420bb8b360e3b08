"""Model bundles: the only contract between training and serving.

A bundle is a folder that ``meshcast export`` writes and the service reads:

- ``manifest.json``: what :class:`Manifest` describes — the network family, what it reads of a
  frame (:class:`InputSpec`: crops; :class:`LandmarkInputSpec`: the keypoint model's
  landmarks), its window, the body model, every other file with its sha256, and provenance;
- ``detector.onnx``: frames letterboxed into a square → person boxes (NanoDet,
  :class:`DetectorSpec`);
- ``keypoints.onnx``: a person's crop → 33 landmarks, visibility and 33 metric 3D points
  (BlazePose GHUM 3D, :class:`KeypointSpec`); both converted once from published models
  (``export/frontend``) and copied into every bundle;
- ``encoder.onnx`` (image families only): crops ``(B, 3, S, S)`` → per-frame features
  ``(B, *feature_shape)``;
- ``temporal.onnx``: features ``(B, T, *feature_shape)`` → ``rotmat (B, T, 24, 3, 3)``,
  ``betas (B, T, 10)``, ``cam (B, T, 3)`` (weak perspective ``s, tx, ty``). The image
  families' features are the encoder's; the keypoint families' are each frame's landmarks,
  ``(33, 6)`` (:class:`LandmarkInputSpec`), and their bundles have no encoder;
- ``body.onnx``: ``rotmat (B, 24, 3, 3)``, ``betas (B, 10)`` → ``vertices (B, V, 3)``,
  ``joints (B, 24, 3)``, metres;
- ``faces.npy`` ``(F, 3)``, ``weights.npy`` (skinning, ``(V, 24)``), ``parents.npy`` ``(24,)``,
  ``joint_regressors.npz`` (each joint set's ``(J, V)`` regressor from vertices);
- optionally float16 variants of the graphs (``encoder.fp16.onnx`` …).

This module needs numpy and pydantic only; onnxruntime is imported when sessions are opened.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from service.fixed_batches import FixedBatchSession, GraphSession

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

# 2: the front-end (detector.onnx, keypoints.onnx) in every bundle. 3: the keypoint families
# (input "kind", landmark input, no encoder.onnx).
SCHEMA_VERSION = 3
MANIFEST_FILE = "manifest.json"
FACES_FILE = "faces.npy"
WEIGHTS_FILE = "weights.npy"
PARENTS_FILE = "parents.npy"
JOINT_REGRESSORS_FILE = "joint_regressors.npz"
NUM_JOINTS = 24  # SMPL's kinematic tree, every body's
NUM_BETAS = 10  # shape coefficients, as temporal.onnx returns them and body.onnx reads them
CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
WINDOW_DIM = "window"  # the temporal graph's dynamic window length, by name
_HASH_CHUNK = 1 << 20  # bytes read at a time while hashing

Family = Literal["spsnet", "maed"]
Precision = Literal["fp32", "fp16"]
GraphName = Literal["encoder", "temporal", "body"]
FrontendGraph = Literal["detector", "keypoints"]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
# A file of the bundle: a plain name inside its folder, never a path that leads out of it.
FileName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")]
Channels = tuple[float, float, float]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """The crops ``encoder.onnx`` reads: square, RGB, ``(pixel / 255 - mean) / std``."""

    kind: Literal["image"] = "image"
    image_size: PositiveInt  # the crop's side in pixels
    mean: Channels  # per channel, RGB, of pixel values in [0, 1]
    std: tuple[PositiveFloat, PositiveFloat, PositiveFloat]
    crop_scale: PositiveFloat  # the crop's side over the person box's longer side


class LandmarkInputSpec(_Strict):
    """The landmarks ``temporal.onnx`` of a keypoint family reads, ``(33, len(channels))`` a
    frame: the keypoint model's 33 landmarks in its order (``frontend.keypoints``).

    Per landmark, in ``channels`` order: ``x, y`` in the person's square crop scaled to
    [−1, 1] (the square is centred on the person box's centre, of side ``crop_scale`` × the
    box's longer side; x right, y down), the visibility in [0, 1], then the metric 3D point
    (metres, hip-centred, as the keypoint model gives it). A frame the keypoint model did not
    see is all zeros. No crop is cut: the bundle has no ``encoder.onnx``.
    """

    kind: Literal["landmarks"]
    crop_scale: PositiveFloat  # the square's side over the person box's longer side
    channels: tuple[str, ...]  # what each landmark's numbers are, in order

    @model_validator(mode="after")
    def _some_channels(self) -> Self:
        if not self.channels:
            raise ValueError("a landmark input has channels")
        return self


# What a network reads of a frame; the manifest's "kind" says which.
NetworkInput = Annotated[InputSpec | LandmarkInputSpec, Field(discriminator="kind")]


class WindowSpec(_Strict):
    """The windows ``temporal.onnx`` reads: ``length`` frames, one every ``stride`` frames."""

    length: PositiveInt  # T the network was trained on; the only one when not dynamic
    stride: PositiveInt  # the default step between windows
    dynamic_length: bool  # whether temporal.onnx takes any T (SPS-Net) or only ``length`` (MAED)

    @model_validator(mode="after")
    def _stride_within_window(self) -> Self:
        if self.stride > self.length:
            raise ValueError(f"stride {self.stride} is longer than the window ({self.length})")
        return self


class BodySpec(_Strict):
    """The body model ``body.onnx`` computes: SMPL's 24-joint tree, its own mesh."""

    name: str  # "smpl", "standin" or the file it came from
    num_vertices: PositiveInt  # V
    num_faces: PositiveInt  # F
    joint_names: tuple[str, ...]  # SMPL's 24 joints, in order
    parents: tuple[int, ...]  # parent of each joint, -1 for the root
    joint_sets: dict[str, tuple[str, ...]]  # joint set → its joints' names (joint_regressors.npz)

    @model_validator(mode="after")
    def _smpl_tree(self) -> Self:
        if not len(self.joint_names) == len(self.parents) == NUM_JOINTS:
            raise ValueError(f"a body has {NUM_JOINTS} joint names and parents")
        if any(not -1 <= parent < joint for joint, parent in enumerate(self.parents)):
            raise ValueError("every joint's parent must come before it (the root's is -1)")
        return self


class DetectorSpec(_Strict):
    """``detector.onnx``: NanoDet's graph, its outputs left raw (decoded by
    :class:`service.pipeline.detect.NanoDetDetector`).

    The frame is letterboxed into ``input_size`` squared (its aspect kept), its BGR pixel
    values (0-255) normalised as ``(pixel - mean) / std`` per channel. Each level of the feature
    pyramid has an output of class scores ``(B, h·w, classes)``, after a sigmoid, and one of
    box sides ``(B, h·w, 4·bins)``: for left, top, right and bottom, logits of a distribution
    over 0 … bins − 1 strides from the cell's centre.
    """

    file: FileName
    model: str  # what it is, for people: "NanoDet-m 416, COCO"
    input_name: str
    input_size: PositiveInt
    channels_first: bool  # (B, 3, S, S) rather than (B, S, S, 3)
    colour_order: Literal["bgr"]
    mean: Channels  # per channel, BGR, of pixel values 0-255
    std: tuple[PositiveFloat, PositiveFloat, PositiveFloat]
    scores: tuple[str, ...]  # output names, one a level, finest first
    distances: tuple[str, ...]
    strides: tuple[PositiveInt, ...]
    bins: PositiveInt
    classes: tuple[str, ...]  # COCO's 80, in the model's order
    person_class: int

    @model_validator(mode="after")
    def _levels_agree(self) -> Self:
        if not len(self.scores) == len(self.distances) == len(self.strides):
            raise ValueError(
                "a detector level has one scores output, one distances output and a stride"
            )
        if not 0 <= self.person_class < len(self.classes):
            raise ValueError(f"person_class {self.person_class} is not one of the classes")
        return self


class KeypointSpec(_Strict):
    """``keypoints.onnx``: BlazePose GHUM 3D. A square crop of ``input_size`` pixels, RGB,
    ``pixel / 255`` → per person ``landmarks (B, 39·5)`` (x, y, z in crop pixels, visibility
    and presence logits; the 33 named ones, then the hip centre and the point that sets the
    next region), ``pose_flag (B, 1)`` (the confidence that a person is there),
    ``heatmaps (B, h, w, 39)`` (logits) and ``world_landmarks (B, 39·3)`` (metres, hip-centred).
    """

    file: FileName
    model: str  # "BlazePose GHUM 3D full"
    input_name: str
    input_size: PositiveInt
    colour_order: Literal["rgb"]
    scale: PositiveFloat  # the factor pixel values (0-255) are multiplied by
    # Output role ("landmarks", "pose_flag", "heatmaps", "world_landmarks") → name in the graph.
    outputs: dict[Literal["landmarks", "pose_flag", "heatmaps", "world_landmarks"], str]
    landmark_names: tuple[str, ...]  # the 33 named landmarks, in the model's order


class FrontendSpec(_Strict):
    """The pretrained front-end every bundle carries, and where it came from."""

    detector: DetectorSpec
    keypoints: KeypointSpec
    # The conversion's record (export/frontend/record.json): source packages and files with
    # their sha256, converter versions, parity against the original runtimes.
    source: dict[str, Any]


class GraphFiles(_Strict):
    """The ONNX files of one precision; no encoder for a network that reads landmarks."""

    encoder: FileName | None = None
    temporal: FileName
    body: FileName

    def names(self) -> list[str]:
        """The files, the absent encoder left out."""
        return [name for name in self.model_dump().values() if name is not None]


class Provenance(_Strict):
    """Where a bundle comes from: enough to trace and reproduce it."""

    checkpoint: str  # the checkpoint's path as given to the exporter
    checkpoint_sha256: Sha256
    recipe: dict[str, Any]  # the checkpoint's recipe, as its dict
    # Of the network whose image encoder a features-reading SPS-Net is exported with.
    encoder_checkpoint: str | None = None
    encoder_checkpoint_sha256: Sha256 | None = None
    encoder_recipe: dict[str, Any] | None = None
    training_data: tuple[str, ...]  # the dataset files the network(s) trained on
    evaluation: dict[str, dict[str, Any]] = {}  # eval_*.json beside the checkpoint, by name
    # Max |Δ| of each graph output ("temporal.rotmat", …) against PyTorch, per precision.
    parity: dict[Precision, dict[str, float]]
    exporter: str  # "meshcast <version>"
    torch_version: str
    onnx_version: str
    onnxruntime_version: str
    opset: PositiveInt
    created: datetime


class Manifest(_Strict):
    """``manifest.json``: everything the service needs to know of a bundle."""

    schema_version: int
    family: Family
    recipe: str  # the recipe's name
    input: NetworkInput
    window: WindowSpec
    # One frame's features: (2048,) or (patches, d); landmarks: (33, channels).
    feature_shape: tuple[PositiveInt, ...]
    body: BodySpec
    variants: dict[Precision, GraphFiles]  # "fp32" always
    frontend: FrontendSpec
    files: dict[FileName, Sha256]  # every file but the manifest, with its sha256
    provenance: Provenance

    @model_validator(mode="after")
    def _files_listed(self) -> Self:
        if "fp32" not in self.variants:
            raise ValueError("a bundle has fp32 graphs")
        graphs = {name for files in self.variants.values() for name in files.names()}
        graphs |= {self.frontend.detector.file, self.frontend.keypoints.file}
        body = {FACES_FILE, WEIGHTS_FILE, PARENTS_FILE, JOINT_REGRESSORS_FILE}
        unlisted = sorted((graphs | body) - self.files.keys())
        if unlisted:
            raise ValueError(f"files without a sha256 in 'files': {', '.join(unlisted)}")
        return self

    @model_validator(mode="after")
    def _encoder_fits_input(self) -> Self:
        # Crops need the encoder to become features; landmarks are the features.
        reads_crops = self.input.kind == "image"
        for precision, files in self.variants.items():
            if (files.encoder is not None) != reads_crops:
                needs = "crops needs an encoder" if reads_crops else "landmarks takes no encoder"
                raise ValueError(f"a network that reads {needs} ({precision} graphs)")
        if isinstance(self.input, LandmarkInputSpec) and self.feature_shape[-1:] != (
            len(self.input.channels),
        ):
            raise ValueError(
                f"feature_shape {self.feature_shape} does not end in the landmarks' "
                f"{len(self.input.channels)} channels"
            )
        return self


class BundleFileMissingError(FileNotFoundError):
    """A file the manifest lists (or the manifest itself) is not in the bundle's folder."""


class BundleChecksumError(ValueError):
    """A bundle file's sha256 differs from the manifest's: it was changed or corrupted."""


@dataclass(frozen=True)
class Sessions:
    """onnxruntime sessions of a bundle's graphs: the network's three (two for a network that
    reads landmarks: no encoder), the front-end's two."""

    encoder: GraphSession | None
    temporal: GraphSession
    body: GraphSession
    detector: GraphSession
    keypoints: GraphSession

    def warm_up(self, window: int) -> None:
        """Meet each fixed batch size of the sessions that have them (those on a GPU) once, so
        that no job pays for the first sight; ``window``: the temporal graph's length."""
        for session in (self.encoder, self.temporal, self.body, self.detector, self.keypoints):
            if isinstance(session, FixedBatchSession):
                session.warm_up({WINDOW_DIM: window})


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: its manifest, checked files and the body's arrays."""

    path: Path
    manifest: Manifest
    faces: np.ndarray  # (F, 3) int64
    skinning_weights: np.ndarray  # (V, 24) float32
    parents: np.ndarray  # (24,) int64
    joint_regressors: dict[str, np.ndarray]  # joint set → (J, V) float32

    def graph_path(self, graph: GraphName, precision: Precision) -> Path:
        """The ONNX file of ``graph`` in ``precision``.

        Raises:
            ValueError: the bundle has no graphs of ``precision``, or no such graph (a network
                that reads landmarks has no encoder).
        """
        if precision not in self.manifest.variants:
            raise ValueError(
                f"{self.path} has no {precision} graphs; it has {', '.join(self.manifest.variants)}"
            )
        name = getattr(self.manifest.variants[precision], graph)
        if name is None:
            raise ValueError(f"{self.path} has no {graph} graph: its network reads landmarks")
        return self.path / name

    def sessions(
        self,
        precision: Precision = "fp32",
        providers: list[str] | None = None,
        threads: int | None = None,
        fixed_batches: bool | None = None,
    ) -> Sessions:
        """Open the network's graphs of ``precision`` (the encoder only when the bundle has
        one) and the front-end's two (float32) on ``providers``.

        Args:
            precision: "fp32", or "fp16" when the bundle has float16 variants.
            providers: onnxruntime execution providers in order of preference; default: CUDA
                when this onnxruntime has it, then the CPU.
            threads: CPU threads of each session (within and between operators); default:
                onnxruntime's (one per physical core).
            fixed_batches: run every graph at a few batch sizes only
                (:class:`~service.fixed_batches.FixedBatchSession`); default: for the sessions
                that run on CUDA.
        """

        def fixed(session: InferenceSession) -> GraphSession:
            on_gpu = session.get_providers()[0] == CUDA_PROVIDER
            wanted = on_gpu if fixed_batches is None else fixed_batches
            return FixedBatchSession(session) if wanted else session

        def open_graph(graph: GraphName) -> GraphSession:
            # The body runs a person-frame at a time between the outputs' drawing and writing
            # (service.outputs.posed_frames): threads spinning after each run would take the
            # cores from them (`meshcast bench outputs`, docs/results.md).
            spinning = graph != "body"
            return fixed(self.session(graph, precision, providers, threads, spinning=spinning))

        # A precision the bundle lacks has no files: the temporal graph's path says so.
        files = self.manifest.variants.get(precision)
        has_encoder = files is not None and files.encoder is not None
        return Sessions(
            open_graph("encoder") if has_encoder else None,
            open_graph("temporal"),
            open_graph("body"),
            fixed(self.frontend_session("detector", providers, threads)),
            fixed(self.frontend_session("keypoints", providers, threads)),
        )

    def session(
        self,
        graph: GraphName,
        precision: Precision = "fp32",
        providers: list[str] | None = None,
        threads: int | None = None,
        *,
        spinning: bool = True,
    ) -> InferenceSession:
        """Open one graph of ``precision`` on ``providers`` (the arguments as
        :meth:`sessions`' and :func:`open_session`'s); the gateway opens the body's alone."""
        return open_session(
            self.graph_path(graph, precision), providers, threads, spinning=spinning
        )

    def frontend_session(
        self,
        graph: FrontendGraph,
        providers: list[str] | None = None,
        threads: int | None = None,
    ) -> InferenceSession:
        """Open the front-end's ``detector`` or ``keypoints`` graph (arguments as
        :meth:`sessions`')."""
        spec = getattr(self.manifest.frontend, graph)
        return open_session(self.path / spec.file, providers, threads)


def open_session(
    path: Path,
    providers: list[str] | None = None,
    threads: int | None = None,
    *,
    spinning: bool = True,
) -> InferenceSession:
    """An onnxruntime session of the graph at ``path``: on ``providers`` (default: CUDA when
    this onnxruntime has it, then the CPU), with ``threads`` CPU threads within and between
    operators (default: onnxruntime's, one per physical core). ``spinning`` False: its threads
    sleep after a run rather than spin, which would take the cores from whatever runs next
    (a benchmark that interleaves runtimes)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if not spinning:
        for entry in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
            options.add_session_config_entry(entry, "0")
    if threads is not None:
        options.intra_op_num_threads = options.inter_op_num_threads = threads
    chosen = providers or default_providers()
    if CUDA_PROVIDER in chosen:
        _load_cuda_libraries()
    return onnxruntime.InferenceSession(str(path), options, providers=chosen)


@functools.cache
def _load_cuda_libraries() -> None:
    """CUDA's and cuDNN's libraries from their pip packages (what torch's CUDA wheels
    install), once a process: without this the CUDA provider finds them only on
    LD_LIBRARY_PATH."""
    import onnxruntime

    if hasattr(onnxruntime, "preload_dlls"):
        onnxruntime.preload_dlls()


def default_providers() -> list[str]:
    """CUDA then the CPU when this onnxruntime has CUDA, else the CPU alone."""
    import onnxruntime

    if CUDA_PROVIDER in onnxruntime.get_available_providers():
        return [CUDA_PROVIDER, CPU_PROVIDER]
    return [CPU_PROVIDER]


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, as 64 hexadecimal digits."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(folder: Path) -> Manifest:
    """The validated manifest of the bundle in ``folder``.

    Raises:
        BundleFileMissingError: no manifest.json in ``folder``.
        ValueError: the manifest is not JSON, has another schema version, or is invalid.
    """
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise BundleFileMissingError(f"{folder} is not a model bundle: it has no {MANIFEST_FILE}")
    try:
        fields = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not JSON: {error}") from error
    version = fields.get("schema_version") if isinstance(fields, dict) else None
    if version != SCHEMA_VERSION:
        raise ValueError(
            f"{path} has schema version {version}; this meshcast reads version {SCHEMA_VERSION}"
            " (export the checkpoint again with this meshcast: `meshcast export`)"
        )
    try:
        return Manifest.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "manifest"
        raise ValueError(
            f"{path} is not a valid manifest ({error.error_count()} errors; "
            f"{where}: {first['msg']})"
        ) from error


def load_bundle(path: str | Path) -> Bundle:
    """Load the bundle in folder ``path``: validate its manifest, check every file, read the
    body's arrays.

    Raises:
        BundleFileMissingError: the manifest or a file it lists is missing (named).
        BundleChecksumError: a file's sha256 differs from the manifest's (named).
        ValueError: an invalid manifest, or arrays that disagree with it.
    """
    folder = Path(path)
    manifest = read_manifest(folder)
    for name, expected in manifest.files.items():
        file = folder / name
        if not file.is_file():
            raise BundleFileMissingError(f"the bundle {folder} lacks {name}, which it lists")
        if file_sha256(file) != expected:
            raise BundleChecksumError(
                f"{name} in {folder} does not match its sha256 in the manifest: "
                "the file was changed or corrupted"
            )
    with np.load(folder / JOINT_REGRESSORS_FILE) as regressors:
        joint_regressors = {name: regressors[name] for name in regressors.files}
    bundle = Bundle(
        path=folder,
        manifest=manifest,
        faces=np.load(folder / FACES_FILE),
        skinning_weights=np.load(folder / WEIGHTS_FILE),
        parents=np.load(folder / PARENTS_FILE),
        joint_regressors=joint_regressors,
    )
    _check_body_arrays(bundle)
    return bundle


def _check_body_arrays(bundle: Bundle) -> None:
    """Raise ValueError where the body's arrays disagree with the manifest."""
    body = bundle.manifest.body
    if bundle.joint_regressors.keys() != body.joint_sets.keys():
        raise ValueError(
            f"{bundle.path}: {JOINT_REGRESSORS_FILE} holds {sorted(bundle.joint_regressors)}, "
            f"the manifest lists {sorted(body.joint_sets)}"
        )
    expected = {
        FACES_FILE: (bundle.faces.shape, (body.num_faces, 3)),
        WEIGHTS_FILE: (bundle.skinning_weights.shape, (body.num_vertices, NUM_JOINTS)),
        PARENTS_FILE: (bundle.parents.shape, (NUM_JOINTS,)),
        **{
            f"{JOINT_REGRESSORS_FILE}[{name}]": (
                bundle.joint_regressors[name].shape,
                (len(joints), body.num_vertices),
            )
            for name, joints in body.joint_sets.items()
        },
    }
    for name, (got, want) in expected.items():
        if got != want:
            raise ValueError(f"{bundle.path}: {name} has shape {got}, the manifest says {want}")
    if tuple(bundle.parents.tolist()) != body.parents:
        raise ValueError(f"{bundle.path}: {PARENTS_FILE} differs from the manifest's parents")
