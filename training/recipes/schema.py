"""The schema of a recipe: which network, with which switches, trained with which loss weights.

Recipes are YAML files (``training/recipes/*.yaml``) validated by these pydantic models. The
papers' values live in the recipe files, each citing its section; the defaults here are only
what every recipe shares. Each ablation of the papers is one field of a model config.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SPSNetConfig(_Strict):
    """SPS-Net (SPS-Net §3, §4.1)."""

    family: Literal["spsnet"] = "spsnet"
    # Encoder E: "resnet50" (SPIN/HMR's layout, 2048-d), "features" (precomputed features
    # of feature_dim, as in VIBE-style dataset files: the model then has no image encoder) or
    # "landmarks" (an MLP on a frame's 33 BlazePose landmarks: the keypoint family).
    encoder: Literal["resnet50", "features", "landmarks"] = "resnet50"
    landmark_hidden: PositiveInt = 512  # the landmark encoder's hidden width
    landmark_blocks: NonNegativeInt = 0  # its residual blocks (Martinez et al. 2017)
    # Whether it reads the landmarks' metric 3D points, or only their 2D and visibility.
    landmark_world: bool = True
    freeze_encoder: bool = True
    feature_dim: PositiveInt = 2048
    # Temporal module: the self-attention A (Eq. 1-2), a GRU instead of A, or none (w/o A).
    temporal: Literal["attention", "gru", "none"] = "attention"
    attention_hidden: PositiveInt = 2048
    gru_layers: PositiveInt = 2
    gru_hidden: PositiveInt = 1024  # VIBE's temporal encoder
    # Forecasting module F and the feature fusion (w/o F: the regressors read h_i directly).
    forecasting: bool = True
    forecast_hidden: PositiveInt = 2048
    # HMR's regressor with iterative error feedback from mean parameters.
    regressor_hidden: PositiveInt = 1024
    regressor_iterations: PositiveInt = 3
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    # Discriminator D: self-attention A_D over [beta, theta] (82-d), mean over frames, FC+sigmoid.
    discriminator_hidden: PositiveInt = 82


class MAEDConfig(_Strict):
    """MAED (MAED §3, §4.2): hybrid CNN + spatial-temporal encoder (STE), KTD decoder."""

    family: Literal["maed"] = "maed"
    image_size: PositiveInt = 224
    num_frames: PositiveInt = 16
    # The spatial tokens of a frame: the ResNetV2 feature map's cells (the paper), or one token
    # per BlazePose landmark (the keypoint family: a Linear of the landmark's channels).
    tokens: Literal["patches", "landmarks"] = "patches"
    # BiT-style ResNetV2 backbone (stem + stages of bottlenecks), stride 16 with 3 stages.
    backbone_layers: tuple[PositiveInt, ...] = (3, 4, 9)
    backbone_width: PositiveInt = 64
    embed_dim: PositiveInt = 768
    depth: PositiveInt = 6
    num_heads: PositiveInt = 12
    mlp_ratio: float = Field(4.0, gt=0.0)
    qkv_bias: bool = True
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0)
    attn_drop_rate: float = Field(0.0, ge=0.0, lt=1.0)
    drop_path_rate: float = Field(0.0, ge=0.0, lt=1.0)
    # STE block (Table 2): parallel (default), series, coupling; "spatial" = MSA-S only (SE).
    block: Literal["parallel", "series", "coupling", "spatial"] = "parallel"
    # Parallel block: attentive addition (V2, default) or the plain mean of both branches (V1).
    attentive_addition: bool = True
    # Decoder (Table 2): KTD over a kinematic tree, or HMR's iterative regressor.
    decoder: Literal["ktd", "iterative"] = "ktd"
    kinematic_tree: Literal["smpl", "random", "reversed"] = "smpl"
    tree_seed: int = 0  # for kinematic_tree = "random"
    decoder_hidden: PositiveInt = 1024
    decoder_dropout: float = Field(0.5, ge=0.0, lt=1.0)
    regressor_iterations: PositiveInt = 3  # for decoder = "iterative"


ModelConfig = Annotated[SPSNetConfig | MAEDConfig, Field(discriminator="family")]


class LossWeights(_Strict):
    """λ of every loss term; 0 switches a term off. Names follow the papers' symbols."""

    keypoints_2d: float = Field(0.0, ge=0.0)  # λ_joint^2D / L_2D
    joints_3d: float = Field(0.0, ge=0.0)  # λ_joint^3D / L_3D
    pose: float = Field(0.0, ge=0.0)  # λ_θ (SMPL parameter loss on pose)
    shape: float = Field(0.0, ge=0.0)  # λ_β
    adversarial: float = Field(0.0, ge=0.0)  # λ_adv (Eq. 7)
    feature: float = Field(0.0, ge=0.0)  # λ_feature (Eq. 3)
    mask: float = Field(0.0, ge=0.0)  # λ_mask (Eq. 5)
    camera: float = Field(0.0, ge=0.0)  # λ_camera (Eq. 6)
    param_pose: float = Field(0.0, ge=0.0)  # λ_param^θ (Eq. 8)
    param_shape: float = Field(0.0, ge=0.0)  # λ_param^β (Eq. 8)
    param_camera: float = Field(0.0, ge=0.0)  # λ_param^camera (Eq. 8)
    norm: float = Field(0.0, ge=0.0)  # MAED's L_NORM


