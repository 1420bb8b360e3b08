"""Person detectors: the YOLO decoder on tiny ONNX graphs that emit known boxes (run by a real
onnxruntime session), HOG on the street video, letterboxing and box arithmetic."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from service.pipeline.boxes import iou_matrix, nms
from service.pipeline.detect import (
    LETTERBOX_GREY,
    HogConfig,
    HogDetector,
    OnnxYoloDetector,
    PersonDetector,
    YoloConfig,
    letterbox,
)

NUM_CLASSES = 80
PERSON, CAR = 0, 2
SIZE = 320  # the graphs' input side
OPSET = 17
IR_VERSION = 8  # opset 17's: onnxruntime refuses files of an IR version newer than it knows
VTEST = Path(__file__).parents[4] / "shared" / "data" / "vtest.avi"


def constant_detector(rows: np.ndarray, layout: str, batch: int | str = "batch") -> bytes:
    """An ONNX model whose output is ``rows`` whatever the image, repeated over the batch.

    Args:
        rows: YOLOv8 layout (4 + C, A) or YOLOv5 layout (A, 5 + C), input pixels.
        layout: "v8" or "v5", only for the output's name.
        batch: the input's batch dimension, a number or a symbolic name.
    """
    image = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, SIZE, SIZE])
    output = helper.make_tensor_value_info(
        f"output_{layout}", TensorProto.FLOAT, [batch, *rows.shape]
    )
    nodes = [
        helper.make_node("Shape", ["images"], ["image_shape"], start=0, end=1),  # [B]
        helper.make_node("Concat", ["image_shape", "row_shape"], ["output_shape"], axis=0),
        helper.make_node("Expand", ["rows", "output_shape"], [f"output_{layout}"]),
    ]
    initializers = [
        helper.make_tensor("rows", TensorProto.FLOAT, (1, *rows.shape), rows.ravel().tolist()),
        helper.make_tensor("row_shape", TensorProto.INT64, (2,), list(rows.shape)),
    ]
    graph = helper.make_graph(nodes, "constant_detector", [image], [output], initializers)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


def to_letterbox(box: tuple[float, float, float, float], scale: float, top: float) -> np.ndarray:
    """A frame box x1, y1, x2, y2 → cx, cy, w, h in the letterboxed input (no left pad)."""
    x1, y1, x2, y2 = (np.array(box) * scale) + np.array([0, top, 0, top])
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1])


# A 1280×720 frame goes into 320×320 at scale 1/4, 180 rows tall, 70 grey rows above.
WIDE_SCALE, WIDE_TOP = 0.25, 70.0
# (frame box, person score, car score) for the 1280×720 frame.
WIDE_CANDIDATES = [
    ((100, 200, 300, 600), 0.9, 0.0),  # kept
    ((110, 210, 310, 610), 0.8, 0.0),  # the same person again: NMS removes it
    ((700, 100, 800, 400), 0.6, 0.0),  # kept
    ((-40, 500, 60, 700), 0.7, 0.0),  # kept, cut at the frame's left edge
    ((900, 300, 1000, 500), 0.1, 0.0),  # under the score threshold
    ((400, 300, 600, 500), 0.5, 0.9),  # a car (best class): dropped
]
WIDE_EXPECTED = np.array(
    [[100, 200, 300, 600, 0.9], [0, 500, 60, 700, 0.7], [700, 100, 800, 400, 0.6]]
)
NUM_ANCHORS = 10  # the rest are empty


def yolov8_rows() -> np.ndarray:
    """(4 + C, A): the wide frame's candidates in YOLOv8 layout."""
    rows = np.zeros((4 + NUM_CLASSES, NUM_ANCHORS), dtype=np.float32)
    for anchor, (box, person, car) in enumerate(WIDE_CANDIDATES):
        rows[:4, anchor] = to_letterbox(box, WIDE_SCALE, WIDE_TOP)
        rows[4 + PERSON, anchor], rows[4 + CAR, anchor] = person, car
    return rows


def test_yolov8_layout_decodes_filters_suppresses_and_scales_back() -> None:
    detector = OnnxYoloDetector(constant_detector(yolov8_rows(), "v8"))
    wide = np.zeros((720, 1280, 3), dtype=np.uint8)
    square = np.zeros((640, 640, 3), dtype=np.uint8)  # scale 1/2, no padding
    detections = detector.detect([wide, square, wide])
    assert len(detections) == 3
    np.testing.assert_allclose(detections[0], WIDE_EXPECTED, atol=0.01)
    np.testing.assert_allclose(detections[2], WIDE_EXPECTED, atol=0.01)
    # The same letterboxed boxes read back into the square frame: ×2, 70 rows less padding.
    expected_square = np.array(
        [
            [50, 240, 150, 440, 0.9],  # (25, 120, 75, 220) in the input
            [0, 390, 30, 490, 0.7],
            [350, 190, 400, 340, 0.6],
        ]
    )
    np.testing.assert_allclose(detections[1], expected_square, atol=0.01)
    assert detections[0].dtype == np.float32


