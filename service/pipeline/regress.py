"""The regression stage: tracked people → SMPL parameters, joints and cameras, per frame.

Three graphs of a model bundle, in batches:

1. ``encoder``: while the video's frames stream by (:class:`CropCollector`), the crops of the
   people tracked in each frame are cut and encoded; only their features go on, never the
   frames. SPS-Net's are 2048 floats (8 KiB) a person-frame; MAED's are its patch tokens,
   ``(hw, d)``: 196 × 768 floats (588 KiB) at the paper's size. A keypoint family's bundle
   has no encoder and reads no frames: each track's features are its landmarks, ``(33, 6)`` a
   person-frame (:mod:`service.pipeline.landmark_features`), from what the tracking stage's
   keypoint model found.
2. ``temporal``: each track's features in overlapping windows, blended at the seams
   (:mod:`service.pipeline.windows`). A window runs as soon as its last frame is encoded and
   the features no later window reads are dropped, so features are held for a window's length
   per person in view, however long the video.
3. ``body`` (:class:`service.pipeline.body.BodyMeshes`): rotations and β → joints; the rest
   pose at the track's mean β.

Then cameras (:mod:`service.pipeline.camera`): the crop camera over the whole frame, the body's
translation in the frame's camera, and the joints projected to pixels. An optional One-Euro
filter (:mod:`service.pipeline.smoothing`) smooths rotations, β and the frame camera first.

The results hold parameters, about 1.5 KiB a person-frame, and no vertices (81 KiB a
person-frame for SMPL's 6 890): the outputs compute those when they write them
(:mod:`service.pipeline.body`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from service.bundle import NUM_JOINTS, Bundle, InputSpec, LandmarkInputSpec, Sessions
from service.pipeline.body import BodyMeshes
from service.pipeline.camera import (
    DEFAULT_DIAGONAL_FOV_DEG,
    crop_cam_to_orig_cam,
    focal_length_from_fov,
    orig_cam_to_crop_cam,
    orig_cam_to_translation,
    project_to_frame,
)
from service.pipeline.crops import cut_crops, square_boxes
from service.pipeline.landmark_features import (
    LANDMARK_FEATURE_CHANNELS,
    LANDMARK_FEATURE_SHAPE,
    track_landmark_features,
)
from service.pipeline.result import TrackResult
from service.pipeline.rotations import rotmat_to_axis_angle
from service.pipeline.smoothing import OneEuroConfig, one_euro, one_euro_rotations
from service.pipeline.tracking import Track, with_poses
from service.pipeline.video import Frame
from service.pipeline.windows import TemporalOutput, TemporalStream, WindowBlend, plan_windows

if TYPE_CHECKING:
    from service.fixed_batches import GraphSession

# Called as (stage, done, total): stage is "encoder" (crops), "temporal" (windows) or "body"
# (person-frames).
Progress = Callable[[str, int, int], None]
ENCODER_STAGE, TEMPORAL_STAGE, BODY_STAGE = "encoder", "temporal", "body"
ENCODER_INPUT, ENCODER_OUTPUTS = "crops", ["features"]
STRAIGHT_ANGLE_DEG = 180.0
# orig_cam's columns: sx, sy, tx', ty'. The One-Euro filter smooths sx, tx', ty'; sy follows
# sx (sy = sx · W / H), which filtering each on its own would not keep.
SX, SY, TX, TY = 0, 1, 2, 3
FILTERED_ORIG_CAM = [SX, TX, TY]


class RegressionConfig(BaseModel):
    """Parameters of :func:`regress_tracks`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Person-frames one run of a graph takes: crops for the encoder, window frames for the
    # temporal model (at least one window), frames for the body. Memory grows with it, not
    # with the video's length.
    batch_size: PositiveInt = 64
    window_stride: PositiveInt | None = None  # frames between windows; None: the bundle's
    smoothing: OneEuroConfig | None = None  # None: the network's predictions as they are
    # The video's focal length in pixels, when known; else it is assumed from the field of
    # view across the frame's diagonal (see service.pipeline.camera).
    focal_length: PositiveFloat | None = None
    diagonal_fov_deg: float = Field(DEFAULT_DIAGONAL_FOV_DEG, gt=0.0, lt=STRAIGHT_ANGLE_DEG)

    def frame_focal_length(self, width: int, height: int) -> float:
        """The focal length in pixels of a ``width`` × ``height`` video: the one given, or the
        one of the assumed field of view."""
        return self.focal_length or focal_length_from_fov(width, height, self.diagonal_fov_deg)


