"""The front-end's error on synthetic videos, in the terms of the keypoint families' training
noise (:class:`training.recipes.LandmarkNoise`).

``meshcast run`` on ``meshcast synth`` videos gives, per tracked person-frame, BlazePose's metric
3D landmarks; the videos' truth (pose, β and joints of every person-frame) gives the body's own
landmarks there (:mod:`training.body.landmarks`), hip-centred in the axes BlazePose uses
(:func:`training.data.landmark_clips.view_axes`). Person-frames are matched to the truth by box
IoU as :mod:`training.evaluation.video_scoring` matches them. For each matched frame, the best
turn of the body's points onto BlazePose's (Kabsch) splits the error in two:

* the **turn**: a frame turned by :data:`FAILURE_DEGREES` or more is a failure (BlazePose's
  front-back and sideways confusions; their share and mean run length along a track); the
  others' turn vectors give the spread of the tracks' mean turns (``world_turn``), the spread
  about them within a track (``world_drift``) and its frame-to-frame correlation;
* the **residual** after the turn: a robust per-axis standard deviation (1.4826 × the median
  absolute value), in metres (``world``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final, NamedTuple

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from scipy.spatial.transform import Rotation

from service.outputs.result_files import read_result_npz
from training.body import BodyModel
from training.body.landmarks import HIP_LANDMARKS, NUM_LANDMARKS, landmark_regressor
from training.data.dataset_file import read_dataset_file
from training.data.landmark_clips import WORLD_FAILURE_DEGREES, view_axes
from training.evaluation.video_scoring import TRACK_NAME, match_tracks, track_column

# A frame whose best turn is this large is a failure, not drift.
FAILURE_DEGREES: Final = WORLD_FAILURE_DEGREES[0]
# Tracks with fewer steady frames say little of their own mean turn.
MIN_TRACK_FRAMES: Final = 10
_MAD_TO_STD: Final = 1.4826  # a Gaussian's standard deviation over its median absolute value


class WorldError(BaseModel):
    """BlazePose's metric points against the truth, as :class:`LandmarkNoise`'s world fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    videos: int = Field(ge=0, description="videos with matched person-frames")
    person_frames: int = Field(ge=0, description="matched person-frames with metric points")
    world: float = Field(description="metres: per-axis residual after the best turn (robust)")
    world_turn: tuple[float, float, float] = Field(
        description="degrees: spread of the tracks' mean turns about x, y, z"
    )
    world_drift: tuple[float, float, float] = Field(
        description="degrees: spread of the turn about its track's mean"
    )
    world_drift_correlation: float = Field(description="of the drift, frame to next frame")
    world_failure_probability: float = Field(description=f"share turned ≥ {FAILURE_DEGREES}°")
    world_failure_length: float = Field(description="mean run of failed frames, frames")
    median_turn: float = Field(description="degrees: the median turn of all matched frames")


class _Pairs(NamedTuple):
    """Per matched person-frame: BlazePose's points and the body's, and where it belongs."""

    track: list[str]  # "video/track id"
    frame: np.ndarray  # (M,)
    blazepose: np.ndarray  # (M, 33, 3) metres
    body: np.ndarray  # (M, 33, 3) metres, in view axes


def world_error(
    results: Sequence[tuple[str, Path]], dataset_file: str | Path, body: BodyModel
) -> WorldError:
    """Measure :class:`WorldError` over ``(video, result.npz)`` pairs of one dataset file, the
    truth posed by ``body`` (the body the videos were rendered with)."""
    arrays = read_dataset_file(dataset_file)
    pairs = [_video_pairs(video, path, arrays, body) for video, path in results]
    kept = [p for p in pairs if len(p.frame)]
    if not kept:
        raise ValueError("no matched person-frame with metric landmarks in any video")
    return summarise_world_error(
        np.asarray([track for p in kept for track in p.track]),
        np.concatenate([p.frame for p in kept]),
        np.concatenate([p.body for p in kept]),
        np.concatenate([p.blazepose for p in kept]),
        videos=len(kept),
    )


