"""Scoring what ``meshcast run`` found in a synthetic video against the video's ground truth.

``meshcast synth`` renders videos and writes every person-frame's true box and joints to a
dataset file (:mod:`training.synth.generate`); ``meshcast run`` finds people in the video on
its own (detector, tracker) and writes ``result.npz``: per track, boxes, rotations and β
(:mod:`service.outputs.result_files`). Scoring the one against the other takes two steps:

1. **Matching.** In each frame, the predicted boxes of that frame (one per track) are paired
   with the true boxes by the Hungarian algorithm on IoU, and pairs overlapping by less than
   :data:`MIN_MATCH_IOU` are refused. Both boxes are cut to the frame first: the true box is
   the full projected body, and a detector can only box what the frame shows.
2. **Errors.** The matched person-frames are scored as ``meshcast eval`` scores a checkpoint
   (:func:`training.evaluation.scoring.score`): 14 LSP joints regressed from the predicted mesh
   (the result's rotations and β posed by the bundle's body model) against the 14 LSP joints of
   the truth's SPIN-49 joints, MPJPE after aligning pelvises and PA-MPJPE after Procrustes, in
   mm. The truth's SMPL parameters are left out on purpose: its joints are what the video was
   rendered from, whatever body the bundle poses; so there is no PVE (PCK and AUC instead).
   ACCEL and ACCEL_ERR run over consecutive matched frames of one true person. The truth's
   LSP joints are always the project's definition (:mod:`training.body.joint_sets`); a body
   given the published H36M regressor regresses the predicted ones by that instead, so the
   score records ``joint_set_source``, and only "project" compares like with like.

The front-end's own error is scored too, on the matched person-frames: the keypoint model's
twelve limb landmarks (shoulders to ankles, the points BlazePose and SMPL both name) against the
truth's joints of those names in pixels, as shares of the true box's height, and the share of
matched person-frames the keypoint model did not see at all (what the keypoint families'
training noise stands for: :class:`training.recipes.LandmarkNoise`).

Besides the errors, a :class:`VideoScore` says how much of the video was found: true
person-frames and how many were matched (recall), predicted track-frames (precision), predicted
tracks, true people and how many were matched at least once, and identity switches (a true
person whose matched track id changes from one matched frame to their next, as MOT's IDSW).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import linear_sum_assignment

from service.bundle import NUM_BETAS, NUM_JOINTS
from service.outputs.result_files import read_result_npz
from service.pipeline.boxes import clip_boxes, iou_matrix
from service.pipeline.result import VideoResult
from training.body import BodyModel, load_body_model
from training.body.joint_sets import SPIN49_NAMES
from training.body.landmarks import LIMB_JOINTS
from training.data.dataset_file import read_dataset_file
from training.evaluation.defaults import MIN_MATCH_IOU
from training.evaluation.scoring import Predictions, score

# A synthetic track's name: video, person, and ``_k`` for the person's k-th return into the
# frame (training.synth.generate names them so: ``video003_p1``, ``video003_p1_1``).
TRACK_NAME: Final = re.compile(r"^(?P<person>(?P<video>.+)_p\d+)(?:_\d+)?$")
# The columns of the dataset file that the errors need: the truth is its joints (see above).
TRUTH_COLUMNS: Final = ("vid_name", "frame_id", "joints3D")
# What scoring.score gives on such truth: its columns but PVE (no true mesh).
METRICS: Final = ("pa_mpjpe", "mpjpe", "accel", "accel_error", "pck", "auc")


class VideoScore(BaseModel):
    """How well a pipeline result matches a synthetic video's ground truth; errors in mm
    (PCK and AUC in percent), ``None`` where nothing was matched to score."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    video: str
    body: str = Field(description="the body model that posed the predicted meshes")
    joint_set_source: str = Field(description='"project" or "published" LSP joints')
    min_iou: float = Field(description="the IoU a predicted box needs to match a true one")
    person_frames: int = Field(ge=0, description="true person-frames of the video")
    predicted_frames: int = Field(ge=0, description="predicted track-frames")
    matched_frames: int = Field(ge=0, description="person-frames matched to a track-frame")
    recall: float = Field(ge=0.0, le=1.0, description="matched / true person-frames")
    precision: float = Field(ge=0.0, le=1.0, description="matched / predicted track-frames")
    people: int = Field(ge=0, description="true people of the video")
    people_found: int = Field(ge=0, description="true people matched in at least one frame")
    predicted_tracks: int = Field(ge=0)
    identity_switches: int = Field(ge=0, description="changes of a person's matched track id")
    landmark_error: float | None = Field(
        None, description="median limb landmark error, a share of the true box's height"
    )
    landmark_missed: float | None = Field(
        None, description="share of matched person-frames without landmarks"
    )
    pa_mpjpe: float | None = None
    mpjpe: float | None = None
    accel: float | None = None
    accel_error: float | None = None
    pck: float | None = None
    auc: float | None = None


