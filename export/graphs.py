"""The three graphs of a model bundle as torch modules, each with an example input to export.

- ``encoder`` (image families only): one normalised crop per row, ``crops (B, 3, S, S)`` → the
  per-frame features. SPS-Net: its ResNet-50, ``(B, 2048)``. MAED: its per-frame part, the
  ResNetV2 backbone and the patch embedding, ``(B, hw, d)`` patch tokens; the backbone's
  weight-standardised kernels are standardised once, at export (:class:`StandardisedConv`).
- ``temporal``: a window of features ``(B, T, …)`` → ``rotmat (B, T, 24, 3, 3)``,
  ``betas (B, T, 10)``, ``cam (B, T, 3)``. SPS-Net: attention, forecasting, fusion and both
  regressors, for any T. MAED: the cls token, the encodings, the STE blocks and the decoder, for
  its T only. The keypoint families (SPS-Net with ``encoder: landmarks``, MAED with
  ``tokens: landmarks``) have no encoder graph: their temporal graph is the whole network, on
  each frame's landmarks ``(B, T, 33, 6)`` (:mod:`training.models.landmark_input`). Python loops
  (KTD's 24 joints, HMR's iterations) unroll when the exporter traces them: the graph has no
  Loop or If nodes.
- ``body``: an SMPL-format body, ``rotmat (B, 24, 3, 3)``, ``betas (B, 10)`` →
  ``vertices (B, V, 3)``, ``joints (B, 24, 3)``: linear blend skinning as ``smplx.lbs`` computes
  it, its kinematic chain composed one tree level at a time (:class:`BodyGraph` says why). A
  body without pose correctives (the stand-in's are all zero) leaves them out of the graph: they
  would be most of its file (34 of the stand-in's 38.6 MB).

The networks stay the training code's own modules: these wrappers only pick inputs and outputs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from service.bundle import WINDOW_DIM, Family, InputSpec, LandmarkInputSpec
from training.body import BodyModel
from training.body.landmarks import NUM_LANDMARKS
from training.body.model import NUM_BETAS
from training.body.skeleton import NUM_JOINTS
from training.data.batch import IMAGE_MEAN, IMAGE_STD
from training.models.landmark_input import LANDMARK_CHANNELS, NUM_CHANNELS, LandmarkEncoder
from training.models.maed import MAED
from training.models.resnet import ResNet50
from training.models.resnetv2 import StdConv2d, pad_same
from training.models.spsnet import SPSNet
from training.recipes import DataConfig, LandmarkDataConfig, MAEDConfig, Recipe, SPSNetConfig

# The rows of the example inputs the graphs are traced with: not 1, which a trace could take
# for a broadcast and fix in the graph.
EXAMPLE_BATCH = 2
RGB = 3
# SPS-Net's default window when the recipe trains none (VIBE's and MAED's T).
DEFAULT_WINDOW = 16
# The crops of a recipe without a data section: the schema's defaults (the papers' 224, 1.1).
DEFAULT_CROP_SIZE: int = DataConfig.model_fields["crop_size"].default
DEFAULT_CROP_SCALE: float = DataConfig.model_fields["crop_scale"].default
# The landmark squares of a keypoint recipe without a landmark data section: the schema's.
DEFAULT_LANDMARK_CROP_SCALE: float = LandmarkDataConfig.model_fields["crop_scale"].default
# Example landmarks (B, T, 33, 6) spread as the service's are: crop coordinates in [-1, 1]
# (a little beyond: the box is a detector's), visibility in [0, 1], hip-centred metric points
# within a body's reach of the hips; every few frames all zeros, a frame the keypoint model
# missed.
EXAMPLE_CROP_EXTENT = 1.2
EXAMPLE_WORLD_STD_M = 0.4
EXAMPLE_MISSED_EVERY = 5
_XY, _VISIBILITY, _WORLD = slice(0, 2), 2, slice(3, NUM_CHANNELS)
# Axis names of the dynamic dimensions, as they appear in the ONNX graphs.
BATCH_AXIS = "batch"
WINDOW_AXIS = WINDOW_DIM  # the workers warm the graphs up by this name


@dataclass(frozen=True)
class Graph:
    """One graph to export: a module in eval mode, its named example inputs and output names.

    ``dynamic`` maps input and output names to their axes that may change size, by axis name.
    """

    name: str
    module: nn.Module
    inputs: dict[str, Tensor]
    outputs: tuple[str, ...]
    dynamic: dict[str, dict[int, str]]


@dataclass(frozen=True)
class NetworkGraphs:
    """The encoder and temporal graphs of one network, and what the manifest says of them."""

    family: Family
    encoder: Graph | None  # None: the network reads landmarks, no crops
    temporal: Graph
    input: InputSpec | LandmarkInputSpec  # the crops the encoder reads, or the landmarks
    window: int  # T: the window the network was trained on (the only one for MAED)
    dynamic_window: bool  # whether temporal.onnx takes any T
    feature_shape: tuple[int, ...]  # one frame's features: (2048,), (hw, d) or (33, 6)


class SPSNetTemporal(nn.Module):
    """SPS-Net after its encoder: ``features (B, T, d)`` → rotations, shape, camera."""

    def __init__(self, network: SPSNet) -> None:
        super().__init__()
        self.network = network

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(B, T, d)`` → ``rotmat (B, T, 24, 3, 3)``, ``betas (B, T, 10)``, ``cam (B, T, 3)``."""
        out = self.network(features=features)
        return out["rotmat"], out["betas"], out["cam"]


