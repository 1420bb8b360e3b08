"""SORT on synthetic street scenes: people walking across a 1280×720 frame, crossing, hidden
by nearer people, boxes noisy, detections missed, false alarms. Scored with motmetrics."""

from __future__ import annotations

from dataclasses import dataclass

import motmetrics as mm
import numpy as np
import pytest

from service.pipeline.boxes import box_area, iou_matrix
from service.pipeline.tracking import (
    PoseObservation,
    SortTracker,
    Track,
    TrackerConfig,
    track_people,
)

WIDTH, HEIGHT = 1280, 720
# Perspective: a person whose feet are at the horizon row is this tall, at the bottom row that
# tall; width is a fraction of height.
HORIZON_Y, HORIZON_HEIGHT, BOTTOM_HEIGHT = 200.0, 60.0, 320.0
WIDTH_PER_HEIGHT = 0.4
SPEED_PX = (3.0, 7.0)  # per frame, range of a walker's speed on screen
NOISE_PER_HEIGHT = 0.03  # standard deviation of each box coordinate, in person heights
MISS_RATE = 0.1
MIN_VISIBLE = 0.5  # a person less visible than this (covered by nearer people) is not detected
MAX_HIDDEN_FRAMES = 15  # half a second at 30 fps
GRID = (8, 16)  # points across and down a box, to measure how much of it is hidden
FALSE_ALARMS_PER_FRAME = 0.1
MATCH_IOU = 0.5  # a track box matches a true box at IoU ≥ this (MOT convention)


@dataclass(frozen=True)
class Scene:
    """True boxes per frame and what a detector made of them."""

    truth: list[tuple[np.ndarray, np.ndarray]]  # per frame: ids (K,), boxes (K, 4)
    detections: list[np.ndarray]  # per frame: (N, 5)


def person_box(foot: np.ndarray) -> np.ndarray:
    """(F, 2) foot positions → (F, 4) boxes, taller nearer the camera (lower in the image)."""
    depth = (foot[:, 1] - HORIZON_Y) / (HEIGHT - HORIZON_Y)  # 0 at the horizon, 1 at the bottom
    height = HORIZON_HEIGHT + depth * (BOTTOM_HEIGHT - HORIZON_HEIGHT)
    half_width = WIDTH_PER_HEIGHT * height / 2
    return np.stack(
        [foot[:, 0] - half_width, foot[:, 1] - height, foot[:, 0] + half_width, foot[:, 1]], 1
    )


def walk(rng: np.random.Generator, start_frame: int, curved: bool) -> tuple[np.ndarray, int]:
    """A walk from one side of the frame to the other: (F, 2) foot positions from start_frame."""
    left_to_right = rng.random() < 0.5
    x0, x1 = (80.0, WIDTH - 80.0) if left_to_right else (WIDTH - 80.0, 80.0)
    y0, y1 = rng.uniform(HORIZON_Y + 150, HEIGHT - 10, size=2)
    p0, p1 = np.array([x0, y0]), np.array([x1, y1])
    control = (p0 + p1) / 2 + (rng.uniform(-150, 150, size=2) if curved else 0.0)
    length = np.linalg.norm(p1 - p0)
    steps = int(length / rng.uniform(*SPEED_PX))
    t = np.linspace(0.0, 1.0, steps)[:, None]
    foot = (1 - t) ** 2 * p0 + 2 * t * (1 - t) * control + t**2 * p1  # quadratic Bézier
    return foot, start_frame


def visible_fraction(boxes: np.ndarray, feet_y: np.ndarray) -> np.ndarray:
    """(K,) fraction of each box not covered by nearer boxes (larger foot y), on a grid of
    GRID points per box."""
    u = (np.arange(GRID[0]) + 0.5) / GRID[0]
    v = (np.arange(GRID[1]) + 0.5) / GRID[1]
    gu, gv = (g.ravel() for g in np.meshgrid(u, v))  # (P,)
    x = boxes[:, None, 0] + gu * (boxes[:, None, 2] - boxes[:, None, 0])  # (K, P)
    y = boxes[:, None, 1] + gv * (boxes[:, None, 3] - boxes[:, None, 1])
    inside = (  # (K, K, P): point p of box k inside box j
        (x[:, None] >= boxes[None, :, 0, None])
        & (x[:, None] <= boxes[None, :, 2, None])
        & (y[:, None] >= boxes[None, :, 1, None])
        & (y[:, None] <= boxes[None, :, 3, None])
    )
    nearer = feet_y[None, :] > feet_y[:, None]  # (K, K): box j is nearer than box k
    covered = (inside & nearer[..., None]).any(axis=1)  # (K, P)
    return 1.0 - covered.mean(axis=1)