class ReportedFigures(_Strict):
    """What the paper reports for this configuration, to compare ours against.

    ``accel_3dpw`` is the magnitude of the predicted joints' acceleration (MAED's and VIBE's
    "ACCEL" column); ``accel_error_3dpw`` the error against ground truth (SPS-Net's).
    """

    source: str  # the table it comes from
    parameters_m: float | None = None
    pa_mpjpe_3dpw: float | None = None
    mpjpe_3dpw: float | None = None
    pve_3dpw: float | None = None
    accel_3dpw: float | None = None
    accel_error_3dpw: float | None = None


class DataConfig(_Strict):
    """What a recipe trains and validates on. Paths are dataset files (VIBE/MAED layout) or
    AMASS-style motion files; relative paths are taken from the working directory."""

    kind: Literal["files"] = "files"

    train: tuple[str, ...]
    val: tuple[str, ...] = ()
    # Real motion for SPS-Net's discriminator; empty: the built-in clips.
    motion: tuple[str, ...] = ()
    # The body model the files' SMPL parameters belong to: "smpl", "standin" or a file.
    body: str = "smpl"
    crop_size: PositiveInt = 224
    # The square crop's side is this times the box's longer side (VIBE's demo: 1.1).
    crop_scale: float = Field(1.1, gt=0.0)
    augment: bool = True  # MAED §4.2: flip, crop jitter, colour jitter, random erasing


class LandmarkNoise(_Strict):
    """The front-end's error added to exact synthetic landmarks (``meshcast score`` measures the
    real front-end's on synthetic videos). Positions are in shares of the person box's longer
    side."""

    position: float = Field(0.0, ge=0.0)  # Gaussian std of each landmark's 2D position
    outlier_probability: float = Field(0.0, ge=0.0, le=1.0)  # a landmark far off
    outlier: float = Field(0.0, ge=0.0)  # the std of an outlier's offset
    world: float = Field(0.0, ge=0.0)  # metres: std of each metric 3D point, per axis
    # BlazePose's metric points come turned as a whole, the turn drifting over frames: degrees
    # (std about x, y, z) of a clip's constant turn and of its drift, whose frame-to-frame
    # correlation is world_drift_correlation.
    world_turn: tuple[float, float, float] = (0.0, 0.0, 0.0)
    world_drift: tuple[float, float, float] = (0.0, 0.0, 0.0)
    world_drift_correlation: float = Field(0.0, ge=0.0, lt=1.0)
    # Failed frames: runs (failure_length frames long on average, a share failure_probability
    # of the frames) where BlazePose reports a wrong person with confidence: its metric points
    # turned 60-180° about a random axis, its 2D skeleton turned (std failure_turn degrees),
    # scaled (log-uniform in failure_scale), shifted (std failure_shift), mirrored left for
    # right (failure_mirror_probability), each landmark off by failure_position more.
    failure_probability: float = Field(0.0, ge=0.0, le=1.0)
    failure_length: float = Field(1.0, ge=1.0)  # frames
    failure_turn: float = Field(0.0, ge=0.0)
    failure_scale: tuple[float, float] = (1.0, 1.0)
    failure_shift: float = Field(0.0, ge=0.0)
    failure_position: float = Field(0.0, ge=0.0)
    failure_mirror_probability: float = Field(0.0, ge=0.0, le=1.0)
    hidden_probability: float = Field(0.0, ge=0.0, le=1.0)  # a landmark reported invisible
    missed_frame_probability: float = Field(0.0, ge=0.0, le=1.0)  # no landmarks at all
    box_shift: float = Field(0.0, ge=0.0)  # std of the box centre's offset
    box_scale: float = Field(0.0, ge=0.0)  # std of the log of the box side's factor


