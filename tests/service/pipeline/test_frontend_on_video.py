"""The front-end (NanoDet, then BlazePose per person) through the whole pipeline on videos a
user may upload: small and huge frames, grey and 4:2:2 video, a person cut by the frame's
edge, a crowd of 50. Real walkers from the committed clip, pasted onto plain frames; the
service's tiny bundle (its meshes are untrained, its front-end is the real one), and a tiny
keypoint-family bundle, which reads the landmarks the front-end found."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from service.bundle import Bundle, load_bundle
from service.pipeline import run as run_module
from service.pipeline.keypoints import KeypointConfig
from service.pipeline.landmarks import VISIBLE
from service.pipeline.motion import MotionConfig
from service.pipeline.people import confirm_people
from service.pipeline.run import (
    NoPeopleError,
    PipelineConfig,
    make_keypoint_model,
    pipeline_config,
    process_video,
)
from service.pipeline.video import Frame, read_frames
from tests.support.bundles import landmark_bundle
from tests.support.walkers import PATCH_HEIGHT, PATCH_WIDTH, walker_patches

FRAMES = 5  # enough for the tracker to confirm a person (3 detections in a row)
PLAIN = 128  # grey of the background
SINGLE_WALKERS = slice(1, None)  # the walker patches that hold one person (the first holds two)


@pytest.fixture(scope="module")
def bundle(service_bundle_dir: Path) -> Bundle:
    return load_bundle(service_bundle_dir)


@pytest.fixture(scope="module")
def keypoint_bundle(one_torch_thread: None, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """A tiny SPS-Net on landmarks (tests/support/bundles.py): no encoder."""
    return load_bundle(landmark_bundle(tmp_path_factory.mktemp("keypoint_bundle")))


def write_scene(
    path: Path,
    size: tuple[int, int],
    places: list[tuple[int, int]],
    *,
    scale: float = 1.0,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    frames: int = FRAMES,
    appear: list[int] | None = None,
) -> Path:
    """``FRAMES`` frames of ``size`` (width, height): walker patches (scaled by ``scale``) with
    their top-left corners at ``places`` (cut where they leave the frame), 2 pixels to the
    right each frame, each from its frame in ``appear`` on (default: all from the first)."""
    appear = appear or [0] * len(places)
    patches = [cv2.resize(p, None, fx=scale, fy=scale) for p in walker_patches()[SINGLE_WALKERS]]
    width, height = size
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for index in range(frames):
            image = np.full((height, width, 3), PLAIN, dtype=np.uint8)
            for number, (left, top) in enumerate(places):
                if index < appear[number]:
                    continue
                patch = patches[number % len(patches)]
                x0, y0 = left + 2 * index, top
                x1, y1 = min(x0 + patch.shape[1], width), min(y0 + patch.shape[0], height)
                sx, sy = max(0, -x0), max(0, -y0)
                image[max(y0, 0) : y1, max(x0, 0) : x1] = patch[sy : y1 - y0, sx : x1 - x0]
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def people_per_frame(video: Path, bundle: Bundle) -> tuple[list[int], list[np.ndarray]]:
    """Tracked people in each frame, and every track's landmarks."""
    run = process_video(video, bundle, pipeline_config(min_track_length=FRAMES))
    counts = [
        sum(int(frame in track.frame_ids) for track in run.result.tracks) for frame in range(FRAMES)
    ]
    return counts, [track.landmarks for track in run.result.tracks]


@pytest.mark.parametrize(
    ("codec", "pix_fmt", "suffix"),
    [("libx264", "yuv420p", "mp4"), ("libx264", "yuv422p", "mp4"), ("ffv1", "gray", "mkv")],
)
def test_colour_and_grey_video(
    tmp_path: Path, bundle: Bundle, codec: str, pix_fmt: str, suffix: str
) -> None:
    places = [(20, 20), (140, 20), (260, 20)]
    video = write_scene(
        tmp_path / f"scene.{suffix}", (384, 200), places, codec=codec, pix_fmt=pix_fmt
    )
    counts, landmarks = people_per_frame(video, bundle)
    assert counts == [3] * FRAMES
    for person in landmarks:
        assert (person[..., 2] >= VISIBLE).mean() > 0.5  # most landmarks seen, grey or not


