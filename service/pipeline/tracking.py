"""SORT: people detected frame by frame become tracks, one id per person for the whole video.

As SPS-Net §4.1 uses it (after Bewley et al. 2016, "Simple online and realtime tracking"):
each track's box follows a constant-velocity Kalman filter; in every frame the filter predicts
each track's box, the detections are assigned to the predictions by the Hungarian algorithm
on IoU, pairs under a minimum IoU are refused, and a detection left over starts a new track.
A track that goes ``max_age`` of the detector's frames without a detection ends.

:class:`SortTracker` is the online tracker; :func:`track_people` runs it over a whole video and
keeps each person's history: confirmed tracks of at least ``min_length`` frames, short gaps
(frames the detector missed) filled by interpolation.

Body landmarks help where boxes alone fail (:meth:`SortTracker.observe`, fed by the keypoint
stage). A track's last landmarks give a tight box on its person, moved by the filter's
velocity: blended with the predicted box, it decides the assignment when people's boxes
overlap. And a track whose person the detector missed follows its landmarks, as MediaPipe
Pose tracks one person: when the keypoint model, looking where the landmarks were, still sees
a person there (and that person is not another track's), the box of the new landmarks corrects
the filter, and the frame is kept as followed rather than detected. The detector need not run
on every frame (:meth:`SortTracker.coast`): between its frames the keypoint stage follows every
track so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt
from scipy.optimize import linear_sum_assignment

from service.pipeline.boxes import iou_matrix
from service.pipeline.landmarks import NUM_LANDMARKS

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
    # Frames a track needs to be kept. VIBE's demo keeps 25; here people half hidden for most
    # of a clip lost their meshes (two walkers of the committed clip, detected surely only in
    # its last 15 frames), and on the held-out synthetic videos 8 took person recall from 0.77
    # to 0.85 at the same PA-MPJPE (README), at the cost of more broken tracks.
    min_length: PositiveInt = 8
    interpolate_gaps: bool = True  # fill the frames a track coasted through, linearly
    # The share of the landmarks' box in the affinity of a track and a detection (the rest is
    # the predicted box's IoU), for tracks with landmarks; times their mean visibility.
    landmark_weight: float = Field(0.5, ge=0.0, le=1.0)
    # A missed person is followed by its landmarks when the keypoint model's confidence that
    # a person is in the region reaches this (MediaPipe Pose's threshold).
    follow_min_score: float = Field(0.5, ge=0.0, le=1.0)
    # A followed track's landmarks overlapping another track's this much are that person's.
    duplicate_iou: float = Field(0.5, gt=0.0, le=1.0)
    # A track is kept when the keypoint model, over the frames it looked at, was this sure (its
    # median) that a person is there. On vtest.avi people's tracks have medians of 0.9-1.0;
    # sign posts, bollards and a traffic cone that the detector took for people for 27-245
    # frames had 0.0-0.25.
    min_person_score: float = Field(0.5, ge=0.0, le=1.0)
    # A track the detector found in under `mostly_detected` of its frames (the keypoint model
    # followed it between) is kept only when those detections average `min_detection_score`.
    # On vtest.avi a sign post and a sign by a bollard, found in 45 % and 32 % of their tracks'
    # frames with mean scores 0.28 and 0.25, were drawn as people lying sideways; people's
    # tracks there and on the held-out synthetic videos are found in 51 % of their frames or
    # more, or average 0.37 or more, and a small person in a 4K frame (the tests') averages
    # 0.32 but is found in 80 % of its frames (docs/results.md).
    mostly_detected: float = Field(0.5, ge=0.0, le=1.0)
    min_detection_score: float = Field(0.33, ge=0.0, le=1.0)


@dataclass(frozen=True)
class ActiveTrack:
    """A confirmed track detected in the current frame, as :meth:`SortTracker.update` gives."""

    id: int
    box: np.ndarray  # (4,) x1, y1, x2, y2, the filter's estimate
    score: float  # the detection's


@dataclass(frozen=True)
class LiveTrack:
    """A track in the current frame that the keypoint stage should look at
    (:meth:`SortTracker.live`)."""

    id: int
    box: np.ndarray  # (4,) x1, y1, x2, y2: the filter's estimate (detected) or prediction
    detected: bool  # a detection was assigned to it in this frame
    follow: np.ndarray | None  # (4,) cx, cy, side, rotation: the ROI its last landmarks give


@dataclass(frozen=True)
class PoseObservation:
    """What the keypoint stage saw of one track's person in one frame."""

    landmarks: np.ndarray  # (33, 3) x, y pixels, visibility
    world_landmarks: np.ndarray  # (33, 3) metres
    score: float  # the keypoint model's confidence that a person is there
    box: np.ndarray  # (4,) the visible landmarks' box; NaN when too few were visible
    follow: np.ndarray  # (4,) cx, cy, side, rotation: the next frame's ROI