class SPSNetLandmarks(nn.Module):
    """A keypoint SPS-Net whole: ``landmarks (B, T, 33, 6)`` → rotations, shape, camera, for
    any T."""

    def __init__(self, network: SPSNet) -> None:
        super().__init__()
        self.network = network

    def forward(self, landmarks: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(B, T, 33, 6)`` → ``rotmat (B, T, 24, 3, 3)``, ``betas (B, T, 10)``,
        ``cam (B, T, 3)``."""
        out = self.network(landmarks)
        return out["rotmat"], out["betas"], out["cam"]


class MAEDLandmarks(nn.Module):
    """A keypoint MAED whole: ``landmarks (B, T, 33, 6)`` → rotations, shape, camera, for its
    ``num_frames`` only.

    Its per-frame part (``encoder.embed``) is restated here with a reshape: embed's
    ``unflatten`` takes sizes the tracer fixes, which would fix the batch in the graph.
    """

    def __init__(self, network: MAED) -> None:
        super().__init__()
        self.network = network

    def forward(self, landmarks: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(B, T, 33, 6)`` → ``rotmat (B, T, 24, 3, 3)``, ``betas (B, T, 10)``,
        ``cam (B, T, 3)``."""
        b, t = landmarks.shape[:2]
        tokens = self.network.encoder.patch_embed(landmarks.flatten(0, 1))  # (B·T, 33, d)
        out = self.network.decode_tokens(tokens.reshape(b, t, *tokens.shape[1:]))
        return out["rotmat"], out["betas"], out["cam"]


class MAEDTemporal(nn.Module):
    """MAED after its patch embedding: ``tokens (B, T, hw, d)`` → rotations, shape, camera."""

    def __init__(self, network: MAED) -> None:
        super().__init__()
        self.network = network

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(B, T, hw, d)`` → ``rotmat (B, T, 24, 3, 3)``, ``betas (B, T, 10)``, ``cam (B, T, 3)``.

        T must be the network's ``num_frames``: the temporal encoding is learnt for it.
        """
        out = self.network.decode_tokens(tokens)
        return out["rotmat"], out["betas"], out["cam"]


class StandardisedConv(nn.Module):
    """A :class:`StdConv2d` whose kernel is standardised once, at export: the same output from
    a graph that convolves with a constant instead of recomputing the kernel's statistics on
    every call (which onnxruntime cannot fold away in a float16 graph)."""

    weight: Tensor

    def __init__(self, conv: StdConv2d) -> None:
        super().__init__()
        with torch.no_grad():
            self.register_buffer("weight", conv.standardized_weight())
        self.kernel = conv.kernel_size[0]
        self.stride = conv.stride[0]

    def forward(self, x: Tensor) -> Tensor:
        """``(N, I, H, W)`` → ``(N, O, ceil(H/s), ceil(W/s))``, as ``StdConv2d.forward``."""
        return F.conv2d(pad_same(x, self.kernel, self.stride), self.weight, None, self.stride)


def with_standardised_kernels(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every :class:`StdConv2d` made a :class:`StandardisedConv`."""
    frozen = copy.deepcopy(module)
    for parent in list(frozen.modules()):
        for name, child in parent.named_children():
            if isinstance(child, StdConv2d):
                setattr(parent, name, StandardisedConv(child))
    return frozen


class BodyGraph(nn.Module):
    """An SMPL-format body's forward pass from rotation matrices: ``smplx.lbs``'s linear blend
    skinning, laid out for onnxruntime to run one frame at a time quickly.

    The outputs and the gateway pose every person-frame alone (:mod:`service.outputs.meshes`),
    so a run of one row is what counts, and there a graph's cost is mostly its number of nodes
    and the copies its layouts force. Hence, with the same arithmetic as smplx up to float32
    rounding:

    - the rest joints come from β directly: the joint regressor is linear, so it is applied
      to the template and to each shape direction once, here (``J(T + S β) = J T + (J S) β``);
    - the kinematic chain composes ``(4, 4)`` transforms one tree level at a time (every joint
      of a level in one matrix product) instead of one joint at a time;
    - the vertices are kept as ``(B, 3, V)``, coordinates first, so that the shape directions,
      the skinning weights' product and the blend are plain matrix products and contiguous
      multiply-adds, turned to ``(B, V, 3)`` once at the end.

    ``V`` is the body's vertex count.
    """

    template: Tensor  # (3, V)
    shape_basis: Tensor  # (10, 3·V): each β's offsets, coordinates first
    joint_template: Tensor  # (24, 3): the template's joints
    joint_basis: Tensor  # (10, 24·3): each β's joint offsets
    posedirs: Tensor | None  # (207, 3·V); None: the body has no pose correctives (all zero)
    weights: Tensor  # (24, V): the skinning weights, joints first
    level_order: Tensor  # (24,): the joints by tree level, root first
    joint_order: Tensor  # (24,): where each joint lies in level_order
    parent_index: Tensor  # (24,): each joint's parent (the root: itself)
    has_parent: Tensor  # (24, 1): 0 for the root, 1 for every other joint
    homogeneous_row: Tensor  # (4,): a transform's last row

    def __init__(self, body: BodyModel) -> None:
        super().__init__()
        vertices = body.v_template.detach().double()  # (V, 3)
        shapedirs = body.shapedirs.detach().double()  # (V, 3, 10)
        regressor = body.J_regressor.detach().double()  # (24, V)
        num_betas = shapedirs.shape[-1]
        self.register_buffer("template", vertices.T.contiguous().float())
        self.register_buffer(
            "shape_basis", shapedirs.permute(2, 1, 0).reshape(num_betas, -1).contiguous().float()
        )
        self.register_buffer("joint_template", (regressor @ vertices).float())
        joint_basis = torch.einsum("jv,vkl->ljk", regressor, shapedirs)  # (10, 24, 3)
        self.register_buffer("joint_basis", joint_basis.reshape(num_betas, -1).float())
        # The stand-in's correctives are all zero: adding them changes nothing, and their
        # (207, V·3) matrix would be most of body.onnx. SMPL's are real and stay.
        posedirs = None
        if body.posedirs.any():
            per_vertex = body.posedirs.detach().reshape(body.posedirs.shape[0], -1, 3)
            posedirs = per_vertex.transpose(1, 2).reshape(body.posedirs.shape[0], -1)
        self.register_buffer("posedirs", posedirs)
        self.register_buffer("weights", body.lbs_weights.detach().T.contiguous().float())

        parents = [int(p) for p in body.parents.tolist()]
        depth: list[int] = []
        for parent in parents:  # parents come before their children
            depth.append(0 if parent < 0 else depth[parent] + 1)
        levels = [[j for j, d in enumerate(depth) if d == level] for level in range(max(depth) + 1)]
        order = [joint for level in levels for joint in level]
        self.level_sizes = [len(level) for level in levels]
        slot = {joint: index for level in levels for index, joint in enumerate(level)}
        # For each level after the root's, where each joint's parent lies in the level before.
        self.parent_slots = [[slot[parents[joint]] for joint in level] for level in levels[1:]]
        self.register_buffer("level_order", torch.tensor(order))
        self.register_buffer(
            "joint_order", torch.tensor([order.index(j) for j in range(len(order))])
        )
        self.register_buffer(
            "parent_index", torch.tensor([j if p < 0 else p for j, p in enumerate(parents)])
        )
        self.register_buffer("has_parent", torch.tensor([[float(p >= 0)] for p in parents]))
        self.register_buffer("homogeneous_row", torch.tensor([0.0, 0.0, 0.0, 1.0]))

    def forward(self, rotmat: Tensor, betas: Tensor) -> tuple[Tensor, Tensor]:
        """Pose and shape the body.

        Args:
            rotmat: ``(B, 24, 3, 3)`` rotations in SMPL order, the root's global.
            betas: ``(B, 10)`` shape coefficients.

        Returns:
            ``vertices (B, V, 3)`` and ``joints (B, 24, 3)`` in metres.
        """
        b, joints_count = rotmat.shape[:2]
        shaped = self.template + (betas @ self.shape_basis).reshape(b, 3, -1)  # (B, 3, V)
        rest = self.joint_template + (betas @ self.joint_basis).reshape(b, -1, 3)  # (B, 24, 3)
        if self.posedirs is not None:
            # Pose correctives read (R - I) of the 23 non-root joints: (B, 207) @ (207, 3·V).
            identity = torch.eye(3, dtype=rotmat.dtype, device=rotmat.device)
            pose_feature = (rotmat[:, 1:] - identity).reshape(b, -1)
            shaped = shaped + (pose_feature @ self.posedirs).reshape(b, 3, -1)

        # Each joint's transform relative to its parent: its rotation, and its rest offset from
        # the parent (the root's from the origin), as (4, 4) matrices in level order.
        offsets = rest - self.has_parent * rest[:, self.parent_index]  # (B, 24, 3)
        local = torch.cat([rotmat, offsets[..., None]], dim=-1)  # (B, 24, 3, 4)
        bottom = self.homogeneous_row.expand(b, joints_count, 1, 4)
        local = torch.cat([local, bottom], dim=-2)[:, self.level_order]  # (B, 24, 4, 4)
        by_level = torch.split(local, self.level_sizes, dim=1)
        chain = [by_level[0]]
        for level, slots in zip(by_level[1:], self.parent_slots, strict=True):
            chain.append(chain[-1][:, slots] @ level)
        world = torch.cat(chain, dim=1)[:, self.joint_order, :3]  # (B, 24, 3, 4)
        joints = world[..., 3]  # (B, 24, 3)

        # Each joint moves a rest-pose point x to R_j x + (p_j - R_j J_j); skinning blends the
        # joints' (3, 4) transforms by the weights, (B, 12, 24) @ (24, V), then applies each
        # vertex's blend to it, coordinate by coordinate.
        shift = joints - (world[..., :3] @ rest[..., None])[..., 0]  # (B, 24, 3)
        transforms = torch.cat([world[..., :3], shift[..., None]], dim=-1)  # (B, 24, 3, 4)
        blended = transforms.reshape(b, joints_count, 12).transpose(1, 2) @ self.weights
        blended = blended.reshape(b, 3, 4, -1)  # (B, 3, 4, V): row, column, vertex
        vertices = (
            blended[:, :, 0] * shaped[:, None, 0]
            + blended[:, :, 1] * shaped[:, None, 1]
            + blended[:, :, 2] * shaped[:, None, 2]
            + blended[:, :, 3]
        )  # (B, 3, V)
        return vertices.transpose(1, 2), joints


def crop_settings(recipe: Recipe) -> tuple[int, float]:
    """The crops a recipe's network reads: their side in pixels and their scale over the box."""
    data = recipe.data
    if isinstance(recipe.model, MAEDConfig):
        size = recipe.model.image_size
    else:
        size = data.crop_size if isinstance(data, DataConfig) else DEFAULT_CROP_SIZE
    return size, data.crop_scale if isinstance(data, DataConfig) else DEFAULT_CROP_SCALE


def image_input(recipe: Recipe) -> InputSpec:
    """The crops a recipe's image network reads, normalised as training normalised them."""
    size, scale = crop_settings(recipe)
    return InputSpec(image_size=size, mean=IMAGE_MEAN, std=IMAGE_STD, crop_scale=scale)


def landmark_input(recipe: Recipe) -> LandmarkInputSpec:
    """The landmarks a recipe's keypoint network reads: in the squares its data cut."""
    data = recipe.data
    scale = data.crop_scale if isinstance(data, LandmarkDataConfig) else DEFAULT_LANDMARK_CROP_SCALE
    return LandmarkInputSpec(kind="landmarks", crop_scale=scale, channels=LANDMARK_CHANNELS)


def reads_landmarks(network: nn.Module) -> bool:
    """Whether ``network`` is a keypoint family's: its frames are landmarks, not images."""
    if isinstance(network, SPSNet):
        return isinstance(network.encoder, LandmarkEncoder)
    return isinstance(network, MAED) and network.config.tokens == "landmarks"


def example_landmarks(batch: int, frames: int, generator: torch.Generator | None = None) -> Tensor:
    """Random landmarks ``(B, T, 33, 6)`` in the ranges the service gives them (see
    :data:`EXAMPLE_CROP_EXTENT`): an example to trace and a parity input."""
    shape = (batch, frames, NUM_LANDMARKS)
    landmarks = torch.empty(*shape, NUM_CHANNELS)
    crop = torch.rand(*shape, 2, generator=generator) * 2 - 1
    landmarks[..., _XY] = EXAMPLE_CROP_EXTENT * crop
    landmarks[..., _VISIBILITY] = torch.rand(*shape, generator=generator)
    landmarks[..., _WORLD] = EXAMPLE_WORLD_STD_M * torch.randn(*shape, 3, generator=generator)
    landmarks[:, ::EXAMPLE_MISSED_EVERY] = 0.0
    return landmarks


def network_graphs(
    recipe: Recipe, network: nn.Module, encoder: tuple[Recipe, ResNet50] | None = None
) -> NetworkGraphs:
    """The encoder and temporal graphs of a trained network (put in eval mode); a keypoint
    family's has no encoder graph.

    Args:
        recipe: the network's recipe.
        network: an SPS-Net or a MAED, on images or on landmarks.
        encoder: for an SPS-Net that reads precomputed features (``encoder: features``), the
            recipe and ResNet-50 of the network whose features it was trained on.
    """
    network.eval()
    if reads_landmarks(network):
        if encoder is not None:
            raise ValueError(f"{recipe.name} reads landmarks: it takes no image encoder")
        return _landmark_graphs(recipe, network)
    if isinstance(network, MAED):
        if encoder is not None:
            raise ValueError(f"{recipe.name} is a MAED, which has its own image encoder")
        return _maed_graphs(recipe, network)
    if isinstance(network, SPSNet) and isinstance(recipe.model, SPSNetConfig):
        return _spsnet_graphs(recipe, recipe.model, network, encoder)
    raise TypeError(f"no bundle graphs for a {type(network).__name__}")


def _spsnet_graphs(
    recipe: Recipe,
    config: SPSNetConfig,
    network: SPSNet,
    encoder: tuple[Recipe, ResNet50] | None,
) -> NetworkGraphs:
    # The crops are those of the network that sees them: the encoder's own recipe says which.
    if encoder is None:
        if network.encoder is None:
            raise ValueError(
                f"{recipe.name} reads precomputed features: it needs the image encoder they "
                "came from"
            )
        crop_recipe, image_encoder = recipe, network.encoder
    else:
        if network.encoder is not None:
            raise ValueError(f"{recipe.name} has its own image encoder: it takes no other")
        crop_recipe, image_encoder = encoder
    spec = image_input(crop_recipe)
    window = _trained_window(recipe)
    crops = torch.randn(EXAMPLE_BATCH, RGB, spec.image_size, spec.image_size)
    with torch.no_grad():
        features = image_encoder.eval()(crops)  # (B, d)
    feature_shape = tuple(features.shape[1:])
    if feature_shape != (config.feature_dim,):
        raise ValueError(
            f"{crop_recipe.name}'s encoder gives {feature_shape[0]}-d features, but "
            f"{recipe.name} reads {config.feature_dim}-d ones"
        )
    windows = features[:, None].expand(-1, window, *feature_shape).contiguous()  # (B, T, d)
    return NetworkGraphs(
        family="spsnet",
        encoder=_encoder_graph(image_encoder, crops),
        temporal=_temporal_graph(SPSNetTemporal(network), windows, {0: BATCH_AXIS, 1: WINDOW_AXIS}),
        input=spec,
        window=window,
        dynamic_window=True,
        feature_shape=feature_shape,
    )


def _maed_graphs(recipe: Recipe, network: MAED) -> NetworkGraphs:
    spec = image_input(recipe)
    window = network.config.num_frames
    patch_embed = with_standardised_kernels(network.encoder.patch_embed)
    crops = torch.randn(EXAMPLE_BATCH, RGB, spec.image_size, spec.image_size)
    with torch.no_grad():
        tokens = patch_embed(crops)  # (B, hw, d)
    feature_shape = tuple(tokens.shape[1:])
    windows = tokens[:, None].expand(-1, window, *feature_shape).contiguous()  # (B, T, hw, d)
    return NetworkGraphs(
        family="maed",
        encoder=_encoder_graph(patch_embed, crops),
        temporal=_temporal_graph(MAEDTemporal(network), windows, {0: BATCH_AXIS}),
        input=spec,
        window=window,
        dynamic_window=False,
        feature_shape=feature_shape,
    )


def _landmark_graphs(recipe: Recipe, network: nn.Module) -> NetworkGraphs:
    """A keypoint family's network as one temporal graph on landmarks ``(B, T, 33, 6)``."""
    module: nn.Module
    if isinstance(network, MAED):
        # MAED's temporal encoding is learnt for its T only: the window stays fixed.
        family: Family = "maed"
        module, window, dynamic = MAEDLandmarks(network), network.config.num_frames, False
    elif isinstance(network, SPSNet):
        family = "spsnet"
        module, window, dynamic = SPSNetLandmarks(network), _trained_window(recipe), True
    else:
        raise TypeError(f"no bundle graphs for a {type(network).__name__}")
    axes = {0: BATCH_AXIS, 1: WINDOW_AXIS} if dynamic else {0: BATCH_AXIS}
    windows = example_landmarks(EXAMPLE_BATCH, window)  # (B, T, 33, 6)
    return NetworkGraphs(
        family=family,
        encoder=None,
        temporal=_temporal_graph(module, windows, axes),
        input=landmark_input(recipe),
        window=window,
        dynamic_window=dynamic,
        feature_shape=tuple(windows.shape[2:]),
    )


def _trained_window(recipe: Recipe) -> int:
    """The window an SPS-Net trained on: its clips' length."""
    return recipe.training.clip_length if recipe.training else DEFAULT_WINDOW


def _encoder_graph(module: nn.Module, crops: Tensor) -> Graph:
    """``crops (B, 3, S, S)`` → ``features (B, …)``."""
    batch = {0: BATCH_AXIS}
    return Graph(
        "encoder",
        module.eval(),
        {"crops": crops},
        ("features",),
        {"crops": batch, "features": batch},
    )


def _temporal_graph(module: nn.Module, windows: Tensor, axes: dict[int, str]) -> Graph:
    """``features (B, T, …)`` → ``rotmat``, ``betas``, ``cam``; ``axes``: which of B, T vary."""
    outputs = ("rotmat", "betas", "cam")
    return Graph(
        "temporal",
        module.eval(),
        {"features": windows},
        outputs,
        {name: axes for name in ("features", *outputs)},
    )


def body_graph(body: BodyModel) -> Graph:
    """The ``body`` graph of a body model, traced at the rest pose and mean shape."""
    rotmat = torch.eye(3).expand(EXAMPLE_BATCH, NUM_JOINTS, 3, 3).contiguous()
    betas = torch.zeros(EXAMPLE_BATCH, NUM_BETAS)
    outputs = ("vertices", "joints")
    return Graph(
        "body",
        BodyGraph(body).eval(),
        {"rotmat": rotmat, "betas": betas},
        outputs,
        {name: {0: BATCH_AXIS} for name in ("rotmat", "betas", *outputs)},
    )
