"""Training clips for the keypoint families: synthetic landmark sequences with exact labels.

Each item is one person over T frames. Posing it is the costly part and is done once per item
(:func:`pose_clip`, from the item's own seed): the body (stand-in or SMPL) with a random shape
plays a varied motion of the library (:func:`training.synth.scene.sample_person`: speed,
mirroring, blending into a second clip, smooth joint noise; for training clips, chains of
joints swapped with another such motion, :func:`swap_chains`, and the body tilted,
:func:`tilt_body`), seen by a random camera
(:func:`training.synth.scene.sample_camera`, with the ranges of :data:`CAMERA_RANGES`) at a
frame rate drawn from the recipe's range; its BlazePose landmarks come from the mesh
(:mod:`training.body.landmarks`). Every draw of the item then lays them out as the service gives
them to the network (:mod:`training.models.landmark_input`) with fresh front-end error
(:class:`~training.recipes.LandmarkNoise`, :func:`noisy_clip`):

* the box is the projected mesh's, clipped to the frame (what a detector draws), its centre
  and size jittered; the crop is its square of side ``crop_scale`` × the longer side;
* every landmark's 2D position gets Gaussian noise, a few are outliers; landmarks outside the
  frame, and a random share of the others, are reported with a low visibility and a worse
  position (BlazePose still guesses them); some frames are missed altogether (all zeros);
* the metric 3D points are the landmarks less their hips' midpoint, in the camera's axes or
  (``world_axes: view``) those of a camera looking straight at the hips (:func:`view_axes`:
  BlazePose's), turned as a whole as BlazePose's come turned (:func:`world_turns`: a constant
  turn, a drift), with Gaussian noise;
* in runs of failed frames (:func:`failed_frames`), BlazePose reports a wrong person with
  confidence: a skeleton mirrored, turned, scaled and shifted (:func:`failed_skeletons`), its
  metric points turned far.

Labels follow :class:`~training.data.batch.Clip`: SPIN's 49 joints in the same crop and in the
camera frame, the pose with its camera-frame orientation, β. Item ``i`` is posed from
``(seed, split, i)`` and its noise of epoch ``e`` drawn from ``(seed, split, i, e)``
(validation items' from ``e = 0``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import NamedTuple, TypedDict

import numpy as np
import torch
from scipy.spatial.transform import Rotation
from torch import Tensor
from torch.utils.data import Dataset

from meshcast.progress import progress_bar
from training.body import BodyModel, load_body_model
from training.body.landmarks import (
    BLAZEPOSE_FLIP_PERMUTATION,
    HIP_LANDMARKS,
    NUM_LANDMARKS,
    landmark_regressor,
)
from training.body.skeleton import SMPL_CHAINS
from training.models.landmark_input import NUM_CHANNELS, WORLD_CHANNELS
from training.recipes.schema import LandmarkDataConfig, LandmarkNoise
from training.synth.generate import posed_in_camera, project
from training.synth.scene import Person, sample_camera, sample_person

# Wider than the rendered videos': people from a fifth to most of the frame height, cameras
# from knee height to a first floor (street cameras such as vtest.avi's look down on people).
CAMERA_RANGES = {"person_fraction": (0.15, 0.9), "camera_height": (0.4, 6.0)}
# Visibility BlazePose reports for landmarks it sees, and for those it guesses.
SEEN_VISIBILITY = (0.75, 1.0)
GUESSED_VISIBILITY = (0.0, 0.4)
GUESSED_NOISE_FACTOR = 3.0  # a guessed landmark's position error, times a seen one's
# How far a failed frame's metric points are turned (LandmarkNoise.world_failure_probability).
WORLD_FAILURE_DEGREES = (60.0, 180.0)
_X, _Y, _VISIBILITY = 0, 1, 2
# One vertex in this many outlines the body for its box (~550 of the stand-in's 13,718: the
# box comes out within a centimetre of the whole mesh's).
BOX_VERTEX_STEP = 25
# The least share of a person's box in the frame, in every frame of a clip.
MIN_IN_FRAME = 0.6
# Processes that pose a split's clips (each clip from its own seed: the same clips however many).
POSING_PROCESSES = 2
POSING_CHUNK = 64
PARALLEL_POSING_MIN_ITEMS = 1000  # below, starting the processes costs more than it saves


def box_vertices(body: BodyModel) -> np.ndarray:
    """The vertices whose projection gives a person's box."""
    return np.arange(0, body.num_vertices, BOX_VERTEX_STEP)


