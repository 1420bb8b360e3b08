"""The front-end's error on synthetic videos, in the terms of the keypoint families' training
noise (:class:`training.recipes.LandmarkNoise`, whose field names :class:`FrontendError` uses).

``meshcast run`` on ``meshcast synth`` videos gives, per tracked person-frame, BlazePose's 33
landmarks (pixels, visibility) and metric 3D points; each video's truth (pose, β and joints of
every person-frame, and the camera) gives the body's own landmarks there
(:mod:`training.body.landmarks`): projected into the frame, and hip-centred in the axes
BlazePose uses (:func:`training.data.landmark_clips.view_axes`). Person-frames are matched to
the truth by box IoU as :mod:`training.evaluation.video_scoring` matches them. Positions are
in shares of the tracker's box's longer side.

* A matched frame without landmarks is **missed**.
* A frame is **failed** where BlazePose reports a wrong person: its visible landmarks' median
  error is over :data:`FAILED_POSITION`, or its metric points are turned by
  :data:`FAILURE_DEGREES` or more against the body's (Kabsch). Failed frames give their share,
  the mean length of their runs along a track, and how the wrong 2D skeleton relates to the
  true one (a similarity fit: its turn, scale and shift, the residual, and how often the
  skeleton mirrored left for right fits better).
* The other, **steady** frames give the everyday error: visible landmarks' per-axis spread
  (robust: 1.4826 × the median absolute value), the share of them off by more than
  :data:`OUTLIER` and those outliers' spread, the share reported hidden; the metric points'
  turns (the spread of the tracks' mean turns, the spread about them within a track and its
  frame-to-frame correlation) and their residual after the turn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from scipy.spatial.transform import Rotation

from service.outputs.result_files import read_result_npz
from service.pipeline.landmarks import VISIBLE
from training.body import BodyModel
from training.body.landmarks import (
    BLAZEPOSE_FLIP_PERMUTATION,
    BLAZEPOSE_NAMES,
    HIP_LANDMARKS,
    LIMB_JOINTS,
    NUM_LANDMARKS,
    landmark_regressor,
)
from training.data.dataset_file import read_dataset_file
from training.data.landmark_clips import WORLD_FAILURE_DEGREES, view_axes
from training.evaluation.metrics import pa_mpjpe
from training.evaluation.video_scoring import TRACK_NAME, match_tracks, track_column
from training.synth.generate import project

FAILURE_DEGREES: Final = WORLD_FAILURE_DEGREES[0]  # a metric skeleton turned this far failed
FAILED_POSITION: Final = 0.15  # a 2D skeleton whose median landmark is this far off failed
OUTLIER: Final = 0.15  # a steady frame's landmark this far off is an outlier
MIN_TRACK_FRAMES: Final = 10  # fewer steady frames say little of a track's mean turn
MIN_FIT_LANDMARKS: Final = 5  # visible landmarks a failed skeleton's similarity fit needs
# The landmarks the metric points' PA-MPJPE is taken over: the limb joints both skeletons name.
LIMBS: Final = [BLAZEPOSE_NAMES.index(name) for name in LIMB_JOINTS]
_MAD_TO_STD: Final = 1.4826  # a Gaussian's standard deviation over its median absolute value


class FrontendError(BaseModel):
    """What ``meshcast frontend-error`` measures; fields named as :class:`LandmarkNoise`'s."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    videos: int = Field(ge=0, description="videos with matched person-frames")
    person_frames: int = Field(ge=0, description="matched person-frames")
    missed_frame_probability: float = Field(description="matched frames without landmarks")
    position: float = Field(description="steady visible landmarks' per-axis spread")
    outlier_probability: float = Field(description=f"steady visible landmarks off > {OUTLIER}")
    outlier: float = Field(description="those outliers' per-axis spread")
    hidden_probability: float = Field(description="steady landmarks reported hidden")
    world: float = Field(description="metres: per-axis residual after the best turn")
    world_turn: tuple[float, float, float] = Field(description="degrees: tracks' mean turns")
    world_drift: tuple[float, float, float] = Field(description="degrees: about a track's mean")
    world_drift_correlation: float = Field(description="of the drift, frame to next frame")
    failure_probability: float = Field(description="share of frames with landmarks, failed")
    failure_length: float = Field(description="mean run of failed frames, frames")
    failure_turn: float = Field(description="degrees: spread of a failed skeleton's turn")
    failure_scale: tuple[float, float] = Field(description="its scale's 10th, 90th percentile")
    failure_shift: float = Field(description="its centre's per-axis spread")
    failure_position: float = Field(description="per-axis residual after its similarity fit")
    failure_mirror_probability: float = Field(description="mirrored left-right fits it better")
    median_turn: float = Field(description="degrees: the median metric turn, all frames")
    world_pa_mpjpe: float = Field(
        description="mm: the metric points' limb landmarks against the body's as PA-MPJPE "
        "aligns them (scale, turn, shift per frame), mean over all frames"
    )


