"""Find and follow every person of a video: detect → track → keypoints, frame by frame.

Per frame: the detector's boxes go to the tracker (:class:`~service.pipeline.tracking.SortTracker`);
then, in one batched call of the keypoint model (:mod:`service.pipeline.keypoints`), every
track detected in the frame is looked at from its box (two passes: box, then the landmarks'
own region), and every track the detector missed from the region its last landmarks give (one
pass, as MediaPipe tracks). What the model sees goes back to the tracker, which uses it to
assign the next frame's boxes and to follow the people the detector missed.

The detector may search only every ``detect_every``-th frame: in between, the keypoint model
follows everyone from their last landmarks, one pass a person, as MediaPipe Pose runs its
detector only when it lost its person. A frame is searched whatever its turn after one in
which someone was lost, and when something moves where nobody is followed
(:mod:`service.pipeline.motion`): a person walking in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from service.pipeline.boxes import iou_matrix
from service.pipeline.detect import PersonDetector
from service.pipeline.keypoints import KeypointModel, PoseEstimates, Rois, box_rois, landmark_boxes
from service.pipeline.motion import MotionConfig, NewMotion
from service.pipeline.tracking import LiveTrack, PoseObservation, SortTracker, Track, TrackerConfig
from service.pipeline.video import Frame

# Called as (frames done, frames in all).
FrameProgress = Callable[[int, int], None]


@dataclass
class FollowCosts:
    """Where :func:`follow_people`'s time went (seconds), and how much the model saw."""

    frames: int = 0  # decoded
    searched: int = 0  # frames the detector ran on
    moved: int = 0  # of them, searched out of turn because something new moved
    decode: float = 0.0
    detect: float = 0.0
    track: float = 0.0
    keypoints: float = 0.0
    person_frames: int = 0  # crops the keypoint model looked at (one a person and frame)
    passes: int = 0  # crops it ran, second passes included

    def as_seconds(self) -> dict[str, float]:
        """Stage → seconds, as :class:`~service.pipeline.run.PipelineRun` reports them."""
        return {
            "decode": self.decode,
            "detect": self.detect,
            "track": self.track,
            "keypoints": self.keypoints,
        }


class NoPeopleError(ValueError):
    """The video holds no person tracked for long enough to estimate."""


def follow_people(
    frames: Iterable[Frame],
    detector: PersonDetector,
    keypoints: KeypointModel,
    config: TrackerConfig,
    *,
    batch_size: int,
    frame_count: int,
    detect_every: int = 1,
    motion: MotionConfig | None = None,
    progress: FrameProgress | None = None,
    nobody_stop_s: float | None = None,
) -> tuple[list[Track], FollowCosts]:
    """Every person of a video, with their landmarks.

    Args:
        frames: the decoded frames, in order.
        detector: finds people in the frames it searches.
        keypoints: the keypoint model.
        config: the tracker's parameters.
        batch_size: frames decoded at a time; the detector searches those of them it should
            in one call.
        frame_count: the video's frames as its header says (for progress only).
        detect_every: search every this many frames (and the frame after a person was lost).
        motion: with ``detect_every`` over 1, also search a frame where something moves
            outside every followed person's region; None: do not look.
        progress: called after each batch.
        nobody_stop_s: give up once the frames up to this time (seconds) held nobody.

    Returns:
        The tracks (:meth:`SortTracker.finish`) and what finding them cost.

    Raises:
        NoPeopleError: nobody was seen in the first ``nobody_stop_s`` seconds.
    """
    tracker = SortTracker(config)
    costs = FollowCosts()
    refused = np.zeros((0, 4))  # the candidates the keypoint model saw nobody in, last frame
    anyone = False  # whether the keypoint model confirmed a person yet
    lost = False  # whether someone seen in the frame before went unseen in the last one
    moving = NewMotion(motion) if motion is not None and detect_every > 1 else None
    stream = _batches(iter(frames), batch_size)
    while True:
        clock = time.perf_counter()
        batch = next(stream, None)
        if batch is None:
            break
        costs.decode += _since(clock)
        clock = time.perf_counter()
        turns = [frame for frame in batch if frame.index % detect_every == 0]
        images = [frame.image for frame in turns]
        found = dict(zip([f.index for f in turns], detector.detect(images), strict=True))
        costs.detect += _since(clock)
        for frame in batch:
            clock = time.perf_counter()
            detections = found.get(frame.index)
            moved = moving is not None and moving.moves_outside(frame.image, _boxes(tracker))
            if detections is None and (lost or moved):
                detections = detector.detect([frame.image])[0]
                costs.moved += int(moved and not lost)
            costs.detect += _since(clock)
            if detections is None:
                clock = time.perf_counter()
                tracker.coast()
                costs.track += _since(clock)
            else:
                costs.searched += 1
                clock = time.perf_counter()
                sure = detections[:, 4] >= detector.sure_score
                detections, refused, looked = confirm_people(
                    frame.image, detections, sure, keypoints, refused
                )
                costs.keypoints += _since(clock)
                costs.passes += looked
                anyone = anyone or len(detections) > 0
                clock = time.perf_counter()
                tracker.update(detections)
                costs.track += _since(clock)
            clock = time.perf_counter()
            seen, passes = look_at_people(frame.image, tracker, keypoints)
            costs.keypoints += _since(clock)
            costs.person_frames += seen
            costs.passes += passes
            lost = tracker.lost()
        costs.frames += len(batch)
        if progress is not None:
            progress(costs.frames, max(frame_count, costs.frames))
        if not anyone and nobody_stop_s is not None and batch[-1].time >= nobody_stop_s:
            raise NoPeopleError(
                f"no person was found in the first {nobody_stop_s:g} s of the video: is "
                "anyone in view?"
            )
    clock = time.perf_counter()
    tracks = tracker.finish()
    costs.track += _since(clock)
    return tracks, costs


