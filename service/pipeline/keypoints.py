"""The keypoint stage: 33 body landmarks and 33 metric 3D points per person and frame.

The model is BlazePose GHUM 3D (``keypoints.onnx`` of a bundle, converted from MediaPipe's
``pose_landmark_full.tflite``). It reads a 256 × 256 RGB crop in [0, 1] of a *region of
interest* (ROI): a square, possibly rotated, centred on the person's hips. As MediaPipe
Pose does it:

1. a first ROI comes from a person box (the tracker's): a square around the box's centre;
2. the model's landmarks 33 (hip centre) and 34 (a point that sets size and direction) give a
   better ROI — centred on the hips, side ``2·|p34 − p33|·scale``, rotated so that the body
   stands upright in the crop — and a second pass on it gives the landmarks kept;
3. each landmark is refined from its heatmap (the weighted mean of a small window, where the
   heatmap is confident) and mapped back from the crop to image pixels;
4. the ROI of the next frame may follow these landmarks (:attr:`PoseEstimates.next_rois`)
   when no detection is there to start from.

All people of a frame run in one batched call per pass. numpy, OpenCV and onnxruntime only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from service.pipeline.landmarks import NUM_LANDMARKS, ROI_CENTRE, ROI_SCALE, VISIBLE

if TYPE_CHECKING:
    from service.fixed_batches import GraphSession

_UINT8_MAX = float(np.iinfo(np.uint8).max)
# The model's landmark tensor: per point x, y, z (crop pixels), visibility and presence logits.
_VISIBILITY = 3
_VALUES_PER_POINT = 5


class KeypointConfig(BaseModel):
    """Parameters of the keypoint stage. The ROI scale, the heatmap window and its confidence
    are MediaPipe Pose's (``pose_landmark_by_roi`` and ``pose_landmarks_to_roi`` graphs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The first ROI's side over the person box's longer side: the box holds the whole body,
    # the landmark ROI holds it with a quarter more around it; hips lie near the box centre.
    box_scale: PositiveFloat = 1.4
    # The landmark ROI's side over twice the hip-centre-to-scale-point distance (MediaPipe).
    roi_scale: PositiveFloat = 1.25
    heatmap_window: PositiveInt = 7  # pixels of the 64 × 64 heatmap around a landmark
    heatmap_min_confidence: float = Field(0.5, ge=0.0, le=1.0)  # refine only where surer
    # A landmark counts in the box made from landmarks from this visibility on.
    visible: float = Field(VISIBLE, ge=0.0, le=1.0)
    # A detector's candidate (a box under its sure score) is taken as a person when the model,
    # looking at it, is this sure a person is there: people score 0.9-1.0 where the detector
    # hesitates (half-hidden, entering the frame), traffic cones 0.0-0.1.
    confirm_score: float = Field(0.9, ge=0.0, le=1.0)
    # Candidates overlapping a sure detection this much are the same person: not looked at.
    candidate_overlap: float = Field(0.3, gt=0.0, le=1.0)
    # A candidate overlapping one refused in the frame before this much is the same thing, not
    # looked at again: posts and cones stay put, a walker's box moves by more in a frame.
    same_box: float = Field(0.85, gt=0.0, le=1.0)
    # A person box made from landmarks: the visible landmarks' extent grown by this fraction of
    # its height on each side (the head reaches above the eyes, a box holds the whole body).
    landmark_box_margin: float = Field(0.1, ge=0.0)


@dataclass(frozen=True)
class Rois:
    """``K`` square regions of interest in image pixels, rotated about their centre by
    ``rotation`` radians (clockwise on screen: image y points down)."""

    centres: np.ndarray  # (K, 2) x, y
    sizes: np.ndarray  # (K,) side
    rotations: np.ndarray  # (K,)

    def __len__(self) -> int:
        return len(self.sizes)

    def select(self, index: np.ndarray) -> Rois:
        """The ROIs at ``index`` (an int or bool array)."""
        return Rois(self.centres[index], self.sizes[index], self.rotations[index])