def _no_progress(stage: str, done: int, total: int) -> None:
    """A progress callback that reports nothing."""


def _counter(report: Progress, stage: str, total: int) -> Callable[[int], None]:
    """A callback that adds up the items of each run of ``stage`` and reports the sum."""
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        report(stage, done, total)

    return advance


# Called as (track, row, features) with each crop's (*feature_shape) features.
FeatureSink = Callable[[int, int, np.ndarray], None]


@dataclass(frozen=True)
class FrameTimeline:
    """What the regression needs of a video whose frames it does not read (a keypoint
    family's bundle): every decoded frame's time, and the frames' size."""

    times: np.ndarray  # (F,) float64 presentation time of frame i, seconds
    width: int  # pixels, as the frames are decoded (upright)
    height: int


class CropCollector:
    """Cuts and encodes the crops of the tracked people while a video's frames stream by.

    Feed every frame to :meth:`add` in order (frames no track holds are skipped), then call
    :meth:`finish`. Crops wait in one batch of ``batch_size``; when it is full the encoder
    runs and each crop's features go to ``sink``, each track's rows in order (for instance to
    :meth:`service.pipeline.windows.TemporalStream.add`). No features are kept here.
    """

    def __init__(
        self,
        tracks: Sequence[Track],
        bundle: Bundle,
        encoder: GraphSession,
        batch_size: int,
        sink: FeatureSink,
        progress: Progress = _no_progress,
    ) -> None:
        if not isinstance(bundle.manifest.input, InputSpec):
            raise ValueError(f"{bundle.path}'s network reads landmarks: it has no crops to cut")
        self.spec = bundle.manifest.input
        self.encoder = encoder
        self.sink = sink
        self.progress = progress
        self.squares = [square_boxes(track.boxes, self.spec.crop_scale) for track in tracks]
        # frame index → the (track, row) pairs it holds
        self.people: dict[int, list[tuple[int, int]]] = {}
        for track_index, track in enumerate(tracks):
            for row, frame in enumerate(track.frames.tolist()):
                self.people.setdefault(frame, []).append((track_index, row))
        self.last_frame = max(self.people, default=-1)
        self.times = [np.full(len(track.frames), np.nan) for track in tracks]  # seconds
        self.frame_size: tuple[int, int] | None = None  # width, height
        size = self.spec.image_size
        self.batch = np.empty((batch_size, 3, size, size), dtype=np.float32)
        self.pending: list[tuple[int, int]] = []  # (track, row) of each crop in the batch
        self.done = 0
        self.total = sum(len(track.frames) for track in tracks)

    @property
    def complete(self) -> bool:
        """Whether every tracked frame has been added: later frames are not needed."""
        return self.done + len(self.pending) == self.total

    def add(self, frame: Frame) -> None:
        """Cut the crops of the people tracked in ``frame``; encode a batch when it is full."""
        height, width = frame.image.shape[:2]
        self.frame_size = self.frame_size or (width, height)
        people = self.people.get(frame.index, [])
        if not people:
            return
        squares = np.stack([self.squares[track][row] for track, row in people])  # (K, 3)
        crops = cut_crops(frame.image, squares, self.spec)  # (K, 3, S, S)
        for (track, row), crop in zip(people, crops, strict=True):
            self.times[track][row] = frame.time
            self.batch[len(self.pending)] = crop
            self.pending.append((track, row))
            if len(self.pending) == len(self.batch):
                self._encode()

    def finish(self) -> tuple[list[np.ndarray], tuple[int, int]]:
        """Encode what is left: each track's ``(N,)`` frame times, and the frames'
        ``(width, height)``.

        Raises:
            ValueError: frames the tracks hold never came (the video was cut short).
        """
        if self.pending:
            self._encode()
        if self.done < self.total or self.frame_size is None:
            raise ValueError(
                f"{self.total - self.done} tracked person-frames were never seen: the video "
                f"ended before frame {self.last_frame}"
            )
        return self.times, self.frame_size

    def _encode(self) -> None:
        crops = self.batch[: len(self.pending)]
        (features,) = self.encoder.run(ENCODER_OUTPUTS, {ENCODER_INPUT: crops})
        encoded, self.pending = self.pending, []
        self.done += len(encoded)
        self.progress(ENCODER_STAGE, self.done, self.total)
        for (track, row), feature in zip(encoded, features, strict=True):
            self.sink(track, row, feature)