def make_scene(
    seed: int,
    walks: list[tuple[np.ndarray, int]],
    num_frames: int,
    miss_rate: float = MISS_RATE,
    false_alarms: float = FALSE_ALARMS_PER_FRAME,
) -> Scene:
    """Render walks (foot positions from a start frame) into truth and noisy detections."""
    rng = np.random.default_rng(seed)
    truth, detections = [], []
    for frame in range(num_frames):
        ids, feet = walkers_at(walks, frame)
        boxes = person_box(feet)
        truth.append((ids, boxes))
        seen = visible_fraction(boxes, feet[:, 1]) >= MIN_VISIBLE
        seen &= rng.random(len(boxes)) >= miss_rate
        heights = (boxes[:, 3] - boxes[:, 1])[:, None]
        noisy = boxes + rng.normal(size=boxes.shape) * NOISE_PER_HEIGHT * heights
        found = [np.c_[noisy[seen], rng.uniform(0.5, 1.0, seen.sum())]]
        for _ in range(rng.poisson(false_alarms)):
            x, y = rng.uniform(0, WIDTH - 100), rng.uniform(0, HEIGHT - 200)
            height = rng.uniform(60, 200)
            found.append(np.array([[x, y, x + height * 0.4, y + height, rng.uniform(0.3, 0.6)]]))
        detections.append(np.concatenate(found).reshape(-1, 5))
    return Scene(truth, detections)