class VideoNotFoundError(LookupError):
    """The dataset file has no person-frame of the video asked for."""


def person_names(vid_names: np.ndarray) -> np.ndarray:
    """The person of each synthetic track name: ``video003_p1_1`` → ``video003_p1``.

    Raises:
        ValueError: a name that is not a synthetic track's.
    """
    return np.array([_track_name(str(name)).group("person") for name in vid_names], dtype=str)


def match_by_iou(
    predicted_frames: np.ndarray,
    predicted_boxes: np.ndarray,
    true_frames: np.ndarray,
    true_boxes: np.ndarray,
    min_iou: float = MIN_MATCH_IOU,
) -> tuple[np.ndarray, np.ndarray]:
    """Pair predicted and true boxes of the same frame, one to one, by the Hungarian algorithm
    on IoU; pairs overlapping by less than ``min_iou`` are refused.

    Args:
        predicted_frames: ``(P,)`` frame of each predicted box.
        predicted_boxes: ``(P, 4)`` x1, y1, x2, y2.
        true_frames: ``(T,)`` frame of each true box.
        true_boxes: ``(T, 4)`` x1, y1, x2, y2.
        min_iou: the overlap a pair needs.

    Returns:
        ``(M,)`` int64 indices into the predicted boxes and ``(M,)`` into the true ones, the
        pairs by frame.
    """
    predicted_rows: list[np.ndarray] = []
    true_rows: list[np.ndarray] = []
    for frame in np.intersect1d(predicted_frames, true_frames):
        predicted = np.flatnonzero(predicted_frames == frame)
        true = np.flatnonzero(true_frames == frame)
        iou = iou_matrix(predicted_boxes[predicted], true_boxes[true])
        rows, cols = linear_sum_assignment(iou, maximize=True)
        kept = iou[rows, cols] >= min_iou
        predicted_rows.append(predicted[rows[kept]])
        true_rows.append(true[cols[kept]])
    empty = np.zeros(0, dtype=np.int64)
    return (
        np.concatenate([empty, *predicted_rows]).astype(np.int64),
        np.concatenate([empty, *true_rows]).astype(np.int64),
    )


