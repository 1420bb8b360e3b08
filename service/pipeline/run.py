"""The whole pipeline on one video: decode → detect → track and keypoints → regress, timed
stage by stage.

The video is never held whole. It is decoded once to detect, track and find each person's
landmarks (:mod:`service.pipeline.people`), and, for a bundle of an image family, a second time
to cut the crops of the tracks found (the second pass stops after the last tracked frame). A
keypoint family's bundle reads the landmarks the first pass found, and the frames' times it
recorded: no second pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, PositiveFloat, PositiveInt

from service.bundle import Bundle, Precision, Sessions
from service.pipeline.detect import (
    HogConfig,
    HogDetector,
    NanoDetConfig,
    NanoDetDetector,
    OnnxYoloDetector,
    PersonDetector,
    YoloConfig,
)
from service.pipeline.keypoints import KeypointConfig, KeypointModel
from service.pipeline.motion import MotionConfig
from service.pipeline.people import FollowCosts, NoPeopleError, follow_people
from service.pipeline.regress import FrameTimeline, RegressionConfig, regress_tracks
from service.pipeline.result import BodyTopology, VideoResult
from service.pipeline.smoothing import OneEuroConfig
from service.pipeline.tracking import TrackerConfig
from service.pipeline.video import Frame, VideoInfo, probe, read_frames

# Called as (stage, done, total): "detect" counts frames; the regression's stages count as
# service.pipeline.regress says.
Progress = Callable[[str, int, int], None]
DETECT_STAGE = "detect"


class DetectorConfig(BaseModel):
    """Which person detector: the bundle's NanoDet, OpenCV's HOG, or an ONNX detector in
    YOLO's export layout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["nanodet", "hog", "yolo"] = "nanodet"
    model: Path | None = None  # the ONNX file, for "yolo"
    nanodet: NanoDetConfig = NanoDetConfig()
    hog: HogConfig = HogConfig()
    yolo: YoloConfig = YoloConfig()
    batch_size: PositiveInt = 8  # frames per call of the detector
    # Search every this many frames; the keypoint model follows people in between from their
    # last landmarks (service.pipeline.people). 1: every frame.
    every: PositiveInt = 1
    # With every > 1, a frame is also searched where something moves that nobody followed
    # explains (service.pipeline.motion); None: only in turn and after a person was lost.
    motion: MotionConfig | None = MotionConfig()


