"""The preview MP4: one frame per video frame, meshes where the camera puts them, and
keypoints over them when asked."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import av
import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from service.outputs.posed_frames import posed_frames
from service.outputs.preview import (
    BONE_WIDTH_PX,
    KEYPOINT_RADIUS_PX,
    VISIBLE,
    image_camera,
    preview_codec,
    track_color_bgr,
    write_preview,
)
from service.pipeline.body import MeshVertices
from service.pipeline.landmarks import LANDMARK_NAMES, SKELETON
from service.pipeline.result import TrackResult, VideoResult
from service.pipeline.video import read_frames
from tests.support.video_results import FIRST_GREY, FOCAL_LENGTH, GREY_STEP, project

# Lossy video moves colours a little: a pixel "is" the background within this ...
COLOR_TOLERANCE = 40
# ... and a track's colour when its direction in BGR space is this close (cosine).
HUE_COSINE = 0.9
PELVIS = 0
DECODER_OF_ENCODER = {"libx264": "h264", "mpeg4": "mpeg4"}
# The keypoints test: track 1 shows two landmarks joined by a bone along the top of the frame
# (where no mesh reaches), and hides another below the second, with the bone to it; every
# other landmark is hidden too, and so are all of track 2's.
SHOWN = {"left_shoulder": ((15.0, 5.0), VISIBLE), "right_shoulder": ((85.0, 5.0), 0.9)}
HIDDEN = ("right_elbow", (88.0, 60.0), VISIBLE - 0.01)
# Pixels this far from the drawn bone, and this far from any mesh, are the same in both
# previews up to the codec's noise: H.264 codes a 16-pixel block drawn on differently, and
# its neighbours a little; the meshes' edges move most. (Measured: at most 11 beyond 4 pixels
# of a mesh drawn whole; drawn with the preview's coarser levels of detail, 44 at 4.1 pixels
# from an edge, within the noise beyond 5.)
FAR_PX = 12.0
MESH_MARGIN_PX = 6.0
CODEC_NOISE = 16
MIN_FAR_SHARE = 0.3  # of the frame's pixels checked, at least
Point = tuple[float, float]  # x, y in pixels


@pytest.fixture(scope="module")
def preview_frames(
    tmp_path_factory: pytest.TempPathFactory,
    video_result: VideoResult,
    video_path: Path,
    pose: MeshVertices,
) -> tuple[Path, list[np.ndarray]]:
    path = tmp_path_factory.mktemp("preview") / "preview.mp4"
    write_preview(video_result, video_path, path, posed_frames(video_result, pose),
                  focal_length=FOCAL_LENGTH)  # fmt: skip
    with av.open(str(path)) as container:
        images = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    return path, images


def test_one_frame_per_video_frame(
    preview_frames: tuple[Path, list[np.ndarray]], video_result: VideoResult
) -> None:
    path, images = preview_frames
    assert len(images) == video_result.frame_count
    # 4:2:0 video has even sizes: the odd frame gained a column and a row.
    assert images[0].shape == (video_result.height + 1, video_result.width + 1, 3)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == DECODER_OF_ENCODER[preview_codec()]
        assert float(stream.average_rate) == pytest.approx(video_result.fps)


def pelvis_pixel(track: TrackResult, row: int) -> tuple[int, int]:
    """(row, column) of the image pixel a track's pelvis projects to in one of its frames."""
    u, v = project(track.joints3d[row, PELVIS] + track.translation[row])
    return round(v), round(u)


def looks_like(shade: np.ndarray, color: tuple[int, int, int]) -> bool:
    """Whether a shaded pixel has a colour's hue (shading scales all channels alike)."""
    shade_f, color_f = shade.astype(float), np.asarray(color, dtype=float)
    cosine = shade_f @ color_f / (np.linalg.norm(shade_f) * np.linalg.norm(color_f))
    return bool(cosine > HUE_COSINE)


def test_meshes_are_drawn_where_the_camera_puts_them(
    preview_frames: tuple[Path, list[np.ndarray]], video_result: VideoResult
) -> None:
    _, images = preview_frames
    first, second = video_result.tracks
    # Frame 0 holds track 1 alone, the last frame track 2 alone (conftest's TRACKS).
    for track, row, frame in ((first, 0, 0), (second, len(second) - 1, len(images) - 1)):
        assert looks_like(images[frame][pelvis_pixel(track, row)], track_color_bgr(track.track_id))
        grey = FIRST_GREY + GREY_STEP * frame
        assert np.abs(images[frame][0, 0].astype(int) - grey).max() < COLOR_TOLERANCE


def test_camera_has_its_principal_point_at_the_frame_centre() -> None:
    camera = image_camera(640, 480, 500.0)
    np.testing.assert_allclose(camera.project(np.array([0.0, 0.0, 2.0])), [320.0, 240.0])
    np.testing.assert_allclose(camera.project(np.array([1.0, -0.5, 2.0])), [570.0, 115.0])


def landmark_index(name: str) -> int:
    return LANDMARK_NAMES.index(name)