class LandmarkClip(TypedDict):
    """One training item; as :class:`~training.data.batch.Clip`, with landmarks for frames."""

    landmarks: Tensor  # (T, 33, 6): see training.models.landmark_input
    keypoints_2d: Tensor  # (T, 49, 3): crop coordinates in [-1, 1], confidence 1
    joints_3d: Tensor  # (T, 49, 4): metres, camera frame, validity 1
    pose: Tensor  # (T, 72)
    betas: Tensor  # (T, 10)
    has_smpl: Tensor  # (T,) bool
    frame_ids: Tensor  # (T,) long


def crop_squares(boxes: np.ndarray, crop_scale: float) -> np.ndarray:
    """``(F, 4)`` boxes ``x1, y1, x2, y2`` → ``(F, 3)`` squares ``cx, cy, side``."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    side = crop_scale * (boxes[:, 2:] - boxes[:, :2]).max(axis=1)
    return np.concatenate([centre, side[:, None]], axis=1)


def to_crop(pixels: np.ndarray, squares: np.ndarray) -> np.ndarray:
    """Pixels ``(F, J, 2)`` → crop coordinates in [−1, 1] of the squares ``(F, 3)``."""
    return (pixels - squares[:, None, :2]) / (squares[:, None, 2:] / 2.0)


def frame_boxes(vertex_pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """The box ``(F, 4)`` of each frame's projected vertices ``(F, V, 2)``, clipped to the
    frame (at least a pixel wide)."""
    low = np.clip(vertex_pixels.min(axis=1), 0.0, [width - 2.0, height - 2.0])
    high = np.clip(vertex_pixels.max(axis=1), low + 1.0, [width - 1.0, height - 1.0])
    return np.concatenate([low, np.maximum(high, low + 1.0)], axis=1)


def jitter_boxes(boxes: np.ndarray, noise: LandmarkNoise, rng: np.random.Generator) -> np.ndarray:
    """Boxes moved and scaled as a detector's differ from the true ones, frame by frame."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    size = boxes[:, 2:] - boxes[:, :2]
    side = size.max(axis=1, keepdims=True)
    centre = centre + rng.normal(0.0, noise.box_shift, centre.shape) * side
    size = size * np.exp(rng.normal(0.0, noise.box_scale, (len(boxes), 1)))
    return np.concatenate([centre - size / 2.0, centre + size / 2.0], axis=1)


