"""The service's crops equal training's: the same frame and box through ``VideoClips`` (an
unaugmented clip, as training and evaluation read it) and through :func:`cut_crops`."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from service.bundle import InputSpec
from service.pipeline.crops import crop_transform, cut_crops, square_boxes
from training.data.batch import IMAGE_MEAN, IMAGE_STD
from training.data.crops import crop_transform as training_crop_transform
from training.data.dataset_file import NUM_JOINTS_49, write_dataset_file
from training.data.video_clips import VideoClips
from training.synth.backgrounds import STREET_PATH

TOLERANCE = 1e-5
SPEC = InputSpec(image_size=32, mean=IMAGE_MEAN, std=IMAGE_STD, crop_scale=1.2)
# x1, y1, x2, y2: tall, wide, at sub-pixel positions, and reaching past the frame's edges.
BOXES = np.array(
    [
        [100.3, 50.7, 180.9, 300.2],
        [10.0, 200.0, 400.5, 260.0],
        [-40.0, -25.5, 60.0, 120.0],
        [500.25, 100.75, 700.0, 480.0],
    ]
)


@pytest.fixture(scope="module")
def frame(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A real photo as a lossless PNG, and its BGR pixels as a video frame would hold them."""
    image = cv2.imread(str(STREET_PATH))[:480, :640]
    path = tmp_path_factory.mktemp("frames") / "frame.png"
    cv2.imwrite(str(path), image)
    return path, image


def training_crops(image_path: Path, boxes: np.ndarray, tmp_path: Path) -> np.ndarray:
    """``(N, 3, S, S)`` crops as ``VideoClips`` cuts them from a one-row-per-box dataset file."""
    rows = len(boxes)
    size = boxes[:, 2:] - boxes[:, :2]
    arrays = {
        "vid_name": np.array([f"box{row}" for row in range(rows)]),  # one track per box
        "frame_id": np.zeros(rows, dtype=np.int64),
        "img_name": np.array([str(image_path)] * rows),
        "joints2D": np.zeros((rows, NUM_JOINTS_49, 3), dtype=np.float32),
        "bbox": np.concatenate([boxes[:, :2] + size / 2, size], axis=1),  # cx, cy, w, h
    }
    write_dataset_file(tmp_path / "boxes.pt", arrays)
    clips = VideoClips(
        [tmp_path / "boxes.pt"],
        clip_length=1,
        stride=1,
        crop_size=SPEC.image_size,
        crop_scale=SPEC.crop_scale,
    )
    return np.stack([clips[index]["frames"][0].numpy() for index in range(len(clips))])


def test_crops_match_training(frame, tmp_path):
    image_path, image = frame
    got = cut_crops(image, square_boxes(BOXES, SPEC.crop_scale), SPEC)
    expected = training_crops(image_path, BOXES, tmp_path)
    assert got.shape == expected.shape == (len(BOXES), 3, SPEC.image_size, SPEC.image_size)
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() <= TOLERANCE
    # The box reaching past the frame's corner has black (zero-pixel) outside it.
    black = (0.0 - np.asarray(IMAGE_MEAN)) / np.asarray(IMAGE_STD)
    assert np.allclose(got[2, :, 0, 0], black, atol=TOLERANCE)


def test_square_boxes_and_transform_are_trainings():
    squares = square_boxes(BOXES, SPEC.crop_scale)
    size = BOXES[:, 2:] - BOXES[:, :2]
    assert np.allclose(squares[:, :2], (BOXES[:, :2] + BOXES[:, 2:]) / 2)
    assert np.allclose(squares[:, 2], SPEC.crop_scale * size.max(axis=1))
    for square in squares:
        expected = training_crop_transform(square[:2], float(square[2]), SPEC.image_size)
        assert np.allclose(crop_transform(square, SPEC.image_size), expected)


def test_a_box_without_area_is_refused():
    with pytest.raises(ValueError, match="positive width"):
        square_boxes(np.array([[10.0, 10.0, 10.0, 50.0]]), SPEC.crop_scale)