def summarise_world_error(
    tracks: np.ndarray, frames: np.ndarray, body: np.ndarray, blazepose: np.ndarray, videos: int
) -> WorldError:
    """:class:`WorldError` of matched person-frames: ``(M,)`` track names and frames, and
    ``(M, J, 3)`` the body's points (in view axes) and BlazePose's, hip-centred metres."""
    turns, residuals = best_turns(body, blazepose)
    angles = np.linalg.norm(turns, axis=1)
    failed = angles >= FAILURE_DEGREES
    order = np.lexsort((frames, tracks))
    tracks, frames, turns, failed, residuals = (
        tracks[order], frames[order], turns[order], failed[order], residuals[order]
    )  # fmt: skip
    follows = (tracks[1:] == tracks[:-1]) & (frames[1:] == frames[:-1] + 1)  # row i+1 after i
    runs = np.count_nonzero(failed[1:] & ~(failed[:-1] & follows)) + int(failed[0])
    means, drift = _track_means_and_drift(tracks, turns, failed)
    both = follows & np.isfinite(drift[1:, 0]) & np.isfinite(drift[:-1, 0])
    correlation = 0.0
    if np.count_nonzero(both) > 2:
        after, before = drift[1:][both], drift[:-1][both]
        axes = [np.corrcoef(after[:, axis], before[:, axis])[0, 1] for axis in range(3)]
        correlation = float(np.mean(axes))
    return WorldError(
        videos=videos,
        person_frames=len(tracks),
        world=float(_MAD_TO_STD * np.median(np.abs(residuals[~failed]))),
        world_turn=_spread(means),
        world_drift=_spread(drift[np.isfinite(drift[:, 0])]),
        world_drift_correlation=correlation,
        world_failure_probability=float(failed.mean()),
        world_failure_length=float(failed.sum() / runs) if runs else 1.0,
        median_turn=float(np.median(angles)),
    )


def best_turns(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the turn ``(M, 3)`` (rotation vector, degrees) best taking ``source (M, J,
    3)`` onto ``target`` (Kabsch, no scale), and the residuals ``(M, J, 3)`` after it."""
    u, _, vt = np.linalg.svd(np.einsum("mji,mjk->mik", target, source))
    flip = np.sign(np.linalg.det(u @ vt))  # a turn, not a reflection
    u[:, :, -1] *= flip[:, None]
    turns = u @ vt  # (M, 3, 3)
    residuals = target - np.einsum("mij,mkj->mki", turns, source)
    return np.degrees(Rotation.from_matrix(turns).as_rotvec()), residuals


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


def _spread(values: np.ndarray) -> tuple[float, float, float]:
    """Standard deviations about x, y, z of ``values (N, 3)`` (zeros for fewer than two)."""
    if len(values) < 2:
        return (0.0, 0.0, 0.0)
    x, y, z = (float(v) for v in values.std(axis=0))
    return (x, y, z)


def _video_pairs(
    video: str, result_npz: Path, arrays: dict[str, np.ndarray], body: BodyModel
) -> _Pairs:
    result = read_result_npz(result_npz)
    names = [TRACK_NAME.match(str(name)) for name in arrays["vid_name"]]
    rows = np.flatnonzero([m is not None and m.group("video") == video for m in names])
    frames = track_column(result, "frame_ids", (), np.int64)
    predicted, true = match_tracks(result, arrays["frame_id"][rows], arrays["bbox"][rows])
    world = track_column(result, "world_landmarks", (NUM_LANDMARKS, 3), np.float32)[predicted]
    seen = np.isfinite(world).all(axis=(1, 2))
    predicted, true, world = predicted[seen], rows[true[seen]], world[seen]
    track_ids = np.repeat([t.track_id for t in result.tracks], [len(t) for t in result.tracks])
    return _Pairs(
        track=[f"{video}/{track}" for track in track_ids[predicted]],
        frame=frames[predicted],
        blazepose=world.astype(np.float64),
        body=_body_landmarks(arrays, true, body),
    )


def _body_landmarks(arrays: dict[str, np.ndarray], rows: np.ndarray, body: BodyModel) -> np.ndarray:
    """``(M, 33, 3)`` the body's landmarks at the truth's rows, hip-centred, in view axes."""
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
        points = torch.einsum("lv,mvc->mlc", regressor, vertices + offset).double().numpy()
    hips = points[:, list(HIP_LANDMARKS)].mean(axis=1, keepdims=True)  # (M, 1, 3)
    return view_axes(points - hips, hips[:, 0])