class Matched(NamedTuple):
    """Matched person-frames with landmarks: BlazePose's and the body's, and where they are."""

    track: np.ndarray  # (M,) str: "video/track id"
    frame: np.ndarray  # (M,)
    landmarks: np.ndarray  # (M, 33, 3) x, y in box sides about the box centre, visibility
    truth: np.ndarray  # (M, 33, 2) the body's landmarks, the same units
    world: np.ndarray  # (M, 33, 3) BlazePose's metric points
    body: np.ndarray  # (M, 33, 3) the body's, in view axes


def frontend_error(
    results: Sequence[tuple[str, Path]], dataset_file: str | Path, body: BodyModel
) -> FrontendError:
    """Measure :class:`FrontendError` over ``(video, result.npz)`` pairs of one dataset file,
    the truth posed by ``body`` (the body the videos were rendered with); each video's camera
    is read from ``SPLIT/videos/VIDEO.json`` beside its frames (``meshcast synth``)."""
    arrays = read_dataset_file(dataset_file)
    found = [_video_pairs(video, path, arrays, body) for video, path in results]
    kept = [(matched, total) for matched, total in found if total]
    if not kept or not any(len(matched.frame) for matched, _ in kept):
        raise ValueError("no matched person-frame with landmarks in any video")
    columns = zip(*(matched for matched, _ in kept), strict=True)
    matched = Matched(*(np.concatenate(column) for column in columns))
    total = sum(count for _, count in kept)
    return summarise(matched, missed=1.0 - len(matched.frame) / total, videos=len(kept))


def summarise(matched: Matched, missed: float, videos: int) -> FrontendError:
    """:class:`FrontendError` of matched person-frames with landmarks (``missed``: the share
    of matched person-frames without)."""
    track, frame = matched.track, matched.frame
    order = np.lexsort((frame, track))
    matched = Matched(*(column[order] for column in matched))
    track, frame = matched.track, matched.frame
    follows = (track[1:] == track[:-1]) & (frame[1:] == frame[:-1] + 1)  # row i+1 after i

    offsets, visible, distances, turns, residuals, failed = frame_errors(
        matched.landmarks, matched.truth, matched.world, matched.body
    )
    angles = np.linalg.norm(turns, axis=1)
    runs = np.count_nonzero(failed[1:] & ~(failed[:-1] & follows)) + int(failed[0])

    steady_seen = visible & ~failed[:, None]
    steady_offsets = offsets[steady_seen]  # (K, 2)
    outliers = np.linalg.norm(steady_offsets, axis=-1) > OUTLIER
    means, drift = _track_means_and_drift(track, turns, failed)
    failure = _failed_skeletons(matched, failed & ~np.isnan(distances).all(axis=1))
    return FrontendError(
        videos=videos,
        person_frames=len(track),
        missed_frame_probability=missed,
        position=_robust_std(steady_offsets[~outliers]),
        outlier_probability=float(outliers.mean()) if len(outliers) else 0.0,
        outlier=_robust_std(steady_offsets[outliers]),
        hidden_probability=float(1.0 - visible[~failed].mean()) if (~failed).any() else 0.0,
        world=_robust_std(residuals[~failed]),
        world_turn=_spread(means),
        world_drift=_spread(drift[np.isfinite(drift[:, 0])]),
        world_drift_correlation=_lag_correlation(drift, follows),
        failure_probability=float(failed.mean()),
        failure_length=float(failed.sum() / runs) if runs else 1.0,
        median_turn=float(np.median(angles)),
        world_pa_mpjpe=float(pa_mpjpe(matched.world[:, LIMBS], matched.body[:, LIMBS]).mean()),
        **failure,
    )