def match_tracks(
    result: VideoResult,
    true_frames: np.ndarray,
    true_boxes: np.ndarray,
    min_iou: float = MIN_MATCH_IOU,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`match_by_iou` of every track-frame of ``result`` (rows of :func:`track_column`)
    with the truth's person-frames: ``(T,)`` frames and ``(T, 4)`` boxes cx, cy, w, h (a dataset
    file's ``bbox``), both sides' boxes cut to the frame first."""
    size = (result.width, result.height)
    return match_by_iou(
        track_column(result, "frame_ids", (), np.int64),
        clip_boxes(track_column(result, "boxes", (4,), np.float64), *size),
        true_frames,
        clip_boxes(_corner_boxes(true_boxes), *size),
        min_iou,
    )


def identity_switches(people: np.ndarray, frames: np.ndarray, track_ids: np.ndarray) -> int:
    """How often a person's matched track id differs from the one at their previous matched
    frame (MOT's identity switches), given one row per match: ``(M,)`` true person, frame and
    predicted track id."""
    order = np.lexsort((frames, people))
    people, track_ids = people[order], track_ids[order]
    same_person = people[1:] == people[:-1]
    return int(np.count_nonzero(same_person & (track_ids[1:] != track_ids[:-1])))


def score_video_result(
    result_npz: str | Path,
    dataset_file: str | Path,
    video: str,
    *,
    body: BodyModel | None = None,
    min_iou: float = MIN_MATCH_IOU,
) -> VideoScore:
    """Score the pipeline's ``result.npz`` of synthetic video ``video`` (e.g. ``video000``)
    against its rows of ``dataset_file``.

    Args:
        result_npz: ``meshcast run``'s ``result.npz``.
        dataset_file: the synthetic dataset file the video belongs to (``meshcast synth``).
        video: the video's name, the part of its tracks' ``vid_name`` before ``_p``.
        body: the body model that poses the predicted rotations and β; default: the result's
            (its bundle's), by name.
        min_iou: the overlap a predicted box needs to match a true one.

    Raises:
        FileNotFoundError: either file is missing.
        VideoNotFoundError: the dataset file has no row of ``video``.
    """
    result_npz = Path(result_npz)
    if not result_npz.is_file():
        raise FileNotFoundError(f"no pipeline result at {result_npz}")
    result = read_result_npz(result_npz)
    truth = _video_truth(read_dataset_file(dataset_file), video, str(dataset_file))
    body = body or load_body_model(result.body.name)

    track_ids = np.repeat(
        np.array([t.track_id for t in result.tracks], dtype=np.int64),
        [len(t) for t in result.tracks],
    )
    predicted_frames = track_column(result, "frame_ids", (), np.int64)
    predicted, true = match_tracks(result, truth["frame_id"], truth["bbox"], min_iou)
    people = person_names(truth["vid_name"])
    table: Mapping[str, float] = {}
    landmark_error = landmark_missed = None
    if len(true):
        matched = Predictions(
            rotmat=track_column(result, "rotmat", (NUM_JOINTS, 3, 3), np.float32)[predicted],
            betas=track_column(result, "betas", (NUM_BETAS,), np.float32)[predicted],
        )
        table = score(matched, {key: truth[key][true] for key in TRUTH_COLUMNS}, body)
        landmark_error, landmark_missed = _landmark_errors(result, truth, predicted, true)
    person_frames, predicted_count = len(truth["vid_name"]), len(predicted_frames)
    return VideoScore(
        video=video,
        body=body.name,
        joint_set_source=body.joint_set_source,
        min_iou=min_iou,
        person_frames=person_frames,
        predicted_frames=predicted_count,
        matched_frames=len(true),
        recall=len(true) / person_frames,
        precision=len(true) / predicted_count if predicted_count else 0.0,
        people=len(np.unique(people)),
        people_found=len(np.unique(people[true])),
        predicted_tracks=len(result.tracks),
        identity_switches=identity_switches(
            people[true], truth["frame_id"][true], track_ids[predicted]
        ),
        landmark_error=landmark_error if len(true) else None,
        landmark_missed=landmark_missed if len(true) else None,
        **{name: table.get(name) for name in METRICS},
    )


def _landmark_errors(
    result: VideoResult,
    truth: Mapping[str, np.ndarray],
    predicted: np.ndarray,
    true: np.ndarray,
) -> tuple[float | None, float]:
    """The median limb landmark error (share of the true box's height) over the matched
    person-frames the keypoint model saw, and the share it did not see."""
    names = list(result.landmark_names)
    landmarks = track_column(result, "landmarks", (len(names), 3), np.float32)[predicted]
    rows = [names.index(name) for name in LIMB_JOINTS]
    columns = [SPIN49_NAMES.index(name) for name in LIMB_JOINTS]
    seen = np.isfinite(landmarks[:, rows, :2]).all(axis=(1, 2))  # (M,)
    joints = truth["joints2D"][true][:, columns, :2]  # (M, 12, 2)
    heights = truth["bbox"][true][:, 3:4]  # (M, 1)
    distance = np.linalg.norm(landmarks[:, rows, :2] - joints, axis=-1) / heights
    error = float(np.median(distance[seen])) if seen.any() else None
    return error, float(1.0 - seen.mean())


def _track_name(name: str) -> re.Match[str]:
    match = TRACK_NAME.match(name)
    if match is None:
        raise ValueError(f"{name!r} is not a synthetic track's name (video003_p1, video003_p1_1)")
    return match


def _video_truth(
    arrays: Mapping[str, np.ndarray], video: str, source: str
) -> dict[str, np.ndarray]:
    """The rows of ``video`` in a dataset file's ``arrays``."""
    videos = np.array([_track_name(str(name)).group("video") for name in arrays["vid_name"]])
    rows = np.flatnonzero(videos == video)
    if len(rows) == 0:
        known = ", ".join(sorted(set(videos.tolist()))) or "none"
        raise VideoNotFoundError(f"{source} has no person-frame of {video!r}; its videos: {known}")
    if "joints3D" not in arrays:
        raise ValueError(f"{source} has no 3D joints (joints3D) to score against")
    return {key: np.asarray(arrays[key])[rows] for key in ("bbox", "joints2D", *TRUTH_COLUMNS)}


def _corner_boxes(centre_boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` cx, cy, w, h (the dataset files' ``bbox``) → ``(N, 4)`` x1, y1, x2, y2."""
    half = centre_boxes[:, 2:] / 2.0
    return np.concatenate([centre_boxes[:, :2] - half, centre_boxes[:, :2] + half], axis=1)


def track_column(
    result: VideoResult, field: str, row_shape: tuple[int, ...], dtype: type[np.generic]
) -> np.ndarray:
    """One per-frame field of every track, stacked in track order: ``(sum N, *row_shape)``."""
    empty = np.zeros((0, *row_shape), dtype=dtype)
    return np.concatenate([empty, *(getattr(t, field) for t in result.tracks)]).astype(dtype)