def view_axes(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Camera-frame ``points (F, J, 3)`` in the axes of the camera turned (the least turn) to
    look straight at each frame's ``centres (F, 3)``.

    BlazePose sees a person's crop as if straight ahead, so its metric points come in those
    axes, not the real camera's: a person at the edge of a wide view, seen partly from the side
    by the camera, faces BlazePose's axes as if in the middle (measured on meshcast synth videos:
    the turn between its points and the camera-frame ones follows the person's bearing).
    """
    directions = centres / np.linalg.norm(centres, axis=-1, keepdims=True)  # (F, 3)
    axes = np.cross(directions, [0.0, 0.0, 1.0])  # (F, 3)
    sines = np.linalg.norm(axes, axis=-1, keepdims=True)
    angles = np.arctan2(sines, directions[:, 2:3])
    turns = Rotation.from_rotvec(axes / np.maximum(sines, 1e-12) * angles).as_matrix()
    return np.einsum("fij,fkj->fki", turns, points)


def failed_frames(frames: int, noise: LandmarkNoise, rng: np.random.Generator) -> np.ndarray:
    """``(frames,)`` run ids of a clip's failed frames (−1 where none; one id per run), drawn
    as a two-state Markov chain whose runs last ``failure_length`` frames on average and fill a
    share ``failure_probability`` of the frames."""
    share = noise.failure_probability
    runs = np.full(frames, -1)
    if share == 0.0:  # no draws: a recipe without failures keeps its noise as it was
        return runs
    leave = 1.0 / noise.failure_length if share < 1.0 else 0.0
    enter = min(1.0, share / (1.0 - share) * leave) if share < 1.0 else 1.0
    failed, run = bool(rng.random() < share), 0
    for frame in range(frames):
        if frame and rng.random() < (leave if failed else enter):
            failed = not failed
            run += failed
        if failed:
            runs[frame] = run
    return runs


def world_turns(
    frames: int, failures: np.ndarray, noise: LandmarkNoise, rng: np.random.Generator
) -> np.ndarray:
    """``(frames, 3, 3)`` the turns of one clip's metric points by the front-end's error: a
    constant turn, a drift correlated from frame to frame, and each run of ``failures``
    (:func:`failed_frames`) turned far about a random axis."""
    if not any(noise.world_turn + noise.world_drift) and (failures < 0).all():
        return np.broadcast_to(np.eye(3), (frames, 3, 3))  # no draws, as failed_frames
    correlation = noise.world_drift_correlation
    drift_std = np.radians(noise.world_drift)
    drift = np.zeros((frames, 3))
    drift[0] = rng.normal(0.0, drift_std)
    for frame in range(1, frames):
        innovation = rng.normal(0.0, drift_std) * math.sqrt(1.0 - correlation**2)
        drift[frame] = correlation * drift[frame - 1] + innovation
    turns = Rotation.from_rotvec(rng.normal(0.0, np.radians(noise.world_turn)) + drift)
    matrices = turns.as_matrix()  # (frames, 3, 3)
    for run in np.unique(failures[failures >= 0]):
        axis = rng.normal(size=3)
        angle = math.radians(rng.uniform(*WORLD_FAILURE_DEGREES))
        far = Rotation.from_rotvec(axis / np.linalg.norm(axis) * angle).as_matrix()
        matrices[failures == run] = far @ matrices[failures == run]
    return matrices


def failed_skeletons(
    crop: np.ndarray, failures: np.ndarray, scale: float, noise: LandmarkNoise,
    rng: np.random.Generator,
) -> np.ndarray:  # fmt: skip
    """``crop (F, 33, 2)`` with each run of ``failures`` replaced by a wrong skeleton: the
    true one mirrored left for right (sometimes), turned, scaled and shifted about its centre,
    one draw a run, and every landmark off by ``failure_position`` (shares of the box side,
    ``scale`` crop units each)."""
    out = crop.copy()
    for run in np.unique(failures[failures >= 0]):
        rows = failures == run
        skeleton = crop[rows]  # (R, 33, 2)
        if rng.random() < noise.failure_mirror_probability:
            skeleton = skeleton[:, BLAZEPOSE_FLIP_PERMUTATION]
        angle = math.radians(rng.normal(0.0, noise.failure_turn))
        turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        size = math.exp(rng.uniform(*np.log(noise.failure_scale)))
        centre = skeleton.mean(axis=1, keepdims=True)
        shift = rng.normal(0.0, noise.failure_shift * scale, 2)
        out[rows] = centre + shift + size * (skeleton - centre) @ turn.T
    noisy = failures >= 0
    out[noisy] += rng.normal(0.0, noise.failure_position * scale, out[noisy].shape)
    return out


def noisy_landmarks(
    crop: np.ndarray,
    world: np.ndarray,
    in_frame: np.ndarray,
    scale: float,
    noise: LandmarkNoise,
    rng: np.random.Generator,
) -> np.ndarray:
    """The network's input ``(F, 33, 6)`` from exact landmarks with the front-end's error.

    Args:
        crop: ``(F, 33, 2)`` exact crop coordinates; world: ``(F, 33, 3)`` hip-centred metres.
        in_frame: ``(F, 33)`` whether each landmark lies inside the frame.
        scale: crop units a share of the box's longer side spans (``2 / crop_scale``).
    """
    frames = len(crop)
    failures = failed_frames(frames, noise, rng)
    crop = failed_skeletons(crop, failures, scale, noise, rng)
    guessed = ~in_frame | (rng.random(in_frame.shape) < noise.hidden_probability)
    std = np.where(guessed, GUESSED_NOISE_FACTOR, 1.0)[..., None] * noise.position * scale
    position = crop + rng.normal(0.0, 1.0, crop.shape) * std
    outlier = rng.random(in_frame.shape) < noise.outlier_probability
    position += outlier[..., None] * rng.normal(0.0, noise.outlier * scale, crop.shape)
    visibility = np.where(
        guessed, rng.uniform(*GUESSED_VISIBILITY, guessed.shape), rng.uniform(*SEEN_VISIBILITY)
    )
    out = np.zeros((frames, NUM_LANDMARKS, NUM_CHANNELS), dtype=np.float32)
    out[..., _X], out[..., _Y] = position[..., 0], position[..., 1]
    out[..., _VISIBILITY] = visibility
    turned = np.einsum("fij,fkj->fki", world_turns(frames, failures, noise, rng), world)
    out[..., WORLD_CHANNELS] = turned + rng.normal(0.0, noise.world, world.shape)
    missed = rng.random(frames) < noise.missed_frame_probability
    out[missed] = 0.0
    return out


class PosedClips(NamedTuple):
    """Exact, noise-free clips of ``F`` frames, stacked: ``(N, F, …)`` arrays (one clip: N = 1).

    What posing the body costs is done here once; noise is added per draw (:func:`noisy_clip`).
    """

    landmark_pixels: np.ndarray  # (N, F, 33, 2) the landmarks projected into the frame
    landmark_points: np.ndarray  # (N, F, 33, 3) metres, camera frame
    boxes: np.ndarray  # (N, F, 4) x1, y1, x2, y2: the projected body's box, clipped to the frame
    joint_pixels: np.ndarray  # (N, F, 49, 2) SPIN's 49 joints projected into the frame
    joints: np.ndarray  # (N, F, 49, 3) metres, camera frame
    pose: np.ndarray  # (N, F, 72) axis-angle, camera-frame global orientation
    betas: np.ndarray  # (N, 10)
    frame_size: np.ndarray  # (N, 2) width, height


def in_frame_share(vertex_pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(F,)`` the share of each frame's whole body box ``(F, V, 2)`` that lies in the frame."""
    low, high = vertex_pixels.min(axis=1), vertex_pixels.max(axis=1)
    inside = np.clip(high, 0, [width, height]) - np.clip(low, 0, [width, height])
    return np.prod(inside, axis=1) / np.maximum(np.prod(high - low, axis=1), 1e-9)


def swap_chains(
    person: Person, donor: Person, probability: float, rng: np.random.Generator
) -> Person:
    """``person`` with each of the body's chains (:data:`SMPL_CHAINS`: spine and head, each
    leg, each arm) played by ``donor`` instead, with ``probability`` a chain, frame for frame.

    Every joint's rotation stays one that a real motion made (within the body's limits), while
    the combinations of the 11 training motions multiply: a punch's arms over a crawl's legs.
    """
    pose = person.pose.reshape(len(person.pose), -1, 3).copy()
    donated = donor.pose.reshape(len(donor.pose), -1, 3)
    for joints in SMPL_CHAINS.values():
        if rng.random() < probability:
            pose[:, joints] = donated[:, joints]
    return dataclasses.replace(person, pose=pose.reshape(person.pose.shape))


def tilt_body(person: Person, max_degrees: float, rng: np.random.Generator) -> Person:
    """``person`` turned as a whole about a random horizontal axis through the pelvis by up
    to ``max_degrees`` (one turn for the clip): a standing pose becomes one lying on its back,
    side or front, which the motions hold only in passing (getting up, rolling)."""
    heading = rng.uniform(-np.pi, np.pi)
    axis = np.array([math.cos(heading), 0.0, math.sin(heading)])
    tilt = Rotation.from_rotvec(axis * math.radians(rng.uniform(-max_degrees, max_degrees)))
    pose = person.pose.astype(np.float64).copy()
    pose[:, :3] = (tilt * Rotation.from_rotvec(pose[:, :3])).as_rotvec()
    return dataclasses.replace(person, pose=pose.astype(np.float32))


def pose_clip(
    body: BodyModel, regressor: Tensor, config: LandmarkDataConfig, frames: int,
    clips: tuple[str, ...], rng: np.random.Generator, variety: bool = False,
) -> PosedClips:  # fmt: skip
    """One exact clip (N = 1): a varied motion of ``clips`` (with ``variety``, the training
    split's, its chains swapped with another's, :func:`swap_chains`, and the body tilted,
    :func:`tilt_body`, as ``config`` says) seen by a random camera, drawn
    again until the person stays at least :data:`MIN_IN_FRAME` in the frame throughout (a
    detector draws no box on a sliver of a person, and a sliver's box would put its landmarks
    hundreds of crop widths away)."""
    width, height = config.image_size
    while True:
        fps = rng.uniform(*config.fps)
        person = sample_person(rng, frames, fps, clips)
        if variety and config.chain_swap_probability > 0.0:
            donor = sample_person(rng, frames, fps, clips)
            person = swap_chains(person, donor, config.chain_swap_probability, rng)
        if variety and config.tilt_probability > 0.0 and rng.random() < config.tilt_probability:
            person = tilt_body(person, config.tilt_max_degrees, rng)
        camera = sample_camera(rng, frames, config.image_size, **CAMERA_RANGES)
        pose, vertices, joints = posed_in_camera(body, person, camera)
        vertex_pixels = project(vertices.numpy(), camera.intrinsics)
        if in_frame_share(vertex_pixels, width, height).min() >= MIN_IN_FRAME:
            break
    points = torch.einsum("lv,fvc->flc", regressor, vertices).numpy()  # (F, 33, 3)
    intrinsics = camera.intrinsics
    joints_np = joints.numpy()
    return PosedClips(
        landmark_pixels=project(points, intrinsics)[None].astype(np.float32),
        landmark_points=points[None],
        boxes=frame_boxes(vertex_pixels, width, height)[None],
        joint_pixels=project(joints_np, intrinsics)[None].astype(np.float32),
        joints=joints_np[None],
        pose=pose[None].astype(np.float32),
        betas=person.betas[None],
        frame_size=np.array([[width, height]]),
    )


def noisy_clip(
    posed: PosedClips,
    item: int,
    frames: int,
    config: LandmarkDataConfig,
    noise: LandmarkNoise,
    rng: np.random.Generator,
) -> LandmarkClip:
    """``frames`` consecutive frames of clip ``item`` of ``posed``, from a start drawn from
    ``rng``, as the network reads them (``config``'s crop and metric axes), with the
    front-end's error ``noise``."""
    start = int(rng.integers(posed.pose.shape[1] - frames + 1))
    window = slice(start, start + frames)
    pixels, points = posed.landmark_pixels[item, window], posed.landmark_points[item, window]
    width, height = posed.frame_size[item]
    crop_scale = config.crop_scale
    squares = crop_squares(jitter_boxes(posed.boxes[item, window], noise, rng), crop_scale)
    in_frame = (
        (pixels[..., 0] >= 0) & (pixels[..., 0] < width)
        & (pixels[..., 1] >= 0) & (pixels[..., 1] < height)
    )  # fmt: skip
    hips = points[:, HIP_LANDMARKS].mean(axis=1, keepdims=True)  # (T, 1, 3)
    world = points - hips
    if config.world_axes == "view":
        world = view_axes(world, hips[:, 0])
    landmarks = noisy_landmarks(
        to_crop(pixels, squares), world, in_frame, 2.0 / crop_scale, noise, rng
    )
    joints = posed.joints[item, window]
    keypoints = to_crop(posed.joint_pixels[item, window], squares)
    ones = np.ones((frames, joints.shape[1], 1), dtype=np.float32)
    return LandmarkClip(
        landmarks=torch.from_numpy(landmarks),
        keypoints_2d=torch.from_numpy(np.concatenate([keypoints, ones], -1)).float(),
        joints_3d=torch.from_numpy(np.concatenate([joints, ones], -1)).float(),
        pose=torch.from_numpy(posed.pose[item, window]),
        betas=torch.from_numpy(np.repeat(posed.betas[item][None], frames, axis=0)).float(),
        has_smpl=torch.ones(frames, dtype=torch.bool),
        frame_ids=torch.arange(frames),
    )


def stack(clips: list[PosedClips]) -> PosedClips:
    """Several posed clips as one."""
    return PosedClips(*(np.concatenate(arrays) for arrays in zip(*clips, strict=True)))


class LandmarkClips(Dataset[LandmarkClip]):
    """Synthetic landmark clips of ``clip_length`` frames (see the module docstring).

    The split's clips are posed once (``config.train_items`` or ``config.val_items`` of them,
    each from its own seed) and kept in memory, and cached in ``cache_dir`` when given (a file
    named by everything that makes them, which every recipe with the same data shares); each
    draw of an item adds fresh noise, so epochs differ while posing costs nothing more.
    """

    def __init__(
        self,
        config: LandmarkDataConfig,
        clip_length: int,
        *,
        split: str,
        seed: int,
        body: BodyModel | None = None,
        noise: LandmarkNoise | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        if clip_length > config.frames:
            raise ValueError(
                f"clips of {clip_length} frames, but the data poses {config.frames} (data.frames)"
            )
        self.config = config
        self.clip_length = clip_length
        self.split = split
        self.seed = seed
        self.clips = config.clips if split == "train" else (config.val_clips or config.clips)
        self.items = config.train_items if split == "train" else config.val_items
        self.noise = config.noise if noise is None else noise
        body = body or load_body_model(config.body)
        if body.faces.numel():  # a whole body: keep what the clips need
            body = body.restricted(box_vertices(body))
        self.body = body
        self.regressor = torch.from_numpy(
            landmark_regressor(self.body.J_regressor.cpu().numpy(), self.body.landmarks)
        )
        self.cache_dir = cache_dir
        self.epoch = 0
        self._posed: PosedClips | None = None

    def set_epoch(self, epoch: int) -> None:
        """Draw the training items' noise of ``epoch`` (validation items never change)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.items

    def _rng(self, *words: int) -> np.random.Generator:
        return np.random.default_rng(
            np.random.SeedSequence([self.seed, zlib.crc32(self.split.encode()), *words])
        )

    def make_clip(self, rng: np.random.Generator) -> LandmarkClip:
        """A clip posed and made noisy from ``rng`` alone (not one of the posed items)."""
        posed = pose_clip(self.body, self.regressor, self.config, self.clip_length, self.clips, rng)
        return noisy_clip(posed, 0, self.clip_length, self.config, self.noise, rng)

    @property
    def posed(self) -> PosedClips:
        """The split's exact clips, posed (or read from the cache) on first use."""
        if self._posed is None:
            self._posed = self._load_or_pose()
        return self._posed

    def _cache_file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        unused = {"noise", "crop_scale", "world_axes", "cache_dir"}
        unused |= {"recorded", "recorded_val", "recorded_share"}  # not posed
        if self.split != "train":
            unused |= {"chain_swap_probability", "tilt_probability", "tilt_max_degrees"}
        config = self.config.model_dump(mode="json", exclude=unused)
        key = json.dumps(
            [
                config,
                self.split,
                self.seed,
                self.clips,
                self.items,
                self.body.name,
                CAMERA_RANGES,
                MIN_IN_FRAME,
            ],
            sort_keys=True,
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return self.cache_dir / f"landmarks_{self.split}_{digest}.npz"

    def _load_or_pose(self) -> PosedClips:
        path = self._cache_file()
        if path is not None and path.is_file():
            with np.load(path) as arrays:
                return PosedClips(**{name: arrays[name] for name in PosedClips._fields})
        with progress_bar(transient=True) as progress:
            task = progress.add_task(f"posing {self.items} {self.split} clips", total=self.items)
            clips = []
            for clip in self._posed_clips():
                clips.append(clip)
                progress.advance(task)
        posed = stack(clips)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.stem + ".partial.npz")
            np.savez(partial, **posed._asdict())
            os.replace(partial, path)
        return posed

    def _posed_clips(self) -> Iterator[PosedClips]:
        """Every item posed, in order: in worker processes for a large split. They are spawned,
        not forked: a fork of a process whose thread pools (torch's, onnxruntime's) hold locks
        can hang for ever (it did, under pytest)."""
        if self.items < PARALLEL_POSING_MIN_ITEMS:
            yield from map(self._pose, range(self.items))
            return
        context = get_context("spawn")
        with ProcessPoolExecutor(POSING_PROCESSES, mp_context=context) as pool:
            yield from pool.map(self._pose, range(self.items), chunksize=POSING_CHUNK)

    def _pose(self, index: int) -> PosedClips:
        config = self.config
        variety = self.split == "train"
        return pose_clip(
            self.body, self.regressor, config, config.frames, self.clips, self._rng(index), variety
        )

    def __getitem__(self, index: int) -> LandmarkClip:
        epoch = self.epoch if self.split == "train" else 0
        rng = self._rng(index, epoch)
        return noisy_clip(self.posed, index, self.clip_length, self.config, self.noise, rng)
