"""Person detection behind one interface, :class:`PersonDetector`: batches of BGR frames in,
one ``(N, 5)`` array of ``x1, y1, x2, y2, score`` per frame out, boxes in the frame's pixels.

Three detectors:

- :class:`NanoDetDetector` (the default): NanoDet (RangiLyu 2020), a one-stage detector trained
  on COCO, converted to ONNX once from its published weights (``detector.onnx`` of every
  bundle). Finds people from about 20 pixels tall, seen from any side, close up or far away.
- :class:`HogDetector`: OpenCV's HOG + linear SVM people detector (Dalal and Triggs 2005,
  trained on INRIA Person). Built in, no model file; finds upright people about 100 pixels
  tall or more (its window is 64×128 around the person), misses close-ups and sitting people.
  Its score is the SVM margin, not a probability.
- :class:`OnnxYoloDetector`: any ONNX detector in the common YOLO export layout (Ultralytics
  YOLOv5 and YOLOv8 exports): a letterboxed RGB image in, COCO classes out, class 0 = person.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import onnxruntime as ort
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from service.bundle import DetectorSpec
from service.fixed_batches import GraphSession
from service.pipeline.boxes import clip_boxes, nms

MAX_PIXEL = 255.0
# NanoDet's anchor points lie at the centre of each cell of a level (its stride's square).
CELL_CENTRE = 0.5
# Ultralytics pads letterboxed images with this grey.
LETTERBOX_GREY = 114


class PersonDetector(Protocol):
    """Finds people in frames.

    A detection scored under :attr:`sure_score` is a candidate only: the pipeline keeps it when
    the keypoint model, looking at it, sees a person there (:mod:`service.pipeline.people`).
    """

    sure_score: float

    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Detect people in each frame.

        Args:
            frames: ``(H, W, 3)`` uint8 BGR images; sizes may differ between frames.

        Returns:
            One ``(N, 5)`` float32 array per frame: ``x1, y1, x2, y2`` in that frame's pixels,
            then a score (higher is surer), best score first.
        """
        ...