def test_a_4k_frame(tmp_path: Path, bundle: Bundle) -> None:
    """People as tall in a 4K frame as in the clip's: small, yet the resized frame holds them."""
    places = [(600, 500), (1800, 900), (3000, 1500)]
    video = write_scene(tmp_path / "4k.mp4", (3840, 2160), places, scale=3.0)
    counts, landmarks = people_per_frame(video, bundle)
    assert counts == [3] * FRAMES
    by_x = sorted(landmarks, key=lambda person: float(np.nanmean(person[..., 0])))
    for person, (left, top) in zip(by_x, places, strict=True):
        seen = person[..., 2] >= VISIBLE
        centre = (left + 1.5 * PATCH_WIDTH, top + 1.5 * PATCH_HEIGHT)  # the patch's, scaled ×3
        assert np.median(person[..., 0][seen]) == pytest.approx(centre[0], abs=150)
        assert np.median(person[..., 1][seen]) == pytest.approx(centre[1], abs=250)


def test_a_person_cut_by_the_frame_edge(tmp_path: Path, bundle: Bundle) -> None:
    video = write_scene(tmp_path / "edge.mp4", (320, 200), [(-30, 20), (150, 20)])
    counts, landmarks = people_per_frame(video, bundle)
    assert counts == [2] * FRAMES
    for person in landmarks:
        assert np.isfinite(person[..., :2]).all()  # points off the frame are still placed