@dataclass(frozen=True)
class Track:
    """One person over the video.

    ``frames`` rise; with gaps filled they are consecutive, from the first detection to the
    last. A filled or followed frame has ``detected`` False and score 0.

    Landmarks are there when the keypoint stage ran (:meth:`SortTracker.observe`); a frame it
    did not see has NaN coordinates, visibility 0 and score 0.
    """

    id: int
    frames: np.ndarray  # (N,) int64 frame indices
    boxes: np.ndarray  # (N, 4) float64 x1, y1, x2, y2, the filter's estimates
    scores: np.ndarray  # (N,) float64 detection scores
    detected: np.ndarray  # (N,) bool
    landmarks: np.ndarray | None = None  # (N, 33, 3) float32 x, y pixels, visibility
    world_landmarks: np.ndarray | None = None  # (N, 33, 3) float32 metres
    keypoint_scores: np.ndarray | None = None  # (N,) float32


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
    misses: int = 0  # the detector's frames since the last detection
    streak: int = 0  # consecutive detector's frames with a detection
    last_detected: int = -1  # the frame of the last detection
    confirmed: bool = False
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    detected: list[bool] = field(default_factory=list)
    poses: dict[int, PoseObservation] = field(default_factory=dict)  # frame → what was seen

    def predict(self, searched: bool = True) -> np.ndarray:
        """Advance the filter one frame; returns the predicted ``(4,)`` box. A frame the
        detector did not search (``searched`` False) counts as no miss."""
        if self.state[2] + self.state[6] <= 0:  # the area would vanish: stop shrinking
            self.state[6] = 0.0
        self.state = TRANSITION @ self.state
        self.covariance = TRANSITION @ self.covariance @ TRANSITION.T + np.diag(PROCESS_VARIANCE)
        if searched:
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

    def record(self, frame: int, score: float, min_hits: int) -> None:
        """Count a detection in ``frame`` and keep the filter's box in the history."""
        self.misses = 0
        self.streak += 1
        self.confirmed |= self.streak >= min_hits
        self.last_detected = frame
        self.keep(frame, score, detected=True)

    def keep(self, frame: int, score: float, detected: bool) -> None:
        """Keep the filter's box of ``frame`` in the history."""
        self.frames.append(frame)
        self.boxes.append(state_to_box(self.state))
        self.scores.append(score)
        self.detected.append(detected)


