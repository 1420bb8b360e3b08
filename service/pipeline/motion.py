"""Movement that no followed person explains: the cue to search a frame out of turn.

When the detector searches only every N-th frame (:attr:`~service.pipeline.run.DetectorConfig.
every`), someone who walks in would wait for the next searched frame. So every frame is compared
with the one before, grey and small: where pixels changed outside every followed person's region
(their boxes, widened by how far a person moves between frames), in a patch as large as a
distant person, something new moves and the frame is searched.

A camera that pans or tilts moves the whole picture: the frame before is first shifted by the
picture's own movement, found by phase correlation (a translation, in whole and part pixels), so
that only what moves in the scene differs, and the strip that came into view at the edge is not
compared. A camera that zooms, turns or shakes faster than that still moves everything, and then
every frame is searched, as with N = 1: the cue can cost speed, never people.
"""

from __future__ import annotations

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

# Changed pixels joined into patches: 8-connected, after an opening that drops lone pixels
# (sensor noise, compression blocks' edges).
_OPENING = np.ones((3, 3), np.uint8)
_CONNECTIVITY = 8


class MotionConfig(BaseModel):
    """When a frame's movement calls for a search (:class:`NewMotion`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Frames are compared this many pixels wide: a 768 × 576 frame becomes 320 × 240, where
    # noise averages out, a distant walker's outline is still a few pixels thick, and the
    # comparison costs about a millisecond.
    width: PositiveInt = 320
    # A pixel changed when its grey level moved by this much (of 255): above the noise of a
    # compressed video's static background.
    threshold: int = Field(default=15, ge=1, le=255)
    # A followed person's box is widened by this share of its size on each side: where their
    # limbs may be in the next frame.
    margin: float = Field(default=0.25, ge=0.0)
    # The smallest changed patch that is worth a search, as a share of the frame: about a tenth
    # of a walker far away in vtest.avi (40 × 100 pixels of 768 × 576 is 0.9 %), since between
    # two frames of someone walking only their outline changes. Chosen on vtest.avi's own
    # tracks (`meshcast bench motion`, docs/results.md): the cue fires on 4 % of its frames,
    # for 22 of its 49 new tracks; at 160 pixels wide, 25 grey levels and 0.2 %, for 2.
    min_area: float = Field(default=0.001, gt=0.0, lt=1.0)
    # The frame before is also compared shifted by the picture's movement when phase
    # correlation finds a shift of at least this many pixels of the small frame, with a peak of
    # at least camera_response (OpenCV's normalised response, 0–1); the comparison with fewer
    # changed pixels is kept. Walkers pull a still camera's peak too, which that choice absorbs
    # (shifting whenever the peak moved half a pixel fired on 6.4 % of vtest.avi's frames
    # instead of 4.0 %, docs/results.md). None: never shift.
    camera_shift: float | None = Field(default=0.5, gt=0.0)
    camera_response: float = Field(default=0.2, ge=0.0, le=1.0)


class NewMotion:
    """Compares each frame with the one before (:meth:`moves_outside`)."""

    def __init__(self, config: MotionConfig) -> None:
        self.config = config
        self._previous: np.ndarray | None = None  # (h, w) float32, the last frame small and grey
        self._window: np.ndarray | None = None  # (h, w) float32, phase correlation's taper

    def moves_outside(self, image: np.ndarray, boxes: np.ndarray) -> bool:
        """Whether ``image`` ``(H, W, 3)`` BGR changed from the previous one given, outside
        ``boxes`` ``(N, 4)`` (x1, y1, x2, y2 pixels), in a patch of ``min_area`` or more, once
        the previous one is shifted by the camera's movement. False for the first image, or
        one of another size."""
        cfg = self.config
        height, width = image.shape[:2]
        scale = cfg.width / width
        size = (cfg.width, max(1, round(height * scale)))
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        previous, self._previous = self._previous, small
        if previous is None or previous.shape != small.shape:
            return False
        changed = self._changed(previous, small)
        for x1, y1, x2, y2 in _widened(boxes, cfg.margin) * scale:
            changed[_span(y1, y2, size[1]), _span(x1, x2, size[0])] = 0
        patches = cv2.morphologyEx(changed, cv2.MORPH_OPEN, _OPENING)
        count, _, stats, _ = cv2.connectedComponentsWithStats(patches, connectivity=_CONNECTIVITY)
        largest = stats[1:, cv2.CC_STAT_AREA].max(initial=0)  # row 0 is the background
        return bool(count > 1 and largest >= cfg.min_area * patches.size)

    def _changed(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        """``(h, w)`` uint8, 1 where ``current`` differs from ``previous`` by ``threshold`` or
        more: ``previous`` as it is, or shifted by the whole picture's movement where that
        leaves fewer pixels changed (movers pull a still camera's correlation peak by up to a
        pixel, and a shift that follows them would show the whole background as changed)."""
        cfg = self.config
        changed = cv2.absdiff(current, previous) >= cfg.threshold
        if cfg.camera_shift is None or np.count_nonzero(changed) < cfg.min_area * changed.size:
            # Too few changed pixels for any patch to call a search: no shift can matter.
            return changed.astype(np.uint8)
        if self._window is None or self._window.shape != current.shape:
            self._window = cv2.createHanningWindow(current.shape[::-1], cv2.CV_32F)
        # Tapered copies: given the taper, OpenCV 4.14's phaseCorrelate multiplies its inputs
        # by it in place, and these frames are compared afterwards.
        tapered = (previous * self._window, current * self._window)
        (dx, dy), response = cv2.phaseCorrelate(*tapered)
        if np.hypot(dx, dy) >= cfg.camera_shift and response >= cfg.camera_response:
            height, width = current.shape
            move = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
            shifted = cv2.warpAffine(previous, move, (width, height), flags=cv2.INTER_LINEAR)
            followed = cv2.absdiff(current, shifted) >= cfg.threshold
            # The strip that came into view has nothing to compare with.
            valid = np.zeros(current.shape, bool)
            valid[_shifted_inside(dy, height), _shifted_inside(dx, width)] = True
            followed &= valid
            if np.count_nonzero(followed) < np.count_nonzero(changed):
                changed = followed
        return changed.astype(np.uint8)


def _widened(boxes: np.ndarray, margin: float) -> np.ndarray:
    """``(N, 4)`` boxes grown by ``margin`` of their width and height on each side."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    grow = (boxes[:, 2:] - boxes[:, :2]) * margin  # (N, 2)
    return np.concatenate([boxes[:, :2] - grow, boxes[:, 2:] + grow], axis=1)


def _span(start: float, stop: float, length: int) -> slice:
    """The whole pixels from ``start`` to ``stop`` (rounded outwards), within ``length``."""
    return slice(max(0, int(np.floor(start))), min(length, int(np.ceil(stop))))


def _shifted_inside(shift: float, length: int) -> slice:
    """The whole pixels ``x`` of a row or column of ``length`` whose source ``x - shift`` lies
    within it, where a frame shifted by ``shift`` has a pixel."""
    return slice(max(0, int(np.ceil(shift))), min(length, int(np.floor(length - 1 + shift)) + 1))