def walkers_at(walks: list[tuple[np.ndarray, int]], frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Who is walking in a frame: (K,) indices into walks and (K, 2) foot positions."""
    ids = [k for k, (foot, start) in enumerate(walks) if start <= frame < start + len(foot)]
    feet = [walks[k][0][frame - walks[k][1]] for k in ids]
    return np.array(ids, dtype=np.int64), np.array(feet).reshape(-1, 2)


def longest_hidden(walks: list[tuple[np.ndarray, int]], num_frames: int) -> int:
    """The longest run of frames in which one walker is less visible than MIN_VISIBLE."""
    runs = np.zeros(len(walks), dtype=int)  # frames each walker has been hidden so far
    longest = 0
    for frame in range(num_frames):
        ids, feet = walkers_at(walks, frame)
        hidden = visible_fraction(person_box(feet), feet[:, 1]) < MIN_VISIBLE
        runs = np.where(np.isin(np.arange(len(walks)), ids[hidden]), runs + 1, 0)
        longest = max(longest, int(runs.max(initial=0)))
    return longest


def random_scene(seed: int, num_people: int = 8, num_frames: int = 400) -> Scene:
    """num_people walkers entering during the first half, straight or curved paths. A walker
    who would stay hidden behind another for more than MAX_HIDDEN_FRAMES is drawn again: no
    tracker without appearance bridges that, and this is a test of SORT through crossings."""
    rng = np.random.default_rng(seed)
    walks: list[tuple[np.ndarray, int]] = []
    while len(walks) < num_people:
        start = int(rng.integers(0, num_frames // 2))
        candidate = walk(rng, start, curved=len(walks) % 2 == 1)
        if longest_hidden([*walks, candidate], num_frames) <= MAX_HIDDEN_FRAMES:
            walks.append(candidate)
    return make_scene(seed, walks, num_frames)


def boxes_in_frame(tracks: list[Track], frame: int) -> tuple[list[int], np.ndarray]:
    """The tracks' ids and (K, 4) boxes in one frame."""
    ids, boxes = [], []
    for track in tracks:
        hit = np.flatnonzero(track.frames == frame)
        if hit.size:
            ids.append(track.id)
            boxes.append(track.boxes[hit[0]])
    return ids, np.array(boxes).reshape(-1, 4)


def mot_scores(scene: Scene, tracks: list[Track]) -> dict[str, float]:
    """MOTA, IDF1 and counts of the tracks against the scene's truth (IoU ≥ 0.5 matches)."""
    accumulator = mm.MOTAccumulator(auto_id=True)
    for frame, (true_ids, true_boxes) in enumerate(scene.truth):
        track_ids, track_boxes = boxes_in_frame(tracks, frame)
        # motmetrics' own iou_matrix uses np.asfarray, gone in NumPy 2: distances made here.
        distance = 1.0 - iou_matrix(true_boxes, track_boxes)
        distance[distance > 1.0 - MATCH_IOU] = np.nan
        accumulator.update(true_ids.tolist(), track_ids, distance)
    names = ["mota", "idf1", "num_switches", "num_misses", "num_false_positives"]
    summary = mm.metrics.create().compute(accumulator, metrics=names)
    return {name: float(summary[name].iloc[0]) for name in names}


def crossing_pairs(scene: Scene) -> set[tuple[int, int]]:
    """Pairs of people whose true boxes overlap by IoU > 0.3 in some frame."""
    pairs = set()
    for ids, boxes in scene.truth:
        overlap = np.triu(iou_matrix(boxes, boxes), k=1)
        pairs |= {
            (int(ids[a]), int(ids[b])) for a, b in zip(*np.nonzero(overlap > 0.3), strict=True)
        }
    return pairs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tracks_walkers_through_noise_misses_and_crossings(seed: int) -> None:
    scene = random_scene(seed)
    assert len(crossing_pairs(scene)) >= 5
    tracks = track_people(scene.detections, TrackerConfig())
    scores = mot_scores(scene, tracks)
    assert scores["mota"] >= 0.9, scores
    assert scores["idf1"] >= 0.9, scores


def crossing_walks(num_frames: int) -> list[tuple[np.ndarray, int]]:
    """Two people walking towards each other, one a little nearer, meeting mid-frame."""
    x = np.linspace(200.0, WIDTH - 200.0, num_frames)
    left = np.stack([x, np.full(num_frames, 520.0)], axis=1)
    right = np.stack([x[::-1], np.full(num_frames, 500.0)], axis=1)
    return [(left, 0), (right, 0)]


def test_two_people_crossing_keep_their_ids() -> None:
    num_frames = 120
    scene = make_scene(3, crossing_walks(num_frames), num_frames, miss_rate=0.0, false_alarms=0)
    hidden = sum(len(t[0]) - len(d) for t, d in zip(scene.truth, scene.detections, strict=True))
    assert hidden > 0, "the nearer walker should hide the other for a few frames"
    tracks = track_people(scene.detections, TrackerConfig())
    assert len(tracks) == 2
    apart = [iou_matrix(boxes[:1], boxes[1:])[0, 0] < MATCH_IOU for _, boxes in scene.truth]
    for track in tracks:
        assert track.frames.tolist() == list(range(num_frames))
        # One person throughout: wherever the two can be told apart, the track's box is on the
        # same one.
        people = {
            int(np.argmax(iou_matrix(track.boxes[k : k + 1], scene.truth[k][1])[0]))
            for k in range(num_frames)
            if apart[k]
        }
        assert len(people) == 1
    assert not (tracks[0].detected.all() and tracks[1].detected.all())


def test_short_tracks_are_dropped() -> None:
    rng = np.random.default_rng(4)
    long_walk, _ = walk(rng, 0, curved=False)
    short_walk = long_walk[:20] + np.array([0.0, -150.0])  # 20 frames, well apart
    scene = make_scene(
        4, [(long_walk, 0), (short_walk, 10)], len(long_walk), miss_rate=0.0, false_alarms=0
    )
    kept = track_people(scene.detections, TrackerConfig(min_length=25))
    assert [len(track.frames) for track in kept] == [len(long_walk)]
    both = track_people(scene.detections, TrackerConfig(min_length=10))
    assert sorted(len(track.frames) for track in both) == [20, len(long_walk)]


def test_update_reports_confirmed_tracks_only() -> None:
    box = np.array([[100.0, 100.0, 140.0, 200.0, 0.9]])
    tracker = SortTracker(TrackerConfig(min_hits=3))
    for _ in range(4):  # SORT reports every track during the first min_hits frames
        tracker.update(np.zeros((0, 5)))
    reported = [len(tracker.update(box + np.array([k, 0, k, 0, 0]))) for k in range(1, 5)]
    assert reported == [0, 0, 1, 1]
    (active,) = tracker.update(box + np.array([5, 0, 5, 0, 0]))
    assert active.id == 1
    assert box_area(active.box[None])[0] == pytest.approx(40 * 100, rel=0.05)


def test_boxes_without_area_are_ignored() -> None:
    tracker = SortTracker(TrackerConfig(min_hits=1))
    flat = np.array([[100.0, 100.0, 100.0, 200.0, 0.9], [0.0, 50.0, 30.0, 50.0, 0.8]])
    assert tracker.update(flat) == []
    assert tracker.finish() == []


def pose_at(box: np.ndarray, score: float = 0.9) -> PoseObservation:
    """A keypoint observation whose landmarks fill ``box`` (x1, y1, x2, y2)."""
    landmarks = np.zeros((33, 3), dtype=np.float32)
    landmarks[:, 0] = np.linspace(box[0], box[2], 33)
    landmarks[:, 1] = np.linspace(box[1], box[3], 33)
    landmarks[:, 2] = 0.9
    side = float(box[3] - box[1])
    follow = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, side, 0.0])
    return PoseObservation(landmarks, landmarks.copy(), score, np.asarray(box, float), follow)