def test_a_crowd_of_fifty(tmp_path: Path, bundle: Bundle) -> None:
    places = [(10 + 90 * (k % 10), 10 + 160 * (k // 10)) for k in range(50)]
    video = write_scene(tmp_path / "crowd.mp4", (912, 816), places)
    counts, _ = people_per_frame(video, bundle)
    assert min(counts) >= 45  # all but a few of the fifty, each frame


def test_tiny_frames_hold_nobody(tmp_path: Path, bundle: Bundle) -> None:
    video = write_scene(tmp_path / "tiny.mp4", (32, 24), [(0, 0)])
    with pytest.raises(NoPeopleError, match="no person was found"):
        process_video(video, bundle, pipeline_config(min_track_length=FRAMES))


def test_a_video_empty_from_its_start_is_given_up_early(tmp_path: Path, bundle: Bundle) -> None:
    """A long video of nobody costs no more than its first ``nobody_stop_s`` seconds."""
    video = write_scene(tmp_path / "empty.mp4", (160, 120), [], frames=40)  # 4 s at 10 fps
    decoded: list[int] = []
    config = pipeline_config(min_track_length=FRAMES, nobody_stop_s=1.0)
    with pytest.raises(NoPeopleError, match="in the first 1 s"):
        process_video(video, bundle, config, progress=lambda _, done, __: decoded.append(done))
    assert 10 <= decoded[-1] < 40


def test_people_from_the_first_frame_are_not_given_up(tmp_path: Path, bundle: Bundle) -> None:
    video = write_scene(tmp_path / "walkers.mp4", (384, 200), [(20, 20), (140, 20)])
    config = pipeline_config(min_track_length=FRAMES, nobody_stop_s=0.1)
    assert len(process_video(video, bundle, config).result.tracks) == 2


def test_a_candidate_refused_in_the_frame_before_is_not_looked_at_again(
    tmp_path: Path, bundle: Bundle
) -> None:
    video = write_scene(tmp_path / "post.mp4", (320, 200), [(150, 20)])
    image = next(iter(read_frames(video))).image
    model = make_keypoint_model(KeypointConfig(), bundle, bundle.sessions())
    post = np.array([[20.0, 40.0, 40.0, 160.0, 0.3]])  # a candidate on the plain background
    unsure = np.array([False])
    kept, refused, looked = confirm_people(image, post, unsure, model, np.zeros((0, 4)))
    assert (len(kept), looked) == (0, 1)
    np.testing.assert_array_equal(refused, post[:, :4])
    moved = post + np.array([1.0, 0.0, 1.0, 0.0, 0.0])  # it stayed put
    kept, refused, looked = confirm_people(image, moved, unsure, model, refused)
    assert (len(kept), looked) == (0, 0)
    np.testing.assert_array_equal(refused, moved[:, :4])


def test_a_keypoint_bundle_decodes_the_video_once(
    tmp_path: Path, keypoint_bundle: Bundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The landmarks of the first pass are the network's input: no second decode, results for
    every tracked frame, timed by the frames' own times."""
    video = write_scene(tmp_path / "scene.mp4", (384, 200), [(20, 20), (200, 20)])
    decodes: list[Path] = []

    def counted(path: str | Path) -> Iterator[Frame]:
        decodes.append(Path(path))
        return read_frames(path)

    monkeypatch.setattr(run_module, "read_frames", counted)
    config = pipeline_config(min_track_length=FRAMES, smooth=True)
    run = process_video(video, keypoint_bundle, config)
    assert decodes == [video]
    assert len(run.result.tracks) == 2
    for track in run.result.tracks:
        assert list(track.frame_ids) == list(range(FRAMES))
        for values in (track.rotmat, track.cam, track.translation, track.joints2d):
            assert np.isfinite(values).all()
    assert "regress" in run.seconds


def test_searching_every_third_frame_follows_everyone_in_between(
    tmp_path: Path, bundle: Bundle
) -> None:
    """With the detector on every third frame, the keypoint model follows the walkers in
    between: the same people in every frame, landmarks where the every-frame run puts them,
    at fewer detector frames and fewer crops."""
    frames = 12
    places = [(20, 20), (140, 20), (260, 20)]
    video = write_scene(tmp_path / "scene.mp4", (384, 200), places, frames=frames)
    runs = {every: process_video(video, bundle, searching_every(every, frames)) for every in (1, 3)}
    for run in runs.values():
        assert [len(track.frame_ids) for track in run.result.tracks] == [frames] * 3
    assert (runs[1].people.searched, runs[3].people.searched) == (frames, frames // 3)
    assert runs[3].people.passes < runs[1].people.passes
    for every_frame, skipping in zip(runs[1].result.tracks, runs[3].result.tracks, strict=True):
        seen = (every_frame.landmarks[..., 2] >= VISIBLE) & (skipping.landmarks[..., 2] >= VISIBLE)
        moved = np.linalg.norm(
            every_frame.landmarks[..., :2] - skipping.landmarks[..., :2], axis=-1
        )
        assert np.median(moved[seen]) < 0.05 * PATCH_HEIGHT


def test_a_walker_who_appears_between_searches_is_searched_for_at_once(
    tmp_path: Path, bundle: Bundle
) -> None:
    """Searching every fourth frame, a walker who appears in frame 2 is found there: the
    movement where nobody is followed calls for a search; without that cue, at frame 4."""
    frames, every, arrives = 16, 4, 2
    video = write_scene(
        tmp_path / "scene.mp4", (384, 200), [(20, 20), (200, 20)], frames=frames,
        appear=[0, arrives],
    )  # fmt: skip
    starts = {}
    # The scene's walkers are rectangles cut from another video: their edges move with them,
    # beyond the people's boxes, which the default cue (tuned on vtest.avi) sees as movement.
    # A coarser cue sees only the walker who appears.
    for motion in (MotionConfig(width=160, threshold=25, min_area=0.002), None):
        run = process_video(video, bundle, searching_every(every, frames // 2, motion))
        starts[motion is not None] = sorted(int(t.frame_ids[0]) for t in run.result.tracks)
        assert run.people.moved == (1 if motion is not None else 0)
    assert starts == {True: [0, arrives], False: [0, every]}


def searching_every(
    every: int, min_track_length: int, motion: MotionConfig | None = None
) -> PipelineConfig:
    """The pipeline searching every ``every`` frames, with ``motion`` as its movement cue
    (default: none)."""
    config = pipeline_config(min_track_length=min_track_length, detect_every=every)
    detector = config.detector.model_copy(update={"motion": motion})
    return config.model_copy(update={"detector": detector})
