"""SORT: people detected frame by frame become tracks, one id per person for the whole video.

As SPS-Net §4.1 uses it (after Bewley et al. 2016, "Simple online and realtime tracking"):
each track's box follows a constant-velocity Kalman filter; in every frame the filter predicts
each track's box, the detections are assigned to the predictions by the Hungarian algorithm
on IoU, pairs under a minimum IoU are refused, and a detection left over starts a new track.
A track that goes ``max_age`` frames without a detection ends.

:class:`SortTracker` is the online tracker; :func:`track_people` runs it over a whole video and
keeps each person's history: confirmed tracks of at least ``min_length`` frames, short gaps
(frames the detector missed) filled by interpolation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt
from scipy.optimize import linear_sum_assignment

from service.pipeline.boxes import iou_matrix

# The state is [cx, cy, s, r, vcx, vcy, vs]: box centre, area s, aspect ratio r = w/h (constant:
# no velocity), and the velocities of the first three. Noise variances are those of SORT's
# reference code (sort.py, KalmanBoxTracker), in pixels and square pixels, except for the
# measured box centre (TrackerConfig.centre_noise_per_height).
SHAPE_MEASUREMENT_VARIANCE = np.array([10.0, 10.0])  # s, r
INITIAL_VARIANCE = np.array([10.0, 10.0, 10.0, 10.0, 1e4, 1e4, 1e4])  # velocities unknown
PROCESS_VARIANCE = np.array([1.0, 1.0, 1.0, 1.0, 1e-2, 1e-2, 1e-4])
STATE_SIZE, MEASUREMENT_SIZE = 7, 4
# x' = F x: position += velocity, for cx, cy and s.
TRANSITION = np.eye(STATE_SIZE) + np.eye(STATE_SIZE, k=MEASUREMENT_SIZE)
OBSERVATION = np.eye(MEASUREMENT_SIZE, STATE_SIZE)  # a detection measures cx, cy, s, r


class TrackerConfig(BaseModel):
    """Parameters of SORT and of what :func:`track_people` keeps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_iou: float = Field(0.3, gt=0.0, le=1.0)  # SORT's iou_threshold
    # Frames a track coasts on its prediction without a detection. SORT's 1 suits a detector
    # that fires on every frame; HOG and YOLO lose a person for several frames when a nearer
    # one passes in front or a detection flickers, and a second id for the same person costs
    # more here (the temporal model wants whole tracks) than a coasting box does. 15 frames is
    # half a second at 30 fps, about how long a walker stays hidden by another crossing him.
    max_age: NonNegativeInt = 15
    min_hits: PositiveInt = 3  # consecutive detections that confirm a track (SORT)
    # Measurement noise of the box centre (standard deviation), in box heights. SORT fixes it
    # at 1 pixel whatever the size; a detector's box around a person 300 pixels tall jitters by
    # several pixels, a filter that trusts each jitter learns a jittery velocity, and two people
    # who cross swap ids. 1/20 of the height is Deep SORT's (Wojke et al. 2017). On the tests'
    # synthetic scenes it and max_age take IDF1 from 0.4-0.6 (SORT's values) to over 0.99.
    centre_noise_per_height: float = Field(0.05, gt=0.0)
    min_length: PositiveInt = 25  # frames; shorter tracks are dropped (VIBE's demo)
    interpolate_gaps: bool = True  # fill the frames a track coasted through, linearly


@dataclass(frozen=True)
class ActiveTrack:
    """A confirmed track detected in the current frame, as :meth:`SortTracker.update` gives."""

    id: int
    box: np.ndarray  # (4,) x1, y1, x2, y2, the filter's estimate
    score: float  # the detection's


@dataclass(frozen=True)
class Track:
    """One person over the video.

    ``frames`` rise; with gaps filled they are consecutive, from the first detection to the
    last. A filled frame has ``detected`` False and score 0.
    """

    id: int
    frames: np.ndarray  # (N,) int64 frame indices
    boxes: np.ndarray  # (N, 4) float64 x1, y1, x2, y2, the filter's estimates
    scores: np.ndarray  # (N,) float64 detection scores
    detected: np.ndarray  # (N,) bool