def confirm_people(
    image: np.ndarray,
    detections: np.ndarray,
    sure: np.ndarray,
    model: KeypointModel,
    refused: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The sure detections of a frame, and those candidates in which the keypoint model sees a
    person (one pass, all in one call). Not looked at: candidates overlapping a sure one (the
    same person), and those where the model saw nobody in the frame before (a box that stayed
    put: a post, a cone).

    Args:
        image: the frame.
        detections: ``(N, 5)`` the detector's boxes and scores.
        sure: ``(N,)`` which are sure.
        model: the keypoint model.
        refused: ``(R, 4)`` the candidates refused in the frame before.

    Returns:
        The ``(M, 5)`` detections kept, the ``(R', 4)`` candidates refused in this frame (those
        skipped as unchanged included), and the crops the model ran.
    """
    cfg = model.config
    candidates = detections[~sure]
    overlap = iou_matrix(candidates[:, :4], detections[sure, :4]).max(axis=1, initial=0.0)
    candidates = candidates[overlap < cfg.candidate_overlap]
    unchanged = iou_matrix(candidates[:, :4], refused).max(axis=1, initial=0.0) >= cfg.same_box
    look = candidates[~unchanged]
    if len(look) == 0:
        return detections[sure], candidates[:, :4], 0
    seen = model.run(image, box_rois(look[:, :4], cfg.box_scale))
    person = seen.scores >= cfg.confirm_score
    refused_now = np.concatenate([candidates[unchanged, :4], look[~person, :4]])
    return np.concatenate([detections[sure], look[person]]), refused_now, len(look)


def look_at_people(
    image: np.ndarray, tracker: SortTracker, model: KeypointModel
) -> tuple[int, int]:
    """Run the keypoint model on the current frame's live tracks and tell the tracker.

    Returns:
        The people looked at, and the crops the model ran (second passes included).
    """
    live = tracker.live()
    if not live:
        return 0, 0
    detected = _detected(live)
    estimates = model.estimate(image, track_rois(live, model.config.box_scale), detected)
    boxes = landmark_boxes(
        estimates.landmarks, model.config.visible, model.config.landmark_box_margin
    )
    for index in np.argsort(~detected, kind="stable"):  # detected people first
        tracker.observe(live[index].id, _observation(estimates, boxes, int(index)))
    return len(live), len(live) + int(detected.sum())


def track_rois(live: list[LiveTrack], box_scale: float) -> Rois:
    """Where to look for each live track: around its box when detected in this frame, else
    where its last landmarks point."""
    detected = _detected(live)
    boxes = np.array([track.box for track in live]).reshape(-1, 4)
    from_boxes = box_rois(boxes, box_scale)
    follow = np.array(
        [track.follow if track.follow is not None else np.zeros(4) for track in live]
    ).reshape(-1, 4)
    return Rois(
        np.where(detected[:, None], from_boxes.centres, follow[:, :2]),
        np.where(detected, from_boxes.sizes, follow[:, 2]),
        np.where(detected, from_boxes.rotations, follow[:, 3]),
    )


def _boxes(tracker: SortTracker) -> np.ndarray:
    """``(N, 4)`` where the people followed in the last frame were."""
    return np.array([track.box for track in tracker.live()]).reshape(-1, 4)


def _detected(live: list[LiveTrack]) -> np.ndarray:
    return np.array([track.detected for track in live], dtype=bool)


def _observation(estimates: PoseEstimates, boxes: np.ndarray, index: int) -> PoseObservation:
    rois = estimates.next_rois
    return PoseObservation(
        landmarks=estimates.landmarks[index],
        world_landmarks=estimates.world_landmarks[index],
        score=float(estimates.scores[index]),
        box=boxes[index],
        follow=np.r_[rois.centres[index], rois.sizes[index], rois.rotations[index]],
    )


def _batches(frames: Iterator[Frame], size: int) -> Iterator[list[Frame]]:
    """Consecutive lists of ``size`` frames (the last may be shorter)."""
    batch: list[Frame] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _since(clock: float) -> float:
    return time.perf_counter() - clock