def walk_with_poses(tracker: SortTracker, frames: range, step: float) -> np.ndarray:
    """Detect a walker moving ``step`` pixels a frame, telling the tracker its landmarks."""
    box = np.array([100.0, 100.0, 140.0, 200.0])
    for k in frames:
        moved = box + np.array([k * step, 0, k * step, 0])
        tracker.update(np.r_[moved, 0.9][None])
        for live in tracker.live():
            tracker.observe(live.id, pose_at(moved))
    return box


def test_a_missed_person_is_followed_by_their_landmarks() -> None:
    tracker = SortTracker(TrackerConfig(min_length=1, max_age=10))
    box = walk_with_poses(tracker, range(5), 4.0)
    for k in range(5, 9):  # the detector misses them; the keypoint model still sees them
        tracker.update(np.zeros((0, 5)))
        (live,) = tracker.live()
        assert not live.detected
        assert live.follow is not None
        tracker.observe(live.id, pose_at(box + np.array([k * 4.0, 0, k * 4.0, 0])))
    (track,) = tracker.finish()
    assert track.frames.tolist() == list(range(9))
    assert track.detected.tolist() == [True] * 5 + [False] * 4
    assert track.boxes[-1, 0] == pytest.approx(100 + 8 * 4.0, abs=3.0)  # followed, not coasted
    assert track.landmarks is not None
    assert track.keypoint_scores is not None
    assert np.isfinite(track.landmarks[:, :, :2]).all()
    assert (track.keypoint_scores > 0.5).all()


def test_an_unsure_pose_is_not_followed() -> None:
    tracker = SortTracker(TrackerConfig(min_length=1, max_age=10))
    box = walk_with_poses(tracker, range(5), 4.0)
    tracker.update(np.zeros((0, 5)))
    (live,) = tracker.live()
    tracker.observe(live.id, pose_at(box + np.array([20.0, 0, 20.0, 0]), score=0.2))
    tracker.update(np.zeros((0, 5)))
    assert tracker.live() == []  # nothing left to follow: the track coasts
    (track,) = tracker.finish()
    assert track.frames.tolist() == list(range(5))


def test_someone_elses_landmarks_are_not_followed() -> None:
    """The model, looking for a missed person, finds the newcomer detected beside them."""
    tracker = SortTracker(TrackerConfig(min_length=1, max_age=10))
    box = walk_with_poses(tracker, range(5), 4.0)
    newcomer = box + np.array([60.0, 0, 60.0, 0])
    tracker.update(np.r_[newcomer, 0.9][None])
    live = tracker.live()
    (followed,) = (track for track in live if not track.detected)
    (detected,) = (track for track in live if track.detected)
    tracker.observe(detected.id, pose_at(newcomer))
    tracker.observe(followed.id, pose_at(newcomer + 2.0))
    first = next(track for track in tracker.finish() if track.id == followed.id)
    assert first.frames.tolist() == list(range(5))  # frame 5 was not kept as followed


@pytest.mark.parametrize(("weight", "same_id"), [(1.0, True), (0.0, False)])
def test_landmarks_decide_where_boxes_overlap_too_little(weight: float, same_id: bool) -> None:
    """A tight detection inside a track's loose boxes overlaps its prediction too little
    (IoU 0.22 < 0.3) but lies on its landmarks: with their weight, it stays that track's."""
    tracker = SortTracker(TrackerConfig(min_length=1, min_iou=0.3, landmark_weight=weight))
    loose, tight = np.array([60.0, 100.0, 240.0, 200.0]), np.array([130.0, 100.0, 170.0, 200.0])
    for _ in range(3):
        tracker.update(np.r_[loose, 0.9][None])
        (live,) = tracker.live()
        tracker.observe(live.id, pose_at(tight))
    tracker.update(np.r_[tight, 0.9][None])
    detected = [live for live in tracker.live() if live.detected]
    assert [live.id == 1 for live in detected] == [same_id]