def test_yolov5_layout_weighs_class_scores_by_objectness_one_frame_at_a_time() -> None:
    # (frame box, objectness, person score)
    candidates = [
        ((100, 200, 300, 600), 0.9, 0.5),  # 0.45
        ((700, 100, 800, 400), 0.3, 0.9),  # 0.27
        ((900, 300, 1000, 500), 0.2, 0.9),  # 0.18: under the threshold
    ]
    rows = np.zeros((NUM_ANCHORS, 5 + NUM_CLASSES), dtype=np.float32)
    for anchor, (box, objectness, person) in enumerate(candidates):
        rows[anchor, :4] = to_letterbox(box, WIDE_SCALE, WIDE_TOP)
        rows[anchor, 4], rows[anchor, 5 + PERSON] = objectness, person
    detector = OnnxYoloDetector(constant_detector(rows, "v5", batch=1))  # a fixed batch of 1
    wide = np.zeros((720, 1280, 3), dtype=np.uint8)
    detections = detector.detect([wide, wide])
    expected = np.array([[100, 200, 300, 600, 0.45], [700, 100, 800, 400, 0.27]])
    for per_frame in detections:
        np.testing.assert_allclose(per_frame, expected, atol=0.01)


def test_an_output_of_another_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "odd.onnx"
    path.write_bytes(constant_detector(np.zeros((7, 6), dtype=np.float32), "v8"))
    with pytest.raises(ValueError, match="neither"):
        OnnxYoloDetector(path).detect([np.zeros((32, 32, 3), dtype=np.uint8)])


def test_detection_thresholds_come_from_the_config() -> None:
    config = YoloConfig(min_score=0.75, max_detections=1)
    detector = OnnxYoloDetector(constant_detector(yolov8_rows(), "v8"), config)
    (detections,) = detector.detect([np.zeros((720, 1280, 3), dtype=np.uint8)])
    np.testing.assert_allclose(detections, WIDE_EXPECTED[:1], atol=0.01)


def test_letterbox_centres_the_scaled_frame_on_grey() -> None:
    frame = np.full((100, 200, 3), 7, dtype=np.uint8)
    square, scale, offset = letterbox(frame, 64)
    assert square.shape == (64, 64, 3)
    assert scale == pytest.approx(0.32)
    np.testing.assert_array_equal(offset, [0, 16])  # 32 rows of image, 16 grey rows each side
    assert (square[:16] == LETTERBOX_GREY).all()
    assert (square[48:] == LETTERBOX_GREY).all()
    assert (square[16:48] == 7).all()


def test_iou_and_nms() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=np.float64)
    np.testing.assert_allclose(iou_matrix(boxes[:1], boxes), [[1.0, 50 / 150, 0.0]])
    scores = np.array([0.5, 0.9, 0.7])
    np.testing.assert_array_equal(nms(boxes, scores, 0.3), [1, 2])  # box 0 overlaps box 1 by 1/3
    np.testing.assert_array_equal(nms(boxes, scores, 0.5), [1, 2, 0])
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)


def vtest_frame(index: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(VTEST))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = capture.read()
    capture.release()
    assert ok
    return frame


@pytest.mark.skipif(not VTEST.exists(), reason="shared/data/vtest.avi is not here")
def test_hog_finds_the_walkers_of_the_street_video() -> None:
    # Frame 400: three people walking, their centres read off the frame by eye (x, y).
    walkers = np.array([[287.0, 242.0], [603.0, 172.0], [715.0, 355.0]])
    detector: PersonDetector = HogDetector()
    frame = vtest_frame(400)
    (detections,) = detector.detect([frame])
    assert 3 <= len(detections) <= 5
    boxes = detections[:, :4]
    for x, y in walkers:
        inside = (boxes[:, 0] < x) & (x < boxes[:, 2]) & (boxes[:, 1] < y) & (y < boxes[:, 3])
        assert inside.sum() == 1
    heights, widths = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    assert (heights > 1.5 * widths).all()  # upright people
    assert (np.diff(detections[:, 4]) <= 0).all()  # best first


@pytest.mark.skipif(not VTEST.exists(), reason="shared/data/vtest.avi is not here")
def test_hog_shrinks_frames_wider_than_its_limit_and_scales_the_boxes_back() -> None:
    frame = vtest_frame(400)  # 768 × 576
    (original,) = HogDetector(HogConfig(max_width=None)).detect([frame])
    doubled = cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    (shrunk,) = HogDetector(HogConfig(max_width=frame.shape[1])).detect([doubled])
    assert len(shrunk) == len(original)
    # Each box of the doubled frame is the original's, twice as far out, to a few pixels
    # (the shrunk frame is the original resampled twice, not the same pixels).
    overlap = iou_matrix(shrunk[:, :4] / 2, original[:, :4])
    assert (overlap.max(axis=1) > 0.8).all()
    assert shrunk[:, :4].max() > frame.shape[1]  # in the doubled frame's pixels


@pytest.mark.parametrize(("height", "width"), [(71, 97), (111, 47), (1, 1)])
def test_hog_takes_frames_smaller_than_its_window(height: int, width: int) -> None:
    # OpenCV's HOG crashed the whole process (SIGSEGV) on these before they were grown.
    frame = np.full((height, width, 3), 128, dtype=np.uint8)
    (detections,) = HogDetector().detect([frame])
    assert detections.shape == (0, 5)