@dataclass(frozen=True)
class PoseEstimates:
    """The keypoint model's answer for ``K`` people of one frame."""

    landmarks: np.ndarray  # (K, 33, 3) float32: x, y image pixels, visibility in [0, 1]
    # (K, 33, 3) float32: metres, hip-centred, in the axes of a camera looking at the person
    world_landmarks: np.ndarray
    scores: np.ndarray  # (K,) float32: the pose flag, how sure the model is a person is there
    next_rois: Rois  # the ROIs these landmarks give for the next frame

    def __len__(self) -> int:
        return len(self.scores)


def box_rois(boxes: np.ndarray, scale: float) -> Rois:
    """Upright square ROIs around ``(K, 4)`` boxes ``x1, y1, x2, y2``: side ``scale`` times the
    longer side."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    size = boxes[:, 2:] - boxes[:, :2]  # (K, 2)
    return Rois(boxes[:, :2] + size / 2, scale * size.max(axis=1), np.zeros(len(boxes)))


def landmark_rois(centres: np.ndarray, scale_points: np.ndarray, scale: float) -> Rois:
    """ROIs from the model's two alignment points, in image pixels.

    Args:
        centres: ``(K, 2)`` point 33, the hip centre: the ROI's centre.
        scale_points: ``(K, 2)`` point 34: twice its distance from the centre, times
            ``scale``, is the side; the ROI is turned so that it lies straight above the centre.
        scale: the side's scale.
    """
    offset = scale_points - centres  # (K, 2)
    # The rotation that brings the direction centre → scale point to straight up (-y): 0
    # when the point is above the centre. Image y points down, hence the minus.
    angle = np.pi / 2 - np.arctan2(-offset[:, 1], offset[:, 0])
    rotations = (angle + np.pi) % (2 * np.pi) - np.pi
    sizes = 2 * np.linalg.norm(offset, axis=1) * scale
    return Rois(centres.astype(np.float64), sizes, rotations)


def crop_to_image(rois: Rois, crop_size: int) -> np.ndarray:
    """``(K, 2, 3)`` affine maps from a crop's pixel coordinates (0 to ``crop_size``) to the
    image's: the crop's centre to the ROI's, turned by its rotation, scaled by its side."""
    cos, sin = np.cos(rois.rotations), np.sin(rois.rotations)
    scale = rois.sizes / crop_size  # (K,) image pixels per crop pixel
    linear = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], 1)  # (K, 2, 2)
    linear = linear * scale[:, None, None]
    offset = rois.centres - linear @ np.full(2, crop_size / 2)  # (K, 2)
    return np.concatenate([linear, offset[:, :, None]], axis=2)


def landmark_boxes(landmarks: np.ndarray, visible: float, margin: float) -> np.ndarray:
    """Person boxes from landmarks: the extent of the visible ones, grown by ``margin`` of its
    height on every side.

    Args:
        landmarks: ``(K, 33, 3)`` x, y, visibility.
        visible: the visibility from which a landmark counts.
        margin: the fraction of the height added on each side.

    Returns:
        ``(K, 4)`` x1, y1, x2, y2; NaN for a person with fewer than two visible landmarks.
    """
    seen = landmarks[..., 2] >= visible  # (K, 33)
    xy = np.where(seen[..., None], landmarks[..., :2], np.nan)
    boxes = np.full((len(landmarks), 4), np.nan)
    enough = seen.sum(axis=1) >= 2
    if enough.any():
        low = np.nanmin(xy[enough], axis=1)  # (k, 2)
        high = np.nanmax(xy[enough], axis=1)
        grow = margin * (high[:, 1] - low[:, 1])[:, None]  # (k, 1)
        boxes[enough] = np.concatenate([low - grow, high + grow], axis=1)
    return boxes


