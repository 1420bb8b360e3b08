"""What a keypoint network would reach with a better front-end: a pipeline result of a synthetic
video regressed again with the truth's landmarks in place of the front-end's.

The tracks, their boxes (so the crops) and the windows stay the pipeline's; on every person-frame
matched to a true person (:func:`~training.evaluation.video_scoring.match_tracks`), the part
named by the swap is the body's own landmarks (:func:`~training.evaluation.frontend_error.
true_landmarks`): ``2d`` the 33 landmarks in the frame, ``world`` the metric points, ``all`` both.
The other part stays the front-end's, and comes from the truth too where the front-end saw
nothing in that frame (a frame needs both). Scored as ``meshcast score`` scores the pipeline's,
the difference to the pipeline's own score is what the front-end's error in that part costs.
``failed`` swaps nothing in: the frames where the front-end reported a wrong skeleton
(:func:`~training.evaluation.frontend_error.frame_errors`, judged against the truth) lose their
landmarks, as frames where it saw nobody: the most that detecting its failures could bring.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from service.bundle import load_bundle
from service.outputs.result_files import read_result_npz
from service.pipeline.regress import FrameTimeline, RegressionConfig, regress_tracks
from service.pipeline.result import VideoResult
from service.pipeline.tracking import Track
from training.body import BodyModel, load_body_model
from training.body.landmarks import NUM_LANDMARKS
from training.data.dataset_file import read_dataset_file
from training.evaluation.defaults import Swap
from training.evaluation.frontend_error import frame_errors, in_box_units, true_landmarks
from training.evaluation.video_scoring import TRACK_NAME, match_tracks, track_column

_XY, _VISIBILITY = slice(0, 2), 2
# Visibility of a true landmark in a frame the front-end missed: in the frame or not.
SEEN, UNSEEN = 1.0, 0.0


def with_true_landmarks(
    result: VideoResult, arrays: dict[str, np.ndarray], video: str, body: BodyModel, swap: Swap
) -> list[Track]:
    """The result's tracks, as the regression stage reads them, with ``swap`` of the matched
    person-frames' landmarks the truth's (``arrays``: the video's dataset file)."""
    names = [TRACK_NAME.match(str(name)) for name in arrays["vid_name"]]
    rows = np.flatnonzero([m is not None and m.group("video") == video for m in names])
    predicted, true = match_tracks(result, arrays["frame_id"][rows], arrays["bbox"][rows])
    pixels, world = true_landmarks(arrays, rows[true], body, video)
    landmarks = track_column(result, "landmarks", (NUM_LANDMARKS, 3), np.float64)
    metric = track_column(result, "world_landmarks", (NUM_LANDMARKS, 3), np.float64)
    seen = np.isfinite(landmarks[predicted, :, _XY]).all(axis=(1, 2))
    seen &= np.isfinite(metric[predicted]).all(axis=(1, 2))
    if swap == "failed":
        failed = _failed(result, predicted, seen, landmarks, metric, pixels, world)
        landmarks[predicted[failed]] = np.nan
        metric[predicted[failed]] = np.nan
        return _tracks(result, landmarks, metric)
    in_frame = (
        (pixels >= 0).all(axis=-1)
        & (pixels[..., 0] < result.width)
        & (pixels[..., 1] < result.height)
    )
    swapped_2d = (~seen) | (swap in ("2d", "all"))  # (M,)
    reported = landmarks[predicted]
    reported[swapped_2d, :, _XY] = pixels[swapped_2d]
    visibility = np.where(in_frame, SEEN, UNSEEN)
    reported[~seen, :, _VISIBILITY] = visibility[~seen]
    landmarks[predicted] = reported
    swapped_world = (~seen) | (swap in ("world", "all"))
    points = metric[predicted]
    points[swapped_world] = world[swapped_world]
    metric[predicted] = points
    return _tracks(result, landmarks, metric)


def _failed(
    result: VideoResult,
    predicted: np.ndarray,
    seen: np.ndarray,
    landmarks: np.ndarray,
    metric: np.ndarray,
    pixels: np.ndarray,
    world: np.ndarray,
) -> np.ndarray:
    """``(M,)`` which of the matched person-frames (the result's rows ``predicted``; the
    truth's ``pixels`` and metric points ``world``) have a failed skeleton."""
    boxes = track_column(result, "boxes", (4,), np.float64)[predicted[seen]]
    reported = landmarks[predicted[seen]]
    reported[..., _XY] = in_box_units(reported[..., _XY], boxes)
    truth = in_box_units(pixels[seen], boxes)
    failed = np.zeros(len(predicted), dtype=bool)
    failed[seen] = frame_errors(reported, truth, metric[predicted[seen]], world[seen]).failed
    return failed


def _tracks(result: VideoResult, landmarks: np.ndarray, metric: np.ndarray) -> list[Track]:
    """The result's tracks with these landmarks and metric points (every person-frame's rows,
    track after track)."""
    tracks, start = [], 0
    for track in result.tracks:
        rows_of_track = slice(start, start + len(track))
        start += len(track)
        tracks.append(
            Track(
                id=track.track_id,
                frames=track.frame_ids.astype(np.int64),
                boxes=track.boxes.astype(np.float64),
                scores=np.full(len(track), track.score),
                detected=track.detected,
                landmarks=landmarks[rows_of_track].astype(np.float32),
                world_landmarks=metric[rows_of_track].astype(np.float32),
                keypoint_scores=track.keypoint_score,
            )
        )
    return tracks


def regress_with_true_landmarks(
    result_npz: str | Path,
    dataset_file: str | Path,
    video: str,
    bundle_path: str | Path,
    swap: Swap,
    body: BodyModel | None = None,
) -> VideoResult:
    """``result_npz`` (``meshcast run``'s, of synthetic ``video``) regressed again by the keypoint
    bundle at ``bundle_path`` with ``swap`` of its landmarks the truth's (``body`` poses the
    truth: the body the video was rendered with; default: the result's own).

    Raises:
        ValueError: the bundle's network does not read landmarks.
    """
    bundle = load_bundle(bundle_path)
    if bundle.manifest.input.kind != "landmarks":
        raise ValueError(f"{bundle_path}'s network reads images, not landmarks")
    result = read_result_npz(result_npz)
    body = body or load_body_model(result.body.name)
    tracks = with_true_landmarks(result, read_dataset_file(dataset_file), video, body, swap)
    times = np.arange(result.frame_count) / result.fps
    regressed = regress_tracks(
        (),
        tracks,
        bundle,
        bundle.sessions(),
        RegressionConfig(),
        timeline=FrameTimeline(times, result.width, result.height),
    )
    return dataclasses.replace(
        result, tracks=tuple(regressed), bundle_recipe=bundle.manifest.recipe
    )