def regress_tracks(
    frames: Iterable[Frame],
    tracks: Sequence[Track],
    bundle: Bundle,
    sessions: Sessions,
    config: RegressionConfig | None = None,
    progress: Progress | None = None,
    *,
    timeline: FrameTimeline | None = None,
) -> list[TrackResult]:
    """SMPL parameters, joints and cameras of every frame of every track.

    Args:
        frames: the video's frames in order (:func:`service.pipeline.video.read_frames`);
            read once, and only up to the last tracked frame; never read for a bundle whose
            network reads landmarks.
        tracks: the people to regress (:func:`service.pipeline.tracking.track_people`); for a
            landmark bundle, with the landmarks the keypoint stage found.
        bundle: the model bundle.
        sessions: its graphs (:meth:`service.bundle.Bundle.sessions`).
        config: batches, windows, smoothing and the focal length.
        progress: called as ``(stage, done, total)`` after each run of a graph.
        timeline: the frames' times and size, which a landmark bundle needs (it reads no
            frames); unused by an image bundle.

    Returns:
        One :class:`TrackResult` per track, in order.

    Raises:
        ValueError: the video ends before the tracks do, a stride longer than the window, or a
            landmark bundle without ``timeline`` or with landmarks laid out otherwise.
    """
    config = config or RegressionConfig()
    report = progress or _no_progress
    if not tracks:
        return []
    window = bundle.manifest.window
    stride = config.window_stride or window.stride
    blends = [
        WindowBlend(len(track.frames), plan_windows(len(track.frames), window, stride))
        for track in tracks
    ]
    temporal = TemporalStream(
        blends,
        sessions.temporal,
        windows_per_run=max(1, config.batch_size // window.length),
        on_run=_counter(report, TEMPORAL_STAGE, sum(len(blend.windows) for blend in blends)),
    )
    spec = bundle.manifest.input
    if isinstance(spec, LandmarkInputSpec):
        if timeline is None:
            raise ValueError(
                f"{bundle.path}'s network reads landmarks: pass the frames' times and size"
            )
        times = _feed_landmarks(tracks, bundle, spec, timeline, temporal.add)
        width, height = timeline.width, timeline.height
    else:
        times, (width, height) = _encode_crops(
            frames, tracks, bundle, sessions, config, temporal.add, report
        )
    predicted = temporal.finish()

    body = BodyMeshes(sessions.body, config.batch_size)
    body_run = _counter(report, BODY_STAGE, sum(len(track.frames) for track in tracks))
    crop_scale = bundle.manifest.input.crop_scale
    focal_length = config.frame_focal_length(width, height)
    return [
        _track_result(
            track,
            prediction,
            square_boxes(track.boxes, crop_scale),
            track_times,
            body,
            config,
            (width, height, focal_length),
            body_run,
        )
        for track, prediction, track_times in zip(tracks, predicted, times, strict=True)
    ]


def _encode_crops(
    frames: Iterable[Frame],
    tracks: Sequence[Track],
    bundle: Bundle,
    sessions: Sessions,
    config: RegressionConfig,
    sink: FeatureSink,
    report: Progress,
) -> tuple[list[np.ndarray], tuple[int, int]]:
    """Every track's crops through the encoder to ``sink``, while ``frames`` stream by (up to
    the last tracked one): each track's ``(N,)`` frame times, and the frames' width and height.
    """
    if sessions.encoder is None:
        raise ValueError(f"{bundle.path}'s network reads crops, but no encoder session is open")
    collector = CropCollector(tracks, bundle, sessions.encoder, config.batch_size, sink, report)
    for frame in frames:
        collector.add(frame)
        if collector.complete:
            break
    return collector.finish()


def _feed_landmarks(
    tracks: Sequence[Track],
    bundle: Bundle,
    spec: LandmarkInputSpec,
    timeline: FrameTimeline,
    sink: FeatureSink,
) -> list[np.ndarray]:
    """Every track's landmark features to ``sink``, row by row: each track's ``(N,)`` frame
    times.

    Raises:
        ValueError: landmarks laid out otherwise than this service builds them, or tracked
            frames past the timeline's end.
    """
    layout = (spec.channels, bundle.manifest.feature_shape)
    if layout != (LANDMARK_FEATURE_CHANNELS, LANDMARK_FEATURE_SHAPE):
        raise ValueError(
            f"{bundle.path} reads landmarks as {spec.channels}, {bundle.manifest.feature_shape}; "
            f"this meshcast gives {LANDMARK_FEATURE_CHANNELS}, {LANDMARK_FEATURE_SHAPE}"
        )
    last_frame = max(int(track.frames.max()) for track in tracks)
    if last_frame >= len(timeline.times):
        raise ValueError(
            f"a track holds frame {last_frame}, but the video ended before frame {last_frame} "
            f"(after {len(timeline.times)} frames)"
        )
    for index, track in enumerate(tracks):
        for row, feature in enumerate(track_landmark_features(track, spec.crop_scale)):
            sink(index, row, feature)
    return [timeline.times[track.frames] for track in tracks]


def _track_result(
    track: Track,
    prediction: TemporalOutput,
    squares: np.ndarray,
    times: np.ndarray,
    body: BodyMeshes,
    config: RegressionConfig,
    camera: tuple[int, int, float],
    on_body_run: Callable[[int], None],
) -> TrackResult:
    """One track's result from its blended predictions and ``(N, 3)`` crop squares; ``camera``
    is the frame's width, height and focal length in pixels."""
    width, height, focal_length = camera
    rotmat, betas, cam = prediction.rotmat, prediction.betas, prediction.cam
    orig_cam = crop_cam_to_orig_cam(cam.astype(np.float64), squares, width, height)  # (N, 4)
    if config.smoothing is not None:
        rotmat = one_euro_rotations(rotmat, times, config.smoothing).astype(np.float32)
        betas = one_euro(betas, times, config.smoothing).astype(np.float32)
        orig_cam[:, FILTERED_ORIG_CAM] = one_euro(
            orig_cam[:, FILTERED_ORIG_CAM], times, config.smoothing
        )
        orig_cam[:, SY] = orig_cam[:, SX] * width / height
        cam = orig_cam_to_crop_cam(orig_cam, squares, width, height).astype(np.float32)
    joints = body.joints(rotmat, betas, on_body_run)  # (N, 24, 3)
    rest_vertices, rest_joints = body.rest(betas.mean(axis=0))  # (V, 3), (24, 3)
    frames = len(track.frames)
    detected_scores = track.scores[track.detected]
    return TrackResult(
        track_id=track.id,
        frame_ids=track.frames.copy(),
        boxes=track.boxes.copy(),
        detected=track.detected.copy(),
        score=float(detected_scores.mean()) if len(detected_scores) else 0.0,
        pose=rotmat_to_axis_angle(rotmat).reshape(frames, NUM_JOINTS * 3).astype(np.float32),
        rotmat=rotmat,
        betas=betas,
        cam=cam,
        orig_cam=orig_cam.astype(np.float32),
        translation=orig_cam_to_translation(orig_cam, focal_length, width).astype(np.float32),
        joints3d=joints,
        joints2d=project_to_frame(joints, orig_cam, width, height).astype(np.float32),
        rest_vertices=rest_vertices,
        rest_joints=rest_joints,
        **_keypoints(track),
    )


def _keypoints(track: Track) -> dict[str, np.ndarray]:
    """The track's landmarks as a result holds them (unseen everywhere for a track made
    without the keypoint stage)."""
    seen = track if track.landmarks is not None else with_poses(track, {})
    assert seen.landmarks is not None
    assert seen.world_landmarks is not None
    assert seen.keypoint_scores is not None
    return {
        "landmarks": seen.landmarks,
        "world_landmarks": seen.world_landmarks,
        "keypoint_score": seen.keypoint_scores,
    }