class FrameErrors(NamedTuple):
    """How far each matched person-frame's landmarks are from the body's."""

    offsets: np.ndarray  # (M, 33, 2) the landmarks less the body's, box sides
    visible: np.ndarray  # (M, 33) bool: the landmarks reported visible
    distances: np.ndarray  # (M, 33) visible landmarks' distance, box sides; NaN where hidden
    turns: np.ndarray  # (M, 3) the metric points' best turn onto the body's, degrees
    residuals: np.ndarray  # (M, 33, 3) the metric points' offsets after that turn, metres
    failed: np.ndarray  # (M,) bool: a wrong skeleton (see the module's docstring)


def frame_errors(
    landmarks: np.ndarray, truth: np.ndarray, world: np.ndarray, body: np.ndarray
) -> FrameErrors:
    """Each person-frame's errors, and whether the front-end failed there: ``landmarks (M, 33,
    3)`` and ``truth (M, 33, 2)`` as :class:`Matched` holds them, the metric points ``world``
    and the body's ``body`` ``(M, 33, 3)``."""
    offsets = landmarks[..., :2] - truth  # (M, 33, 2)
    visible = landmarks[..., 2] >= VISIBLE  # (M, 33)
    distances = np.where(visible, np.linalg.norm(offsets, axis=-1), np.nan)
    with np.errstate(all="ignore"):
        skeleton_off = np.nanmedian(distances, axis=1) > FAILED_POSITION  # all-NaN: False
    turns, residuals = best_turns(body, world)
    failed = skeleton_off | (np.linalg.norm(turns, axis=1) >= FAILURE_DEGREES)
    return FrameErrors(offsets, visible, distances, turns, residuals, failed)


