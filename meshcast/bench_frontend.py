"""``meshcast bench frontend``: the front-end's detectors and keypoint model, side by side on
the same frames, in one process.

Frame by frame, in turn: the bundle's NanoDet, OpenCV's HOG, then the keypoint model on
NanoDet's sure boxes (all the frame's people in one batched call a pass, both passes, as the
pipeline runs it on people seen by the detector; the candidates it confirms cost one pass
each on top). Interleaving call by call puts whatever else
loads the machine on all three alike, so their ratios hold where single runs disagree.
Reported: per detector the median and mean milliseconds a frame and the people it found a
frame; for the keypoint model the milliseconds a frame and a person; and the ratio of HOG's
time to NanoDet's.
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.bundle import Bundle
from service.pipeline.detect import HogDetector, PersonDetector
from service.pipeline.keypoints import KeypointModel, box_rois
from service.pipeline.run import PipelineConfig, make_detector, make_keypoint_model
from service.pipeline.video import read_frames


@dataclass
class _Timings:
    """Seconds of each call and what it found."""

    seconds: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)  # people found (sure)

    def summary(self, frames: int) -> dict[str, float]:
        return {
            "ms_per_frame_median": round(1000 * statistics.median(self.seconds), 2),
            "ms_per_frame_mean": round(1000 * sum(self.seconds) / frames, 2),
            "people_per_frame": round(sum(self.counts) / frames, 2),
        }


def bench_frontend(
    video: Path, bundle: Bundle, *, max_frames: int | None, threads: int | None
) -> dict[str, Any]:
    """Time NanoDet, HOG and the keypoint model on ``video``'s frames, interleaved.

    Args:
        video: any video; its first ``max_frames`` frames are used (all when None).
        bundle: the bundle whose front-end runs.
        max_frames: frames to use.
        threads: onnxruntime's CPU threads a session (default: its own).
    """
    config = PipelineConfig()
    sessions = bundle.sessions(config.precision, threads=threads)
    nanodet = make_detector(config.detector, bundle, sessions)
    hog = HogDetector(config.detector.hog)
    keypoints = make_keypoint_model(config.keypoints, bundle, sessions)
    timings = {"nanodet": _Timings(), "hog": _Timings(), "keypoints": _Timings()}
    frames = 0
    for frame in read_frames(video):
        if max_frames is not None and frames >= max_frames:
            break
        boxes = _timed(nanodet, frame.image, timings["nanodet"])
        _timed(hog, frame.image, timings["hog"])
        _time_keypoints(keypoints, frame.image, boxes[:, :4], timings["keypoints"])
        frames += 1
    if frames == 0:
        raise ValueError(f"{video} has no frames")
    people = sum(timings["keypoints"].counts)
    keypoint_seconds = sum(timings["keypoints"].seconds)
    detectors = {name: timings[name].summary(frames) for name in ("nanodet", "hog")}
    return {
        "video": str(video),
        "frames": frames,
        "detectors": detectors,
        "hog_over_nanodet_time": round(
            detectors["hog"]["ms_per_frame_mean"] / detectors["nanodet"]["ms_per_frame_mean"], 3
        ),
        "keypoints": {
            "passes": 2,
            "ms_per_frame_mean": round(1000 * keypoint_seconds / frames, 2),
            "ms_per_person": round(1000 * keypoint_seconds / max(people, 1), 2),
            "people": people,
        },
        "machine": {"processor": platform.processor() or platform.machine(), "threads": threads},
    }


def _timed(detector: PersonDetector, image: np.ndarray, into: _Timings) -> np.ndarray:
    """The detector's sure boxes in ``image``, timed."""
    started = time.perf_counter()
    (boxes,) = detector.detect([image])
    into.seconds.append(time.perf_counter() - started)
    sure = boxes[boxes[:, 4] >= detector.sure_score]
    into.counts.append(len(sure))
    return sure


def _time_keypoints(
    model: KeypointModel, image: np.ndarray, boxes: np.ndarray, into: _Timings
) -> None:
    rois = box_rois(boxes, model.config.box_scale)
    started = time.perf_counter()
    model.estimate(image, rois, np.ones(len(rois), dtype=bool))
    into.seconds.append(time.perf_counter() - started)
    into.counts.append(len(rois))
