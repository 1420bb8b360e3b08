"""`meshcast body animate`: a moving body rendered to PNG frames and MP4 videos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from meshcast.body_animation import BODY_COLOR, IMAGE_HEIGHT, IMAGE_WIDTH, TURNTABLE_FRAMES

NUM_FRAMES = 4
# A standing body seen whole at 640×480 covers a few percent of the frame, never most of it.
MIN_BODY_FRACTION = 0.01
MAX_BODY_FRACTION = 0.5
# Between the first and last rendered frames of a walk the body's silhouette must change.
MAX_SILHOUETTE_IOU = 0.95


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from meshcast.body_animation import render_motion_demo

    out_dir = tmp_path_factory.mktemp("demo")
    return render_motion_demo("walk", out_dir=out_dir, num_frames=NUM_FRAMES, turntable=True)


def body_mask(path: str) -> np.ndarray:
    """Pixels of the (blue) body: the floor and background are grey, with blue ≈ red."""
    image = cv2.imread(path)
    assert image is not None, f"unreadable image {path}"
    bgr = image.astype(int)
    blue_over_red = BODY_COLOR[2] - BODY_COLOR[0]
    return bgr[..., 0] - bgr[..., 2] > blue_over_red // 4


def frame_paths(summary: dict[str, Any]) -> list[str]:
    return [f for f in summary["files"] if f.endswith(".png")]


def test_summary_lists_the_files_written(summary: dict[str, Any]) -> None:
    assert summary["frames"] == NUM_FRAMES
    assert summary["fps"] == pytest.approx(30.0, rel=1e-3)
    assert summary["seconds"] > 0
    names = [Path(f).name for f in summary["files"]]
    assert names == [f"frame_{i:04d}.png" for i in range(NUM_FRAMES)] + [
        "walk.mp4",
        "turntable.mp4",
    ]
    assert all(Path(f).is_file() for f in summary["files"])


@pytest.mark.parametrize(("video", "frames"), [("walk.mp4", NUM_FRAMES), ("turntable.mp4", None)])
def test_videos_play(summary: dict[str, Any], video: str, frames: int | None) -> None:
    path = next(f for f in summary["files"] if f.endswith(video))
    capture = cv2.VideoCapture(path)
    try:
        assert capture.get(cv2.CAP_PROP_FRAME_WIDTH) == IMAGE_WIDTH
        assert capture.get(cv2.CAP_PROP_FRAME_HEIGHT) == IMAGE_HEIGHT
        expected = frames if frames is not None else TURNTABLE_FRAMES
        assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == expected
    finally:
        capture.release()


def test_frames_show_a_body(summary: dict[str, Any]) -> None:
    for path in frame_paths(summary):
        fraction = body_mask(path).mean()
        assert MIN_BODY_FRACTION < fraction < MAX_BODY_FRACTION


def test_body_moves_between_frames(summary: dict[str, Any]) -> None:
    paths = frame_paths(summary)
    first, last = body_mask(paths[0]), body_mask(paths[-1])
    iou = (first & last).sum() / (first | last).sum()
    assert iou < MAX_SILHOUETTE_IOU