def with_test_landmarks(video: VideoResult) -> VideoResult:
    """``video`` with :data:`SHOWN` and :data:`HIDDEN`'s landmarks in every frame of track 1,
    and every other landmark hidden (at the hidden one's place)."""
    name, place, visibility = HIDDEN
    tracks = []
    for track in video.tracks:
        landmarks = np.zeros_like(track.landmarks)  # visibility 0: hidden
        landmarks[..., :2] = place
        if track.track_id == 1:
            landmarks[:, landmark_index(name), 2] = visibility
            for shown, (xy, shown_visibility) in SHOWN.items():
                landmarks[:, landmark_index(shown)] = (*xy, shown_visibility)
        tracks.append(dataclasses.replace(track, landmarks=landmarks))
    return dataclasses.replace(video, tracks=tuple(tracks))


@pytest.fixture(scope="module")
def keypoint_previews(
    tmp_path_factory: pytest.TempPathFactory,
    video_result: VideoResult,
    video_path: Path,
    pose: MeshVertices,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The frames of the test's result previewed without keypoints and with them."""
    video = with_test_landmarks(video_result)
    folder = tmp_path_factory.mktemp("keypoints")
    previews = []
    for keypoints in (False, True):
        path = folder / f"keypoints_{keypoints}.mp4"
        write_preview(video, video_path, path, posed_frames(video, pose),
                      focal_length=FOCAL_LENGTH, keypoints=keypoints)  # fmt: skip
        previews.append([frame.image for frame in read_frames(path)])
    return previews[0], previews[1]


def difference(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``(H, W)``: the largest channel difference of two frames."""
    return np.abs(first.astype(int) - second.astype(int)).max(axis=-1)


def pixel(point: Point) -> tuple[int, int]:
    """(row, column) of an image point ``x, y``."""
    return round(point[1]), round(point[0])


def test_the_bone_is_shown_between_two_landmarks_of_the_model_saw() -> None:
    assert (landmark_index("left_shoulder"), landmark_index("right_shoulder")) in SKELETON
    assert (landmark_index("right_shoulder"), landmark_index(HIDDEN[0])) in SKELETON


def test_keypoints_are_drawn_over_the_preview_in_the_tracks_colour(
    keypoint_previews: tuple[list[np.ndarray], list[np.ndarray]], video_result: VideoResult
) -> None:
    plain, drawn = keypoint_previews
    track = video_result.tracks[0]
    color = track_color_bgr(track.track_id)
    (start, _), (end, _) = SHOWN.values()
    middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    for frame in track.frame_ids.tolist():
        grey = FIRST_GREY + GREY_STEP * frame
        for point in (start, end, middle):
            assert abs(int(plain[frame][pixel(point)].max()) - grey) < COLOR_TOLERANCE  # no mesh
            assert looks_like(drawn[frame][pixel(point)], color)
            assert difference(plain[frame], drawn[frame])[pixel(point)] > COLOR_TOLERANCE


def distances_to_segment(shape: tuple[int, ...], start: Point, end: Point) -> np.ndarray:
    """``(H, W)``: every pixel's distance from the segment ``start``–``end`` (image points)."""
    rows, columns = np.mgrid[: shape[0], : shape[1]]
    pixels = np.stack([columns, rows], axis=-1).astype(float)
    along = np.subtract(end, start)
    t = np.clip((pixels - start) @ along / (along @ along), 0.0, 1.0)
    return np.linalg.norm(pixels - np.add(start, t[..., None] * along), axis=-1)


def test_only_pixels_near_the_drawn_keypoints_change(
    keypoint_previews: tuple[list[np.ndarray], list[np.ndarray]], video_result: VideoResult
) -> None:
    """Away from the shown landmarks and their bone, and from the meshes, the frames are the
    same; the hidden landmark (visibility just under :data:`VISIBLE`) and the
    bone to it are not drawn; nor is anything in the frame without track 1."""
    plain, drawn = keypoint_previews
    (start, _), (end, _) = SHOWN.values()
    _, hidden, _ = HIDDEN
    hidden_bone = ((end[0] + hidden[0]) / 2, (end[1] + hidden[1]) / 2)
    to_bone = distances_to_segment(plain[0].shape, start, end)
    assert FAR_PX > KEYPOINT_RADIUS_PX + BONE_WIDTH_PX
    track_frames = set(video_result.tracks[0].frame_ids.tolist())
    assert track_frames != set(range(len(plain)))
    for frame, (without, with_keypoints) in enumerate(zip(plain, drawn, strict=True)):
        grey = np.full_like(without, FIRST_GREY + GREY_STEP * frame)
        mesh = difference(without, grey) > CODEC_NOISE
        far = distance_transform_edt(~mesh) > MESH_MARGIN_PX
        if frame in track_frames:
            far &= to_bone > FAR_PX
        assert far.mean() > MIN_FAR_SHARE
        changed = difference(without, with_keypoints)
        assert changed[far].max() <= CODEC_NOISE, frame
        for point in (hidden, hidden_bone):
            assert far[pixel(point)]