class SortTracker:
    """SORT, online: feed each frame's detections to :meth:`update`, in order."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._live: list[_KalmanTrack] = []
        self._ended: list[_KalmanTrack] = []
        self._frame = -1
        self._next_id = 1
        self._searched: list[int] = []  # the frames the detector searched, rising

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
        self._searched.append(self._frame)
        detections = np.asarray(detections, dtype=np.float64).reshape(-1, 5)
        sizes = detections[:, 2:4] - detections[:, :2]  # (N, 2) width, height
        detections = detections[(sizes > 0).all(axis=1)]  # boxes cut away at the frame's edge
        predicted = np.array([track.predict() for track in self._live]).reshape(-1, 4)
        affinity = iou_matrix(predicted, detections[:, :4])  # (T, N)
        for row, track in enumerate(self._live):
            seen = track.poses.get(self._frame - 1)
            if seen is None or not np.isfinite(seen.box).all():
                continue
            moved = seen.box + np.tile(track.state[4:6], 2)  # by the filter's velocity
            weight = cfg.landmark_weight * float(seen.landmarks[:, 2].mean())
            landmark_iou = iou_matrix(moved[None], detections[:, :4])[0]
            affinity[row] = (1 - weight) * affinity[row] + weight * landmark_iou
        matches, unmatched = assign(affinity, cfg.min_iou)
        for track_index, detection_index in matches:
            track = self._live[track_index]
            track.correct(detections[detection_index], self._frame, cfg)
            track.record(self._frame, float(detections[detection_index][4]), cfg.min_hits)
        for detection_index in unmatched:
            self._start(detections[detection_index])
        self._ended += [t for t in self._live if t.misses > cfg.max_age and t.confirmed]
        self._live = [track for track in self._live if track.misses <= cfg.max_age]
        return [
            ActiveTrack(track.id, track.boxes[-1], track.scores[-1])
            for track in self._live
            if track.misses == 0 and (track.confirmed or self._frame < cfg.min_hits)
        ]

    def coast(self) -> None:
        """Take the next frame without searching it for people (the detector skipped it):
        every track's box is predicted, none is counted as missed, and the keypoint stage
        follows each from its last landmarks (:meth:`live`, :meth:`observe`)."""
        self._frame += 1
        for track in self._live:
            track.predict(searched=False)

    def lost(self) -> bool:
        """Whether a track seen in the frame before went unseen in this one (its landmarks'
        region no longer held its person): the moment to search the next frame."""
        return any(
            self._frame - 1 in track.poses and self._frame not in track.poses
            for track in self._live
        )

    def live(self) -> list[LiveTrack]:
        """The tracks of the current frame the keypoint stage should look at: those detected
        in it, and those missed whose last landmarks say where to look."""
        tracks = []
        for track in self._live:
            seen = track.poses.get(self._frame - 1)
            detected = track.last_detected == self._frame
            if detected or seen is not None:
                tracks.append(
                    LiveTrack(
                        track.id,
                        state_to_box(track.state),
                        detected,
                        None if seen is None else seen.follow,
                    )
                )
        return tracks

    def observe(self, track_id: int, pose: PoseObservation) -> None:
        """Take what the keypoint stage saw of a live track's person in the current frame.

        A detected track keeps it. A track the detector missed is followed by the box of
        ``pose``'s landmarks when the model is confident enough and those landmarks are not
        another track's person (their box overlaps another track's landmark box of this frame
        by :attr:`TrackerConfig.duplicate_iou`: a hidden person's region shows whoever hides
        them); else the pose is dropped and the track coasts. Observe detected tracks first.
        """
        cfg = self.config
        (track,) = (live for live in self._live if live.id == track_id)
        if track.last_detected == self._frame:
            track.poses[self._frame] = pose
            return
        if pose.score < cfg.follow_min_score:
            return
        if not np.isfinite(pose.box).all() or (pose.box[2:] <= pose.box[:2]).any():
            return
        others = [
            other.poses[self._frame].box
            for other in self._live
            if other is not track and self._frame in other.poses
        ]
        if others and (iou_matrix(pose.box[None], np.array(others)) >= cfg.duplicate_iou).any():
            return
        track.poses[self._frame] = pose
        track.correct(np.r_[pose.box, 0.0], self._frame, cfg)
        track.keep(self._frame, 0.0, detected=False)

    def finish(self) -> list[Track]:
        """Every confirmed track so far at least ``min_length`` frames long (filled frames
        count) in which the keypoint model saw a person (where it looked) and which the
        detector found often or surely enough (``mostly_detected``, ``min_detection_score``),
        ordered by id."""
        cfg = self.config
        tracks = []
        for kept in sorted(self._ended + self._live, key=lambda track: track.id):
            track = Track(
                id=kept.id,
                frames=np.asarray(kept.frames, dtype=np.int64),
                boxes=np.asarray(kept.boxes, dtype=np.float64),
                scores=np.asarray(kept.scores, dtype=np.float64),
                detected=np.asarray(kept.detected, dtype=bool),
            )
            if cfg.interpolate_gaps:
                track = fill_gaps(track)
            track = with_poses(track, kept.poses)
            if (
                kept.confirmed
                and len(track.frames) >= cfg.min_length
                and self._a_person(kept)
                and self._detected_surely(track)
            ):
                tracks.append(track)
        return tracks

    def _detected_surely(self, track: Track) -> bool:
        """Whether the detector found ``track`` in most of its frames it searched, or surely
        where it did (``mostly_detected``, ``min_detection_score``)."""
        if not track.detected.any():
            return False
        searched = np.isin(track.frames, self._searched, assume_unique=True).sum()
        if track.detected.sum() >= self.config.mostly_detected * searched:
            return True
        return float(track.scores[track.detected].mean()) >= self.config.min_detection_score

    def _a_person(self, track: _KalmanTrack) -> bool:
        """Whether the keypoint model saw a person in the track (true where it never looked)."""
        scores = [pose.score for pose in track.poses.values()]
        return not scores or float(np.median(scores)) >= self.config.min_person_score

    def _start(self, detection: np.ndarray) -> None:
        state = np.zeros(STATE_SIZE)
        state[:MEASUREMENT_SIZE] = box_to_measurement(detection[:4])
        track = _KalmanTrack(self._next_id, state, np.diag(INITIAL_VARIANCE))
        track.record(self._frame, float(detection[4]), self.config.min_hits)
        self._next_id += 1
        self._live.append(track)


def assign(affinity: np.ndarray, minimum: float) -> tuple[list[tuple[int, int]], list[int]]:
    """Hungarian assignment on a ``(T, N)`` affinity of tracks and detections; pairs under
    ``minimum`` are refused. Returns ``(track, detection)`` pairs and the detections left."""
    rows, cols = linear_sum_assignment(affinity, maximize=True)
    matches = [
        (int(r), int(c)) for r, c in zip(rows, cols, strict=True) if affinity[r, c] >= minimum
    ]
    matched = {c for _, c in matches}
    return matches, [c for c in range(affinity.shape[1]) if c not in matched]


def fill_gaps(track: Track) -> Track:
    """Fill the frames missing inside a track by linear interpolation of its boxes
    (``detected`` False, score 0)."""
    frames = np.arange(track.frames[0], track.frames[-1] + 1)  # (F,)
    boxes = np.stack(
        [np.interp(frames, track.frames, track.boxes[:, k]) for k in range(4)], axis=1
    )  # (F, 4)
    kept = np.isin(frames, track.frames)
    detected = np.zeros(len(frames), dtype=bool)
    detected[kept] = track.detected
    scores = np.zeros(len(frames))
    scores[kept] = track.scores
    return Track(track.id, frames, boxes, scores, detected)


def with_poses(track: Track, poses: dict[int, PoseObservation]) -> Track:
    """``track`` with the landmarks seen in its frames (NaN, visibility 0 where none were)."""
    count = len(track.frames)
    landmarks = np.full((count, NUM_LANDMARKS, 3), np.nan, dtype=np.float32)
    landmarks[..., 2] = 0.0
    world = np.full((count, NUM_LANDMARKS, 3), np.nan, dtype=np.float32)
    scores = np.zeros(count, dtype=np.float32)
    for row, frame in enumerate(track.frames.tolist()):
        if (pose := poses.get(frame)) is not None:
            landmarks[row], world[row], scores[row] = (
                pose.landmarks,
                pose.world_landmarks,
                pose.score,
            )
    return replace(track, landmarks=landmarks, world_landmarks=world, keypoint_scores=scores)


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
