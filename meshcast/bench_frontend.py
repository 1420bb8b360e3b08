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

With the original ``pose_landmark_full.tflite`` (``make blazepose-tflite``), the keypoint model
also runs on its reference runtime, LiteRT, on the same crops (each detected person's first
pass), call by call in turn with onnxruntime one crop a call and all of the frame's crops in one
call: milliseconds a person for each, LiteRT's time over each of onnxruntime's, and the largest
difference of their landmarks (the same model, so pixels' hundredths).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.bundle import CPU_PROVIDER, Bundle, open_session
from service.pipeline.detect import HogDetector, PersonDetector
from service.pipeline.keypoints import KeypointModel, box_rois, crop_to_image, cut_rois
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
    video: Path,
    bundle: Bundle,
    *,
    max_frames: int | None,
    threads: int | None,
    litert: Path | None = None,
) -> dict[str, Any]:
    """Time NanoDet, HOG and the keypoint model on ``video``'s frames, interleaved.

    Args:
        video: any video; its first ``max_frames`` frames are used (all when None).
        bundle: the bundle whose front-end runs.
        max_frames: frames to use.
        threads: onnxruntime's CPU threads a session (default: its own), and LiteRT's.
        litert: BlazePose's original .tflite, to time on LiteRT beside onnxruntime.
    """
    config = PipelineConfig()
    sessions = bundle.sessions(config.precision, threads=threads)
    nanodet = make_detector(config.detector, bundle, sessions)
    hog = HogDetector(config.detector.hog)
    keypoints = make_keypoint_model(config.keypoints, bundle, sessions)
    timings = {"nanodet": _Timings(), "hog": _Timings(), "keypoints": _Timings()}
    runtimes = None
    if litert is not None:
        graph = bundle.path / bundle.manifest.frontend.keypoints.file
        runtimes = _RuntimeComparison(keypoints, graph, litert, threads)
    frames = 0
    for frame in read_frames(video):
        if max_frames is not None and frames >= max_frames:
            break
        boxes = _timed(nanodet, frame.image, timings["nanodet"])
        _timed(hog, frame.image, timings["hog"])
        _time_keypoints(keypoints, frame.image, boxes[:, :4], timings["keypoints"])
        if runtimes is not None:
            runtimes.compare(frame.image, boxes[:, :4])
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
        **({"runtimes": runtimes.summary()} if runtimes is not None else {}),
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


def check_tflite(tflite: Path) -> None:
    """Raise FileNotFoundError, saying how to fetch it, if ``tflite`` is not a file."""
    if not tflite.is_file():
        raise FileNotFoundError(f"no .tflite at {tflite}: `make blazepose-tflite` fetches it")


class _RuntimeComparison:
    """The keypoint model on onnxruntime (one crop a call, and all of a frame's crops in one
    call) and on LiteRT (one crop a call: the .tflite's batch is 1), on the same crops,
    interleaved call by call."""

    def __init__(
        self, model: KeypointModel, graph: Path, tflite: Path, threads: int | None
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter

        check_tflite(tflite)
        self.model = model
        # A session of its own whose threads do not spin after a call: spinning would take
        # the cores from LiteRT's next call and tilt the comparison.
        self.session = open_session(graph, [CPU_PROVIDER], threads, spinning=False)
        self.input = self.session.get_inputs()[0].name
        self.landmarks = self.session.get_outputs()[0].name
        self.interpreter = Interpreter(
            model_path=str(tflite), num_threads=threads or os.cpu_count()
        )
        self.interpreter.allocate_tensors()
        self.tflite_input = self.interpreter.get_input_details()[0]["index"]
        # The .tflite's first output is the landmarks, as the graph's (export/frontend).
        self.tflite_landmarks = self.interpreter.get_output_details()[0]["index"]
        self.seconds: dict[str, float] = {
            "onnxruntime_batched": 0.0,
            "onnxruntime": 0.0,
            "litert": 0.0,
        }
        self.crops = 0
        self.largest_difference = 0.0

    def compare(self, image: np.ndarray, boxes: np.ndarray) -> None:
        """Time the three ways on the first-pass crops of ``boxes`` in ``image``."""
        rois = box_rois(boxes, self.model.config.box_scale)
        if len(rois) == 0:
            return
        size = self.model.crop_size
        crops = cut_rois(image, crop_to_image(rois, size), size).astype(np.float32) / 255.0
        started = time.perf_counter()
        (batched,) = self.session.run([self.landmarks], {self.input: crops})
        self.seconds["onnxruntime_batched"] += time.perf_counter() - started
        for crop, batched_points in zip(crops, batched, strict=True):
            started = time.perf_counter()
            self.interpreter.set_tensor(self.tflite_input, crop[None])
            self.interpreter.invoke()
            reference = self.interpreter.get_tensor(self.tflite_landmarks)
            self.seconds["litert"] += time.perf_counter() - started
            started = time.perf_counter()
            self.session.run([self.landmarks], {self.input: crop[None]})
            self.seconds["onnxruntime"] += time.perf_counter() - started
            difference = np.abs(reference.reshape(-1) - batched_points.reshape(-1)).max()
            self.largest_difference = max(self.largest_difference, float(difference))
        self.crops += len(crops)

    def summary(self) -> dict[str, Any]:
        crops = max(self.crops, 1)
        litert = self.seconds["litert"]
        return {
            "crops": self.crops,
            **{
                f"{name}_ms_per_crop": round(1000 * spent / crops, 2)
                for name, spent in self.seconds.items()
            },
            "litert_over_onnxruntime": round(litert / max(self.seconds["onnxruntime"], 1e-9), 3),
            "litert_over_onnxruntime_batched": round(
                litert / max(self.seconds["onnxruntime_batched"], 1e-9), 3
            ),
            "largest_landmark_difference_px": round(self.largest_difference, 4),
        }