def in_box_units(pixels: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``pixels (M, J, 2)`` about their person-frame's box centre, in the box's longer side
    (``boxes (M, 4)``: x0, y0, x1, y1)."""
    centres = (boxes[:, None, :2] + boxes[:, None, 2:]) / 2.0  # (M, 1, 2)
    sides = (boxes[:, 2:] - boxes[:, :2]).max(axis=1)[:, None, None]  # (M, 1, 1)
    return (pixels - centres) / sides


def best_turns(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the turn ``(M, 3)`` (rotation vector, degrees) best taking ``source (M, J,
    3)`` onto ``target`` (Kabsch, no scale), and the residuals ``(M, J, 3)`` after it."""
    u, _, vt = np.linalg.svd(np.einsum("mji,mjk->mik", target, source))
    flip = np.sign(np.linalg.det(u @ vt))  # a turn, not a reflection
    u[:, :, -1] *= flip[:, None]
    turns = u @ vt  # (M, 3, 3)
    residuals = target - np.einsum("mij,mkj->mki", turns, source)
    return np.degrees(Rotation.from_matrix(turns).as_rotvec()), residuals


def similarity(source: np.ndarray, target: np.ndarray) -> tuple[float, float, np.ndarray]:
    """The 2D similarity best taking ``source (J, 2)`` onto ``target`` (Umeyama): its turn
    (degrees), scale, and the residuals ``(J, 2)`` after it (the centroids matched)."""
    a, b = source - source.mean(axis=0), target - target.mean(axis=0)
    u, singular, vt = np.linalg.svd(b.T @ a)
    sign = np.array([1.0, np.sign(np.linalg.det(u @ vt))])
    turn = u @ np.diag(sign) @ vt
    scale = float((singular * sign).sum() / max((a**2).sum(), 1e-12))
    return float(np.degrees(np.arctan2(turn[1, 0], turn[0, 0]))), scale, b - scale * a @ turn.T


def _failed_skeletons(matched: Matched, failed: np.ndarray) -> dict[str, object]:
    """How failed frames' 2D skeletons relate to the truth (the ``failure_*`` fields)."""
    turns, scales, shifts, residuals, mirrored = [], [], [], [], []
    for row in np.flatnonzero(failed):
        seen = matched.landmarks[row, :, 2] >= VISIBLE
        if np.count_nonzero(seen) < MIN_FIT_LANDMARKS:
            continue
        truth, reported = matched.truth[row, seen], matched.landmarks[row, seen, :2]
        turn, scale, residual = similarity(truth, reported)
        turns.append(turn)
        scales.append(scale)
        shifts.append(reported.mean(axis=0) - truth.mean(axis=0))
        residuals.append(residual)
        flipped = matched.truth[row, list(BLAZEPOSE_FLIP_PERMUTATION)][seen]
        mirrored.append(
            np.linalg.norm(reported - flipped, axis=-1).mean()
            < np.linalg.norm(reported - truth, axis=-1).mean()
        )
    if not turns:
        return {"failure_turn": 0.0, "failure_scale": (1.0, 1.0), "failure_shift": 0.0,
                "failure_position": 0.0, "failure_mirror_probability": 0.0}  # fmt: skip
    low, high = np.percentile(scales, (10, 90))
    return {
        "failure_turn": float(np.sqrt(np.mean(np.square(turns)))),
        "failure_scale": (float(low), float(high)),
        "failure_shift": _robust_std(np.array(shifts)),
        "failure_position": _robust_std(np.concatenate(residuals)),
        "failure_mirror_probability": float(np.mean(mirrored)),
    }


def _video_pairs(
    video: str, result_npz: Path, arrays: dict[str, np.ndarray], body: BodyModel
) -> tuple[Matched, int]:
    """The matched person-frames of ``video`` with landmarks, and how many were matched."""
    result = read_result_npz(result_npz)
    names = [TRACK_NAME.match(str(name)) for name in arrays["vid_name"]]
    rows = np.flatnonzero([m is not None and m.group("video") == video for m in names])
    predicted, true = match_tracks(result, arrays["frame_id"][rows], arrays["bbox"][rows])
    landmarks = track_column(result, "landmarks", (NUM_LANDMARKS, 3), np.float64)[predicted]
    world = track_column(result, "world_landmarks", (NUM_LANDMARKS, 3), np.float64)[predicted]
    seen = np.isfinite(landmarks[..., :2]).all(axis=(1, 2)) & np.isfinite(world).all(axis=(1, 2))
    predicted, true = predicted[seen], rows[true[seen]]
    boxes = track_column(result, "boxes", (4,), np.float64)[predicted]
    pixels, body_world = true_landmarks(arrays, true, body, video)
    track_ids = np.repeat([t.track_id for t in result.tracks], [len(t) for t in result.tracks])
    reported = landmarks[seen]
    reported[..., :2] = in_box_units(reported[..., :2], boxes)
    matched = Matched(
        track=np.array([f"{video}/{track}" for track in track_ids[predicted]], dtype=str),
        frame=track_column(result, "frame_ids", (), np.int64)[predicted],
        landmarks=reported,
        truth=in_box_units(pixels, boxes),
        world=world[seen],
        body=body_world,
    )
    return matched, len(seen)


def true_landmarks(
    arrays: dict[str, np.ndarray], rows: np.ndarray, body: BodyModel, video: str
) -> tuple[np.ndarray, np.ndarray]:
    """The body's landmarks at rows of a synthetic dataset file, as BlazePose would report
    them exactly: ``(M, 33, 2)`` pixels in ``video``'s frame (its camera read from
    ``SPLIT/videos/VIDEO.json`` beside the frames, as ``meshcast synth`` writes it), and
    ``(M, 33, 3)`` metric points, hip-centred, in BlazePose's axes (:func:`view_axes`)."""
    points = _body_landmarks(arrays, rows, body)  # (M, 33, 3) camera frame
    if not len(rows):
        return np.zeros((0, NUM_LANDMARKS, 2)), points
    # frames are SPLIT/frames/VIDEO/*.jpg, the camera SPLIT/videos/VIDEO.json
    split_dir = Path(str(arrays["img_name"][rows[0]])).parents[2]
    camera = json.loads((split_dir / "videos" / f"{video}.json").read_text())
    pixels = project(points, np.asarray(camera["intrinsics"]))
    hips = points[:, list(HIP_LANDMARKS)].mean(axis=1, keepdims=True)  # (M, 1, 3)
    return pixels, view_axes(points - hips, hips[:, 0])


def _body_landmarks(arrays: dict[str, np.ndarray], rows: np.ndarray, body: BodyModel) -> np.ndarray:
    """``(M, 33, 3)`` the body's landmarks at the truth's rows, camera frame, metres."""
    if not len(rows):
        return np.zeros((0, NUM_LANDMARKS, 3))
    regressor = torch.from_numpy(landmark_regressor(body.J_regressor.numpy(), body.landmarks))
    pose = torch.from_numpy(np.asarray(arrays["pose"][rows], dtype=np.float32))
    betas = torch.from_numpy(np.asarray(arrays["shape"][rows], dtype=np.float32))
    joints = torch.from_numpy(np.asarray(arrays["joints3D"][rows][..., :3], dtype=np.float32))
    with torch.no_grad():
        vertices = body(pose, betas).vertices
        # the truth's pose has its camera-frame orientation; its joints place it
        offset = (joints - body.regress_joints(vertices, "spin49")).mean(dim=1, keepdim=True)
        return torch.einsum("lv,mvc->mlc", regressor, vertices + offset).double().numpy()


def _track_means_and_drift(
    tracks: np.ndarray, turns: np.ndarray, failed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The mean turn ``(K, 3)`` of each track with :data:`MIN_TRACK_FRAMES` steady frames, and
    each steady frame's turn less its track's mean ``(M, 3)`` (NaN elsewhere)."""
    means = []
    drift = np.full_like(turns, np.nan)
    for name in np.unique(tracks):
        steady = (tracks == name) & ~failed
        if np.count_nonzero(steady) >= MIN_TRACK_FRAMES:
            means.append(turns[steady].mean(axis=0))
            drift[steady] = turns[steady] - means[-1]
    return np.array(means).reshape(-1, 3), drift


def _lag_correlation(drift: np.ndarray, follows: np.ndarray) -> float:
    """The mean over axes of the correlation of ``drift (M, 3)`` with the next row's, over
    rows that ``follows`` says are consecutive frames of one track."""
    both = follows & np.isfinite(drift[1:, 0]) & np.isfinite(drift[:-1, 0])
    if np.count_nonzero(both) <= 2:
        return 0.0
    after, before = drift[1:][both], drift[:-1][both]
    return float(np.mean([np.corrcoef(after[:, axis], before[:, axis])[0, 1] for axis in range(3)]))


def _robust_std(values: np.ndarray) -> float:
    """1.4826 × the median absolute value of ``values`` (0 when empty)."""
    return float(_MAD_TO_STD * np.median(np.abs(values))) if values.size else 0.0


def _spread(values: np.ndarray) -> tuple[float, float, float]:
    """Standard deviations about x, y, z of ``values (N, 3)`` (zeros for fewer than two)."""
    if len(values) < 2:
        return (0.0, 0.0, 0.0)
    x, y, z = (float(v) for v in values.std(axis=0))
    return (x, y, z)
