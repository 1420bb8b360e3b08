"""The preview MP4: one frame per video frame, meshes where the camera puts them."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from service.outputs.preview import image_camera, preview_codec, track_color_bgr, write_preview
from service.pipeline.body import MeshVertices
from service.pipeline.result import TrackResult, VideoResult
from tests.support.video_results import FIRST_GREY, FOCAL_LENGTH, GREY_STEP, project

# Lossy video moves colours a little: a pixel "is" the background within this ...
COLOR_TOLERANCE = 40
# ... and a track's colour when its direction in BGR space is this close (cosine).
HUE_COSINE = 0.9
PELVIS = 0
DECODER_OF_ENCODER = {"libx264": "h264", "mpeg4": "mpeg4"}


@pytest.fixture(scope="module")
def preview_frames(
    tmp_path_factory: pytest.TempPathFactory,
    video_result: VideoResult,
    video_path: Path,
    pose: MeshVertices,
) -> tuple[Path, list[np.ndarray]]:
    path = tmp_path_factory.mktemp("preview") / "preview.mp4"
    write_preview(video_result, video_path, path, pose, focal_length=FOCAL_LENGTH)
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