class PipelineConfig(BaseModel):
    """Everything :func:`process_video` can be told; the defaults serve a typical video."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detector: DetectorConfig = DetectorConfig()
    tracker: TrackerConfig = TrackerConfig()
    keypoints: KeypointConfig = KeypointConfig()
    regression: RegressionConfig = RegressionConfig()
    precision: Precision = "fp32"
    # Stop (NoPeopleError) once this many seconds of video held nobody from the start, without
    # decoding the rest; None: read the whole video whatever it holds.
    nobody_stop_s: PositiveFloat | None = None


def pipeline_config(
    *,
    smooth: bool = False,
    min_track_length: int | None = None,
    precision: Precision = "fp32",
    detector: DetectorConfig | None = None,
    detect_every: int | None = None,
    nobody_stop_s: float | None = None,
) -> PipelineConfig:
    """The settings for what a user may choose (``meshcast run``'s flags, a job's options, a
    worker's settings); ``None`` keeps the default."""
    tracker = (
        TrackerConfig() if min_track_length is None else TrackerConfig(min_length=min_track_length)
    )
    detector = detector or DetectorConfig()
    if detect_every is not None:
        detector = detector.model_copy(update={"every": detect_every})
    return PipelineConfig(
        detector=detector,
        tracker=tracker,
        regression=RegressionConfig(smoothing=OneEuroConfig() if smooth else None),
        precision=precision,
        nobody_stop_s=nobody_stop_s,
    )


@dataclass(frozen=True)
class PipelineRun:
    """A processed video and what each stage cost (seconds)."""

    result: VideoResult
    info: VideoInfo
    focal_length: float  # pixels: the camera the translations (and a preview) assume
    # stage → wall time: "decode", "detect", "track", "keypoints" (the first pass), "regress"
    seconds: dict[str, float]
    people: FollowCosts  # what the first pass cost and saw


def make_detector(config: DetectorConfig, bundle: Bundle, sessions: Sessions) -> PersonDetector:
    """The detector ``config`` names (NanoDet: the bundle's, on its open session).

    Raises:
        ValueError: a YOLO detector without a model file.
    """
    if config.kind == "nanodet":
        return NanoDetDetector(sessions.detector, bundle.manifest.frontend.detector, config.nanodet)
    if config.kind == "hog":
        return HogDetector(config.hog)
    if config.model is None:
        raise ValueError("the YOLO detector needs the path of its ONNX model")
    return OnnxYoloDetector(config.model, config.yolo)


def make_keypoint_model(
    config: KeypointConfig, bundle: Bundle, sessions: Sessions
) -> KeypointModel:
    """The bundle's keypoint model on its open session."""
    spec = bundle.manifest.frontend.keypoints
    names: dict[str, str] = {"image": spec.input_name}
    names.update({str(role): name for role, name in spec.outputs.items()})
    return KeypointModel(sessions.keypoints, config, spec.input_size, names)


def process_video(
    video: str | Path,
    bundle: Bundle,
    config: PipelineConfig | None = None,
    *,
    sessions: Sessions | None = None,
    progress: Progress | None = None,
) -> PipelineRun:
    """Find, track and estimate every person of ``video`` with ``bundle``'s networks.

    Args:
        video: the video file.
        bundle: the model bundle (:func:`service.bundle.load_bundle`).
        config: detector, tracker and regression settings.
        sessions: the bundle's sessions, when the caller keeps them open (a worker does);
            default: opened here for ``config.precision``.
        progress: called as ``(stage, done, total)``.

    Raises:
        VideoError: the file is not a readable video.
        NoPeopleError: nobody was tracked for ``config.tracker.min_length`` frames, or
            nobody was seen in the first ``config.nobody_stop_s`` seconds.
    """
    config = config or PipelineConfig()
    report = progress or (lambda stage, done, total: None)
    info = probe(video)
    sessions = sessions or bundle.sessions(config.precision)
    detector = make_detector(config.detector, bundle, sessions)
    keypoints = make_keypoint_model(config.keypoints, bundle, sessions)

    times: list[float] = []  # seconds, of every frame decoded
    tracks, costs = follow_people(
        _timed(read_frames(video), times),
        detector,
        keypoints,
        config.tracker,
        batch_size=config.detector.batch_size,
        frame_count=info.frame_count,
        detect_every=config.detector.every,
        motion=config.detector.motion,
        progress=lambda done, total: report(DETECT_STAGE, done, total),
        nobody_stop_s=config.nobody_stop_s,
    )
    tracked = time.perf_counter()
    decoded = costs.frames
    if not tracks:
        raise NoPeopleError(
            "no person was found in the video for at least "
            f"{config.tracker.min_length} frames: is anyone fully in view?"
        )

    # A landmark bundle reads no frames: it is not given the video to decode again.
    reads_crops = bundle.manifest.input.kind == "image"
    results = regress_tracks(
        read_frames(video) if reads_crops else (),
        tracks,
        bundle,
        sessions,
        config.regression,
        report,
        timeline=FrameTimeline(np.asarray(times), info.width, info.height),
    )
    regressed = time.perf_counter()
    result = VideoResult(
        width=info.width,
        height=info.height,
        fps=info.fps,
        frame_count=decoded,
        body=body_topology(bundle),
        tracks=tuple(results),
        bundle_recipe=bundle.manifest.recipe,
        landmark_names=bundle.manifest.frontend.keypoints.landmark_names,
    )
    seconds = {**costs.as_seconds(), "regress": regressed - tracked}
    focal_length = config.regression.frame_focal_length(info.width, info.height)
    return PipelineRun(result, info, focal_length, seconds, costs)


def _timed(frames: Iterable[Frame], times: list[float]) -> Iterator[Frame]:
    """``frames`` as they come, each one's time appended to ``times`` on the way."""
    for frame in frames:
        times.append(frame.time)
        yield frame


def body_topology(bundle: Bundle) -> BodyTopology:
    """The mesh and skeleton a bundle's body has, for the mesh exporters."""
    return BodyTopology(
        name=bundle.manifest.body.name,
        faces=bundle.faces,
        parents=bundle.parents,
        skinning_weights=bundle.skinning_weights,
        joint_names=bundle.manifest.body.joint_names,
    )