class LandmarkDataConfig(_Strict):
    """Synthetic landmark sequences (:mod:`training.data.landmark_clips`): the body driven by
    the motion library, seen by random cameras, its 33 landmarks made from the mesh."""

    kind: Literal["landmarks"]

    clips: tuple[str, ...]  # built-in motion clips to train on
    val_clips: tuple[str, ...] = ()  # to validate on (other motions, other seeds)
    body: str = "standin"
    crop_scale: float = Field(1.2, gt=0.0)  # the crop's side over the box's longer side
    fps: tuple[float, float] = (10.0, 30.0)  # the video's frame rate is drawn in this range
    image_size: tuple[PositiveInt, PositiveInt] = (768, 576)  # (W, H)
    # Chance that each of the body's five chains plays a second motion (training clips only).
    chain_swap_probability: float = Field(0.0, ge=0.0, le=1.0)
    # Chance that a training clip's body is tilted as a whole (lying, leaning), and how far.
    tilt_probability: float = Field(0.0, ge=0.0, le=1.0)
    tilt_max_degrees: float = Field(90.0, ge=0.0, le=180.0)
    train_items: PositiveInt = 12_000  # clips posed once; each draw adds fresh noise
    # Frames posed per clip: at least the longest clip a recipe of this data reads (T + 1 with
    # L_camera), so that recipes of different T share the posed clips.
    frames: PositiveInt = 17
    val_items: PositiveInt = 256
    # The metric 3D points' axes: the camera's, or "view", those of a camera turned to look
    # straight at the person, as BlazePose gives them (landmark_clips.view_axes).
    world_axes: Literal["camera", "view"] = "camera"
    # The posed clips, shared by recipes of the same data; None: posed anew by every run.
    cache_dir: str | None = "data/landmarks"
    noise: LandmarkNoise = LandmarkNoise()
    # The front-end's own output on synthetic videos of the training motions, with their truth
    # (training/data/recorded_clips.py, `meshcast record-frontend`): a file of recorded runs,
    # and the share of training clips drawn from it instead of made from the mesh; validation
    # draws the same share from recorded_val (videos of the validation motions).
    recorded: str | None = None
    recorded_val: str | None = None
    recorded_share: float = Field(0.0, ge=0.0, lt=1.0)


class TrainingConfig(_Strict):
    """How a recipe trains: clips, batches, schedule, optimiser."""

    clip_length: PositiveInt  # T
    clip_stride: PositiveInt  # frames between the starts of successive training clips
    batch_size: PositiveInt
    epochs: PositiveInt
    iterations_per_epoch: PositiveInt
    lr: float = Field(gt=0.0)
    lr_discriminator: float = Field(1e-4, gt=0.0)
    lr_milestones: tuple[PositiveInt, ...] = ()  # epochs after which the rate is multiplied
    lr_decay: float = Field(0.1, gt=0.0, le=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    seed: int = 0
    mixed_precision: bool = True  # on CUDA only
    validate_every: PositiveInt = 1  # epochs
    # A checkpoint (ours, or an imported one) whose tensors of the same name and shape start
    # the network: SPS-Net §4.1 initialises its regressors from a single-image model's.
    init_from: str | None = None
    num_workers: int = Field(2, ge=0)


class Recipe(_Strict):
    """A named recipe: the network, its loss weights, and how and on what it trains."""

    name: str
    source: str  # the paper section the values come from, or why they differ
    model: ModelConfig
    losses: LossWeights = LossWeights()
    training: TrainingConfig | None = None
    data: DataConfig | LandmarkDataConfig | None = None
    reported: ReportedFigures | None = None