def box_to_measurement(box: np.ndarray) -> np.ndarray:
    """``(4,)`` x1, y1, x2, y2 → ``(4,)`` cx, cy, area, aspect (w/h)."""
    width, height = box[2] - box[0], box[3] - box[1]
    return np.array([box[0] + width / 2, box[1] + height / 2, width * height, width / height])


def state_to_box(state: np.ndarray) -> np.ndarray:
    """Kalman state ``(7,)`` → ``(4,)`` x1, y1, x2, y2."""
    cx, cy, area, aspect = state[:MEASUREMENT_SIZE]
    width = np.sqrt(max(area * aspect, 0.0))
    height = area / width if width > 0 else 0.0
    return np.array([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2])


@dataclass
class _KalmanTrack:
    """A track being followed: its filter, its counters and its history."""

    id: int
    state: np.ndarray  # (7,)
    covariance: np.ndarray  # (7, 7)
    misses: int = 0  # frames since the last detection
    streak: int = 0  # consecutive frames with a detection
    confirmed: bool = False
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def predict(self) -> np.ndarray:
        """Advance the filter one frame; returns the predicted ``(4,)`` box."""
        if self.state[2] + self.state[6] <= 0:  # the area would vanish: stop shrinking
            self.state[6] = 0.0
        self.state = TRANSITION @ self.state
        self.covariance = TRANSITION @ self.covariance @ TRANSITION.T + np.diag(PROCESS_VARIANCE)
        if self.misses > 0:
            self.streak = 0
        self.misses += 1
        return state_to_box(self.state)

    def correct(self, detection: np.ndarray, frame: int, config: TrackerConfig) -> None:
        """Fold in the ``(5,)`` detection assigned to this track in ``frame``."""
        centre_std = config.centre_noise_per_height * (detection[3] - detection[1])
        measurement_cov = np.diag(np.r_[centre_std**2, centre_std**2, SHAPE_MEASUREMENT_VARIANCE])
        innovation = box_to_measurement(detection[:4]) - OBSERVATION @ self.state  # (4,)
        innovation_cov = OBSERVATION @ self.covariance @ OBSERVATION.T + measurement_cov  # (4, 4)
        gain = np.linalg.solve(innovation_cov, OBSERVATION @ self.covariance).T  # (7, 4)
        self.state = self.state + gain @ innovation
        self.covariance = (np.eye(STATE_SIZE) - gain @ OBSERVATION) @ self.covariance
        self.record(frame, float(detection[4]), config.min_hits)

    def record(self, frame: int, score: float, min_hits: int) -> None:
        """Count a detection in ``frame`` and keep the filter's box in the history."""
        self.misses = 0
        self.streak += 1
        self.confirmed |= self.streak >= min_hits
        self.frames.append(frame)
        self.boxes.append(state_to_box(self.state))
        self.scores.append(score)