class KeypointModel:
    """BlazePose GHUM 3D on onnxruntime, batched over the people of a frame.

    Args:
        session: the bundle's ``keypoints.onnx`` session.
        config: ROI and refinement parameters.
        crop_size: the model's input side (256).
        names: the graph's input and output names: ``image``, ``landmarks``, ``pose_flag``,
            ``heatmaps``, ``world_landmarks`` → the names in the graph.
    """

    def __init__(
        self,
        session: GraphSession,
        config: KeypointConfig,
        crop_size: int,
        names: dict[str, str],
    ) -> None:
        self.session = session
        self.config = config
        self.crop_size = crop_size
        self._input = names["image"]
        self._outputs = [
            names[key] for key in ("landmarks", "pose_flag", "heatmaps", "world_landmarks")
        ]

    def estimate(self, image: np.ndarray, rois: Rois, refine: np.ndarray) -> PoseEstimates:
        """Landmarks of the people in ``rois`` of one frame.

        Args:
            image: ``(H, W, 3)`` uint8 BGR frame.
            rois: ``K`` ROIs, one a person.
            refine: ``(K,)`` bool: run a second pass on the ROI the first pass's landmarks
                give (for ROIs from a box; an ROI that followed last frame's landmarks is good
                enough as it is).
        """
        estimates = self.run(image, rois)
        again = np.flatnonzero(refine)
        if again.size == 0:
            return estimates
        second = self.run(image, estimates.next_rois.select(again))
        return _replace(estimates, again, second)

    def run(self, image: np.ndarray, rois: Rois) -> PoseEstimates:
        """One pass of the model over ``rois`` of ``image`` (a single batched call)."""
        k = len(rois)
        if k == 0:
            return _empty_estimates()
        to_image = crop_to_image(rois, self.crop_size)  # (K, 2, 3)
        inputs = cut_rois(image, to_image, self.crop_size).astype(np.float32) / _UINT8_MAX
        points, flag, heatmaps, world = self.session.run(self._outputs, {self._input: inputs})
        points = np.asarray(points, dtype=np.float64).reshape(k, -1, _VALUES_PER_POINT)
        xy = (
            refine_from_heatmaps(
                points[..., :2] / self.crop_size,
                np.asarray(heatmaps).reshape(k, *np.shape(heatmaps)[-3:]),
                self.config.heatmap_window,
                self.config.heatmap_min_confidence,
            )
            * self.crop_size
        )  # (K, 39, 2) crop pixels
        image_xy = np.einsum("kij,knj->kni", to_image[:, :, :2], xy) + to_image[:, None, :, 2]
        visibility = _sigmoid(points[:, :NUM_LANDMARKS, _VISIBILITY])
        landmarks = np.concatenate([image_xy[:, :NUM_LANDMARKS], visibility[..., None]], axis=2)
        # World points are in the crop's axes: turn them by the ROI's rotation (x, y; z stays).
        world = np.asarray(world, dtype=np.float64).reshape(k, -1, 3)[:, :NUM_LANDMARKS]
        cos, sin = np.cos(rois.rotations)[:, None], np.sin(rois.rotations)[:, None]
        turned = np.stack(
            [cos * world[..., 0] - sin * world[..., 1], sin * world[..., 0] + cos * world[..., 1]],
            axis=-1,
        )
        world = np.concatenate([turned, world[..., 2:]], axis=-1)
        next_rois = landmark_rois(
            image_xy[:, ROI_CENTRE], image_xy[:, ROI_SCALE], self.config.roi_scale
        )
        return PoseEstimates(
            landmarks.astype(np.float32),
            world.astype(np.float32),
            np.asarray(flag, dtype=np.float32).reshape(k),
            next_rois,
        )