class HogConfig(BaseModel):
    """Parameters of :class:`HogDetector`. Stride and scale are those of OpenCV's
    ``samples/python/peopledetect.py``; its padding of 32 pixels costs half as much time again
    as 8 on vtest.avi's 768×576 frames for no walker more."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    win_stride: PositiveInt = 8  # pixels between windows (x and y)
    padding: int = Field(8, ge=0)  # pixels added around the image
    scale: float = Field(1.05, gt=1.0)  # ratio between pyramid levels
    hit_threshold: float = 0.0  # SVM margin a window needs to count at all
    # Windows are kept raw (OpenCV's grouping off) and reduced by a score threshold and NMS.
    # On vtest.avi walkers score 0.6-4; windows around two people or around a person and
    # the pavement score under 0.5, and bigger windows nested around a person overlap its own
    # window by IoU 0.3-0.4, while two people walking side by side overlap by less than 0.3.
    min_score: float = 0.5  # SVM margin a kept box needs
    nms_iou: float = Field(0.3, gt=0.0, le=1.0)
    # INRIA's 64×128 windows hold a person about 96 pixels tall and 32-48 wide, centred: these
    # fractions of the window are cut from each side to make its box fit the person.
    margin_x: float = Field(0.15, ge=0.0, lt=0.5)
    margin_y: float = Field(0.125, ge=0.0, lt=0.5)
    # Wider frames are shrunk to this width first: HOG's time grows with the pixels (about
    # 1 s a 1080p frame on one core), and at 1280 × 720 a person needs to have been about
    # 150 pixels tall in a 1080p frame, 300 in a 4K one. None: always at full resolution.
    max_width: PositiveInt | None = 1280


class HogDetector:
    """OpenCV's HOG people detector with non-maximum suppression."""

    def __init__(self, config: HogConfig | None = None) -> None:
        self.config = config or HogConfig()
        self.sure_score = self.config.min_score  # every box it keeps
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector()))

    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """See :meth:`PersonDetector.detect`. Frames go one by one (OpenCV spreads each over
        its threads)."""
        return [self._detect_one(frame) for frame in frames]

    def _fit_window(self, frame: np.ndarray) -> np.ndarray:
        """``frame`` grown at the bottom and right (boxes keep their coordinates) to hold one
        detection window: OpenCV's HOG crashes the process (SIGSEGV) on a smaller image."""
        window_width, window_height = self._hog.winSize
        pad = self.config.padding
        height, width = frame.shape[:2]
        grow_y = max(0, window_height - 2 * pad - height)
        grow_x = max(0, window_width - 2 * pad - width)
        if grow_x or grow_y:
            frame = cv2.copyMakeBorder(frame, 0, grow_y, 0, grow_x, cv2.BORDER_REPLICATE)
        return frame

    def _detect_one(self, frame: np.ndarray) -> np.ndarray:
        cfg = self.config
        height, width = frame.shape[:2]
        shrink = 1.0
        if cfg.max_width is not None and width > cfg.max_width:
            shrink = cfg.max_width / width
            size = (cfg.max_width, max(1, round(height * shrink)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        frame = self._fit_window(frame)
        found, weights = self._hog.detectMultiScale(
            frame,
            hitThreshold=cfg.hit_threshold,
            winStride=(cfg.win_stride, cfg.win_stride),
            padding=(cfg.padding, cfg.padding),
            scale=cfg.scale,
            groupThreshold=0,
        )
        windows = np.asarray(found, dtype=np.float64).reshape(-1, 4)  # (N, 4) x, y, w, h
        scores = np.asarray(weights, dtype=np.float64).reshape(-1)  # (N,)
        confident = scores >= cfg.min_score
        windows, scores = windows[confident], scores[confident]
        boxes = np.concatenate([windows[:, :2], windows[:, :2] + windows[:, 2:]], axis=1)
        keep = nms(boxes, scores, cfg.nms_iou)
        inset = windows[keep, 2:] * np.array([cfg.margin_x, cfg.margin_y])  # (K, 2)
        person_boxes = np.concatenate([boxes[keep, :2] + inset, boxes[keep, 2:] - inset], axis=1)
        person_boxes = clip_boxes(person_boxes / shrink, width, height)
        return np.concatenate([person_boxes, scores[keep, None]], axis=1).astype(np.float32)


class NanoDetConfig(BaseModel):
    """Parameters of :class:`NanoDetDetector`. Two walkers side by side overlap by less than
    IoU 0.4."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A person's class score from which a box is kept at all (a candidate) and from which it
    # is taken as sure without asking the keypoint model. On vtest.avi walkers score 0.5-0.9,
    # hidden or half-seen people and traffic cones 0.2-0.45 (the keypoint model sees a person
    # in the former and none in the cones).
    min_score: float = Field(0.2, ge=0.0, le=1.0)
    sure_score: float = Field(0.45, ge=0.0, le=1.0)
    nms_iou: float = Field(0.4, gt=0.0, le=1.0)
    max_detections: PositiveInt = 100  # per frame, after NMS
    # Boxes whose shorter side is under this many frame pixels are dropped: nothing the
    # keypoint model or a mesh can use.
    min_size: PositiveFloat = 8.0


class NanoDetDetector:
    """NanoDet (generalised-focal-loss heads) run by onnxruntime; ``layout`` is the graph's
    description in the bundle's manifest.

    The frame is letterboxed into the model's square input (:func:`letterbox`: its aspect
    kept; stretched to the square, people in a wide frame look thin and score half as high),
    normalised per BGR channel. Each cell of each level predicts
    class scores and, for each side of its box, a distribution over distances in strides from
    the cell's centre; the box side is that distribution's mean. Person boxes over
    :attr:`NanoDetConfig.min_score` then go through NMS.
    """

    def __init__(
        self,
        session: GraphSession,
        layout: DetectorSpec,
        config: NanoDetConfig | None = None,
    ) -> None:
        self.config = config or NanoDetConfig()
        self.sure_score = self.config.sure_score
        self.layout = layout
        self._session = session
        self._outputs = [*layout.scores, *layout.distances]
        self._centres = [self._cell_centres(stride) for stride in layout.strides]
        self._batch = session.get_inputs()[0].shape[0]

    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """See :meth:`PersonDetector.detect`. All frames in one call when the graph's batch is
        dynamic, else one by one."""
        if not frames:
            return []
        step = self._batch if isinstance(self._batch, int) else len(frames)
        detections: list[np.ndarray] = []
        for start in range(0, len(frames), step):
            batch = frames[start : start + step]
            squares = [letterbox(frame, self.layout.input_size) for frame in batch]
            inputs = self._inputs(np.stack([square for square, _, _ in squares]))
            outputs = self._session.run(self._outputs, {self.layout.input_name: inputs})
            for index, (frame, (_, scale, offset)) in enumerate(zip(batch, squares, strict=True)):
                per_level = [np.asarray(output)[index] for output in outputs]
                height, width = frame.shape[:2]
                detections.append(self.decode(per_level, scale, offset, width, height))
        return detections

    def _inputs(self, squares: np.ndarray) -> np.ndarray:
        """``(B, S, S, 3)`` uint8 BGR → the graph's ``(B, 3, S, S)`` (or ``(B, S, S, 3)``)
        float32, normalised."""
        mean = np.asarray(self.layout.mean, dtype=np.float32)
        std = np.asarray(self.layout.std, dtype=np.float32)
        inputs = (squares.astype(np.float32) - mean) / std
        return np.ascontiguousarray(
            inputs.transpose(0, 3, 1, 2) if self.layout.channels_first else inputs
        )

    def _cell_centres(self, stride: int) -> np.ndarray:
        """``(h·w, 2)`` x, y of the cells' centres of one level, input pixels, row by row."""
        cells = -(-self.layout.input_size // stride)
        grid = (np.arange(cells) + CELL_CENTRE) * stride
        xs, ys = np.meshgrid(grid, grid)
        return np.stack([xs.ravel(), ys.ravel()], axis=1)

    def decode(
        self,
        per_level: list[np.ndarray],
        scale: float,
        offset: np.ndarray,
        width: int,
        height: int,
    ) -> np.ndarray:
        """One frame's raw outputs (the levels' scores, then their distances, as the graph
        gives them without the batch axis) → ``(N, 5)`` person detections in the pixels of the
        ``width × height`` frame, which the input showed as ``frame · scale + offset``."""
        layout, cfg = self.layout, self.config
        levels = len(layout.strides)
        boxes, scores = [], []
        for scores_of_level, sides, centres, stride in zip(
            per_level[:levels], per_level[levels:], self._centres, layout.strides, strict=True
        ):
            score = scores_of_level.reshape(len(centres), -1)[:, layout.person_class]
            keep = np.flatnonzero(score >= cfg.min_score)
            logits = sides.reshape(len(centres), 4, layout.bins)[keep].astype(np.float64)
            weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
            distance = (weights / weights.sum(axis=-1, keepdims=True)) @ np.arange(layout.bins)
            distance *= stride  # (k, 4) left, top, right, bottom
            centre = centres[keep]
            boxes.append(np.concatenate([centre - distance[:, :2], centre + distance[:, 2:]], 1))
            scores.append(score[keep])
        box = np.concatenate(boxes).reshape(-1, 4)
        score = np.concatenate(scores).astype(np.float64)
        box = clip_boxes((box - np.tile(offset, 2)) / scale, width, height)
        sizes = box[:, 2:] - box[:, :2]
        big = sizes.min(axis=1) >= cfg.min_size
        box, score = box[big], score[big]
        keep = nms(box, score, cfg.nms_iou)[: cfg.max_detections]
        return np.concatenate([box[keep], score[keep, None]], axis=1).astype(np.float32)


class YoloConfig(BaseModel):
    """Parameters of :class:`OnnxYoloDetector`; thresholds are Ultralytics' defaults
    (``conf=0.25``, YOLOv5's ``iou=0.45``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_classes: PositiveInt = 80  # COCO
    person_class: int = Field(0, ge=0)
    min_score: float = Field(0.25, ge=0.0, le=1.0)
    nms_iou: float = Field(0.45, gt=0.0, le=1.0)
    max_detections: PositiveInt = 100  # per frame, after NMS
    input_size: PositiveInt = 640  # used only when the model's input size is dynamic
    batch_size: PositiveInt = 8  # frames per run when the model's batch size is dynamic
    # onnxruntime execution providers in order of preference; None = all this build has
    # (CUDA first with onnxruntime-gpu).
    providers: tuple[str, ...] | None = None


class OnnxYoloDetector:
    """A YOLO-layout ONNX detector run by onnxruntime.

    The model takes ``(B, 3, S, S)`` float32 RGB in [0, 1], the frame letterboxed (scaled to
    fit, centred on grey), and gives either

    - YOLOv8 layout ``(B, 4 + C, A)``: ``cx, cy, w, h`` in input pixels, then C class scores;
    - YOLOv5 layout ``(B, A, 5 + C)``: ``cx, cy, w, h``, objectness, then C class scores
      (a detection's score is objectness × class score).

    A candidate is a person when person is its best class. Boxes come back in frame pixels.
    """

    def __init__(self, model: str | Path | bytes, config: YoloConfig | None = None) -> None:
        self.config = config or YoloConfig()
        self.sure_score = self.config.min_score  # every box it keeps
        model_input = model if isinstance(model, bytes) else str(model)
        providers = self.config.providers or ort.get_available_providers()
        self._session = ort.InferenceSession(model_input, providers=list(providers))
        (image_input,) = self._session.get_inputs()
        self._input_name: str = image_input.name
        batch, _, size, _ = image_input.shape
        self._input_size = size if isinstance(size, int) else self.config.input_size
        self._batch_size = batch if isinstance(batch, int) else self.config.batch_size

    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """See :meth:`PersonDetector.detect`. Frames run in batches of the model's batch size
        (or :attr:`YoloConfig.batch_size` when it is dynamic)."""
        detections: list[np.ndarray] = []
        for start in range(0, len(frames), self._batch_size):
            batch = frames[start : start + self._batch_size]
            letterboxed = [letterbox(frame, self._input_size) for frame in batch]
            images = np.stack([image for image, _, _ in letterboxed])  # (B, S, S, 3) BGR
            inputs = images[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / MAX_PIXEL
            (output,) = self._session.run(None, {self._input_name: inputs})
            candidates = self._candidates(np.asarray(output))  # (B, A, 5)
            for frame, per_frame, (_, scale, offset) in zip(
                batch, candidates, letterboxed, strict=True
            ):
                height, width = frame.shape[:2]
                detections.append(self._decode(per_frame, scale, offset, width, height))
        return detections

    def _candidates(self, output: np.ndarray) -> np.ndarray:
        """The model output as ``(B, A, 5)``: ``cx, cy, w, h`` in input pixels, person score."""
        cfg = self.config
        if output.ndim == 3 and output.shape[1] == 4 + cfg.num_classes:  # YOLOv8 (B, 4+C, A)
            rows = output.transpose(0, 2, 1)
            boxes, classes = rows[..., :4], rows[..., 4:]
        elif output.ndim == 3 and output.shape[2] == 5 + cfg.num_classes:  # YOLOv5 (B, A, 5+C)
            boxes, classes = output[..., :4], output[..., 5:] * output[..., 4:5]
        else:
            raise ValueError(
                f"Detector output {output.shape} is neither (B, {4 + cfg.num_classes}, A) nor"
                f" (B, A, {5 + cfg.num_classes}) for {cfg.num_classes} classes."
            )
        is_person = classes.argmax(axis=-1) == cfg.person_class  # (B, A)
        score = np.where(is_person, classes[..., cfg.person_class], 0.0)
        return np.concatenate([boxes, score[..., None]], axis=-1)

    def _decode(
        self, candidates: np.ndarray, scale: float, offset: np.ndarray, width: int, height: int
    ) -> np.ndarray:
        """``(A, 5)`` candidates of one ``width × height`` frame → ``(N, 5)`` detections in
        frame pixels."""
        cfg = self.config
        candidates = candidates[candidates[:, 4] >= cfg.min_score]
        centres, sizes, scores = candidates[:, :2], candidates[:, 2:4], candidates[:, 4]
        boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)  # (N, 4)
        keep = nms(boxes, scores, cfg.nms_iou)[: cfg.max_detections]
        frame_boxes = clip_boxes((boxes[keep] - np.tile(offset, 2)) / scale, width, height)
        return np.concatenate([frame_boxes, scores[keep, None]], axis=1).astype(np.float32)


def letterbox(frame: np.ndarray, size: int) -> tuple[np.ndarray, float, np.ndarray]:
    """Scale a frame to fit a ``size × size`` square, keeping its aspect, centred on grey.

    Args:
        frame: ``(H, W, 3)`` uint8.
        size: side of the square, pixels.

    Returns:
        The ``(size, size, 3)`` image, the scale (square pixels per frame pixel) and the
        ``(2,)`` x, y offset of the frame in the square: ``square = frame · scale + offset``.
    """
    height, width = frame.shape[:2]
    scale = min(size / height, size / width)
    new_width, new_height = round(width * scale), round(height * scale)
    resized = cv2.resize(frame, (new_width, new_height), interpolation=cv2.INTER_LINEAR)
    left, top = (size - new_width) // 2, (size - new_height) // 2
    square = np.full((size, size, 3), LETTERBOX_GREY, dtype=np.uint8)
    square[top : top + new_height, left : left + new_width] = resized
    return square, scale, np.array([left, top], dtype=np.float64)