class SortTracker:
    """SORT, online: feed each frame's detections to :meth:`update`, in order."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._live: list[_KalmanTrack] = []
        self._ended: list[_KalmanTrack] = []
        self._frame = -1
        self._next_id = 1

    def update(self, detections: np.ndarray) -> list[ActiveTrack]:
        """Take the next frame's detections.

        Args:
            detections: ``(N, 5)`` x1, y1, x2, y2, score; ``N`` may be 0. Boxes without area
                are ignored.

        Returns:
            The tracks detected in this frame that are confirmed (``min_hits`` detections in a
            row), or all of them during the first ``min_hits`` frames of the video (as SORT).
        """
        cfg = self.config
        self._frame += 1
        detections = np.asarray(detections, dtype=np.float64).reshape(-1, 5)
        sizes = detections[:, 2:4] - detections[:, :2]  # (N, 2) width, height
        detections = detections[(sizes > 0).all(axis=1)]  # boxes cut away at the frame's edge
        predicted = np.array([track.predict() for track in self._live]).reshape(-1, 4)
        matches, unmatched = associate(predicted, detections[:, :4], cfg.min_iou)
        for track_index, detection_index in matches:
            self._live[track_index].correct(detections[detection_index], self._frame, cfg)
        for detection_index in unmatched:
            self._start(detections[detection_index])
        self._ended += [t for t in self._live if t.misses > cfg.max_age and t.confirmed]
        self._live = [track for track in self._live if track.misses <= cfg.max_age]
        return [
            ActiveTrack(track.id, track.boxes[-1], track.scores[-1])
            for track in self._live
            if track.misses == 0 and (track.confirmed or self._frame < cfg.min_hits)
        ]

    def finish(self) -> list[Track]:
        """Every confirmed track so far at least ``min_length`` frames long (filled frames
        count), ordered by id."""
        cfg = self.config
        tracks = []
        for kept in sorted(self._ended + self._live, key=lambda track: track.id):
            track = Track(
                id=kept.id,
                frames=np.asarray(kept.frames, dtype=np.int64),
                boxes=np.asarray(kept.boxes, dtype=np.float64),
                scores=np.asarray(kept.scores, dtype=np.float64),
                detected=np.ones(len(kept.frames), dtype=bool),
            )
            if cfg.interpolate_gaps:
                track = fill_gaps(track)
            if kept.confirmed and len(track.frames) >= cfg.min_length:
                tracks.append(track)
        return tracks

    def _start(self, detection: np.ndarray) -> None:
        state = np.zeros(STATE_SIZE)
        state[:MEASUREMENT_SIZE] = box_to_measurement(detection[:4])
        track = _KalmanTrack(self._next_id, state, np.diag(INITIAL_VARIANCE))
        track.record(self._frame, float(detection[4]), self.config.min_hits)
        self._next_id += 1
        self._live.append(track)


def associate(
    predicted: np.ndarray, detected: np.ndarray, min_iou: float
) -> tuple[list[tuple[int, int]], list[int]]:
    """Assign detections to tracks: Hungarian algorithm on IoU, pairs under ``min_iou`` refused.

    Args:
        predicted: ``(T, 4)`` the tracks' predicted boxes.
        detected: ``(N, 4)`` this frame's detections.

    Returns:
        ``(track, detection)`` index pairs, and the indices of the detections left over.
    """
    iou = iou_matrix(predicted, detected)  # (T, N)
    rows, cols = linear_sum_assignment(iou, maximize=True)
    matches = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= min_iou]
    matched = {c for _, c in matches}
    return matches, [c for c in range(len(detected)) if c not in matched]


def fill_gaps(track: Track) -> Track:
    """Fill the frames missing inside a track by linear interpolation of its boxes
    (``detected`` False, score 0)."""
    frames = np.arange(track.frames[0], track.frames[-1] + 1)  # (F,)
    boxes = np.stack(
        [np.interp(frames, track.frames, track.boxes[:, k]) for k in range(4)], axis=1
    )  # (F, 4)
    detected = np.isin(frames, track.frames)
    scores = np.zeros(len(frames))
    scores[detected] = track.scores
    return Track(track.id, frames, boxes, scores, detected)


def track_people(
    detections_per_frame: Iterable[np.ndarray], config: TrackerConfig | None = None
) -> list[Track]:
    """Track people through a whole video.

    Args:
        detections_per_frame: one ``(N, 5)`` x1, y1, x2, y2, score array per frame, in order
            (an empty ``(0, 5)`` for a frame without detections).
        config: SORT's and the track filter's parameters.

    Returns:
        One :class:`Track` per person, ordered by id.
    """
    tracker = SortTracker(config)
    for detections in detections_per_frame:
        tracker.update(detections)
    return tracker.finish()