def cut_rois(image: np.ndarray, to_image: np.ndarray, size: int) -> np.ndarray:
    """``(K, size, size, 3)`` uint8 RGB crops of a BGR ``image``: crop ``k``'s
    pixel ``c`` shows the image point ``to_image[k] @ (c, 1)``; outside the image is black
    (MediaPipe's zero border)."""
    crops = [
        cv2.warpAffine(
            image,
            affine,
            (size, size),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        for affine in to_image
    ]
    return np.stack(crops)[..., ::-1]


def refine_from_heatmaps(
    xy: np.ndarray, heatmaps: np.ndarray, window: int, min_confidence: float
) -> np.ndarray:
    """Landmarks moved to the confidence-weighted mean of their heatmap around them.

    As MediaPipe's ``RefineLandmarksFromHeatmapCalculator``: the heatmap's logits pass a
    sigmoid; within a ``window × window`` square around the landmark's cell (cut at the
    heatmap's edges) the weighted mean of the cells' indices, over the heatmap's side, replaces
    the landmark when the largest confidence there reaches ``min_confidence``. A landmark
    outside the heatmap stays.

    Args:
        xy: ``(K, P, 2)`` landmarks normalised to the crop, [0, 1].
        heatmaps: ``(K, h, w, P)`` logits.
        window: odd side of the window, heatmap cells.
        min_confidence: the largest confidence in the window needed to refine.

    Returns:
        ``(K, P, 2)`` refined, normalised.
    """
    k, height, width, points = heatmaps.shape
    half = (window - 1) // 2
    cols = np.floor(xy[..., 0] * width).astype(np.int64)  # (K, P)
    rows = np.floor(xy[..., 1] * height).astype(np.int64)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    offsets = np.arange(-half, half + 1)
    window_cols = cols[..., None] + offsets  # (K, P, window)
    window_rows = rows[..., None] + offsets
    valid = ((window_rows >= 0) & (window_rows < height))[..., :, None] & (
        (window_cols >= 0) & (window_cols < width)
    )[..., None, :]  # (K, P, window, window)
    r = np.clip(window_rows, 0, height - 1)[..., :, None]
    c = np.clip(window_cols, 0, width - 1)[..., None, :]
    person = np.arange(k)[:, None, None, None]
    point = np.arange(points)[None, :, None, None]
    confidence = _sigmoid(heatmaps[person, r, c, point]) * valid  # (K, P, window, window)
    total = confidence.sum(axis=(2, 3))  # (K, P)
    mean_col = (confidence * window_cols[..., None, :]).sum(axis=(2, 3))
    mean_row = (confidence * window_rows[..., :, None]).sum(axis=(2, 3))
    refine = inside & (confidence.max(axis=(2, 3)) >= min_confidence) & (total > 0)
    safe = np.where(total > 0, total, 1.0)
    refined = np.stack([mean_col / safe / width, mean_row / safe / height], axis=-1)
    return np.where(refine[..., None], refined, xy)


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def _replace(estimates: PoseEstimates, index: np.ndarray, new: PoseEstimates) -> PoseEstimates:
    """``estimates`` with the people at ``index`` replaced by ``new``'s."""
    arrays = []
    for old, part in zip(_arrays(estimates), _arrays(new), strict=True):
        array = old.copy()
        array[index] = part
        arrays.append(array)
    landmarks, world, scores, centres, sizes, rotations = arrays
    return PoseEstimates(landmarks, world, scores, Rois(centres, sizes, rotations))


def _arrays(estimates: PoseEstimates) -> tuple[np.ndarray, ...]:
    rois = estimates.next_rois
    return (
        estimates.landmarks,
        estimates.world_landmarks,
        estimates.scores,
        rois.centres,
        rois.sizes,
        rois.rotations,
    )


def _empty_estimates() -> PoseEstimates:
    none = np.zeros((0, NUM_LANDMARKS, 3), dtype=np.float32)
    return PoseEstimates(
        none, none.copy(), np.zeros(0, dtype=np.float32), Rois(np.zeros((0, 2)), *np.zeros((2, 0)))
    )