def test_a_track_the_keypoint_model_sees_nobody_in_is_dropped() -> None:
    """A post the detector takes for a person: the keypoint model, looking, sees nobody."""
    tracker = SortTracker(TrackerConfig(min_length=1))
    post, walker = np.array([50.0, 50.0, 60.0, 150.0]), np.array([200.0, 50.0, 240.0, 150.0])
    for _ in range(5):
        tracker.update(np.array([[*post, 0.3], [*walker, 0.8]]))
        for live in tracker.live():
            seen = post if live.box[0] < 100 else walker
            tracker.observe(live.id, pose_at(seen, score=0.1 if seen is post else 0.95))
    (kept,) = tracker.finish()
    assert kept.boxes[0, 0] == pytest.approx(200.0, abs=1.0)


@pytest.mark.parametrize(
    ("sign_score", "sign_frames", "kept_tracks"),
    [(0.25, 4, 1), (0.4, 4, 2), (0.25, 8, 2)],
)
def test_a_track_the_detector_was_rarely_and_never_sure_of_is_dropped(
    sign_score: float, sign_frames: int, kept_tracks: int
) -> None:
    """A sign found now and then by the detector, unsurely, and followed by its landmarks in
    between, as on vtest.avi: dropped when found in under half its frames with a mean score
    under the bound; kept when surer, or found more often (a small person in a 4K frame)."""
    config = TrackerConfig(min_length=1, max_age=10)
    assert 0.25 < config.min_detection_score < 0.4  # the cases straddle the bounds
    assert 4 / 12 < config.mostly_detected < 8 / 12
    tracker = SortTracker(config)
    sign, walker = np.array([50.0, 50.0, 60.0, 150.0]), np.array([200.0, 50.0, 240.0, 150.0])
    for frame in range(12):
        found = [[*walker, 0.8]] + ([[*sign, sign_score]] if frame < sign_frames else [])
        tracker.update(np.array(found))
        for live in tracker.live():
            tracker.observe(live.id, pose_at(sign if live.box[0] < 100 else walker))
    kept = tracker.finish()
    assert len(kept) == kept_tracks
    assert any(track.boxes[0, 0] == pytest.approx(200.0, abs=1.0) for track in kept)


def test_frames_the_detector_skipped_are_followed_and_not_missed() -> None:
    """The detector searches every third frame: a walker is confirmed by three searched frames
    in a row, followed by their landmarks in between, and never counted missed."""
    tracker = SortTracker(TrackerConfig(min_length=1, max_age=0))
    box = np.array([100.0, 100.0, 140.0, 200.0])
    for k in range(12):
        moved = box + np.array([k * 4.0, 0, k * 4.0, 0])
        if k % 3 == 0:
            tracker.update(np.r_[moved, 0.9][None])
        else:
            tracker.coast()
        (live,) = tracker.live()  # max_age 0: a counted miss would have ended the track
        assert live.detected == (k % 3 == 0)
        tracker.observe(live.id, pose_at(moved))
        assert not tracker.lost()
    (track,) = tracker.finish()
    assert track.frames.tolist() == list(range(12))
    assert track.detected.tolist() == [k % 3 == 0 for k in range(12)]
    assert track.boxes[-1, 0] == pytest.approx(100 + 11 * 4.0, abs=3.0)


def test_a_person_lost_between_searches_is_reported() -> None:
    tracker = SortTracker(TrackerConfig(min_length=1))
    box = walk_with_poses(tracker, range(5), 4.0)
    tracker.coast()
    (live,) = tracker.live()
    tracker.observe(live.id, pose_at(box + 20.0, score=0.2))  # not sure any more
    assert tracker.lost()
    tracker.coast()
    assert not tracker.lost()  # said once: the next frame is the one to search


def test_how_often_a_track_was_found_counts_the_searched_frames_only() -> None:
    """A walker found in every frame the detector searched (one in three) is found "mostly",
    whatever their detections' scores; a sign found in three of its eight is not."""
    tracker = SortTracker(TrackerConfig(min_length=1, max_age=10))
    sign, walker = np.array([50.0, 50.0, 60.0, 150.0]), np.array([200.0, 50.0, 240.0, 150.0])
    for frame in range(24):
        if frame % 3 == 0:
            found = [[*walker, 0.2]] + ([[*sign, 0.2]] if frame < 9 else [])
            tracker.update(np.array(found))
        else:
            tracker.coast()
        for live in tracker.live():
            tracker.observe(live.id, pose_at(sign if live.box[0] < 100 else walker))
    (kept,) = tracker.finish()
    assert kept.boxes[0, 0] == pytest.approx(200.0, abs=1.0)
