"""Backgrounds of synthetic videos: a real street photo and procedural textures.

The street (``assets/street.jpg``) is the per-pixel temporal median of OpenCV's sample video
``vtest.avi`` (OpenCV sample data, Debian package ``opencv-doc``; Apache-2.0 / BSD-3-Clause):
the walkers move, the street does not, so the median removes them. It is made once by
:func:`build_street_background` and committed.

Procedural textures (value noise, stripes, gradients, checkers) add backgrounds no network can
memorise. Every background is drawn wider than the frame so that a panning camera can slide
over it (see :func:`background_window`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

STREET_PATH = Path(__file__).parent / "assets" / "street.jpg"
# Every STREET_FRAME_STEP-th frame enters the median: 795 frames of 768×576 would hold 1 GB;
# one frame in five (~160 frames, 16 s of the 10 fps video) still sees every walker move on.
STREET_FRAME_STEP = 5
# Small asset, little loss: the frames are re-encoded as JPEG by the generator anyway.
STREET_JPEG_QUALITY = 85
TEXTURE_KINDS = ("street", "noise", "stripes", "gradient", "checkers")
# Value noise: coarse grid cells per image side, in octaves doubling the frequency.
NOISE_BASE_CELLS = (2, 8)
NOISE_OCTAVES = 4
# Stripe and checker periods in pixels: visible at 160–640 px frames, never a single pixel.
PATTERN_PERIOD_PX = (8, 64)
# Brightness and contrast jitter of the street photo, so it is never seen twice the same.
STREET_GAIN = (0.6, 1.3)
STREET_BIAS = (-30.0, 30.0)
# The street is cropped at this fraction of its size at least, then scaled to the canvas.
STREET_MIN_CROP = 0.5


def build_street_background(
    video: str | Path, out: str | Path = STREET_PATH, frame_step: int = STREET_FRAME_STEP
) -> np.ndarray:
    """Write the temporal median of ``video`` (every ``frame_step``-th frame) as a JPEG.

    Returns the ``(H, W, 3)`` uint8 BGR median. This made ``assets/street.jpg`` from
    ``/work/shared/data/vtest.avi``.
    """
    capture = cv2.VideoCapture(str(video))
    frames = []
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % frame_step == 0:
            frames.append(frame)
        index += 1
    capture.release()
    if not frames:
        raise ValueError(f"could not read any frame of {video}")
    median = np.median(np.stack(frames), axis=0).round().astype(np.uint8)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), median, [cv2.IMWRITE_JPEG_QUALITY, STREET_JPEG_QUALITY]):
        raise OSError(f"could not write {out}")
    return median


def _colours(rng: np.random.Generator, count: int) -> np.ndarray:
    """``(count, 3)`` random BGR colours, float in [0, 255]."""
    return rng.uniform(0.0, 255.0, (count, 3))


def _value_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Multi-octave value noise ``(H, W)`` in [0, 1]: random grids upsampled smoothly."""
    total = np.zeros((height, width))
    cells = int(rng.integers(*NOISE_BASE_CELLS, endpoint=True))
    weight_sum = 0.0
    for octave in range(NOISE_OCTAVES):
        side = cells * 2**octave
        grid = rng.uniform(0.0, 1.0, (side + 1, side + 1))
        weight = 0.5**octave
        total += weight * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        weight_sum += weight
    return np.clip(total / weight_sum, 0.0, 1.0)


def _mix(t: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Blend two colours ``(2, 3)`` by ``t (H, W)`` in [0, 1] → ``(H, W, 3)``."""
    return colours[0] * (1.0 - t[..., None]) + colours[1] * t[..., None]


def procedural_texture(rng: np.random.Generator, kind: str, height: int, width: int) -> np.ndarray:
    """A ``(H, W, 3)`` uint8 BGR texture of ``kind`` ("noise", "stripes", "gradient",
    "checkers") with random colours, scale and orientation."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    angle = rng.uniform(0.0, np.pi)
    along = cols * np.cos(angle) + rows * np.sin(angle)
    period = rng.uniform(*PATTERN_PERIOD_PX)
    if kind == "noise":
        image = _mix(_value_noise(rng, height, width), _colours(rng, 2))
    elif kind == "stripes":
        image = _mix((np.floor(along / period) % 2).astype(np.float64), _colours(rng, 2))
    elif kind == "gradient":
        t = (along - along.min()) / max(float(np.ptp(along)), 1.0)
        image = _mix(t, _colours(rng, 2))
    elif kind == "checkers":
        across = -cols * np.sin(angle) + rows * np.cos(angle)
        parity = (np.floor(along / period) + np.floor(across / period)) % 2
        image = _mix(parity, _colours(rng, 2))
    else:
        raise ValueError(f"unknown texture {kind!r}; choose from {TEXTURE_KINDS[1:]}")
    return np.clip(image, 0.0, 255.0).astype(np.uint8)


def street_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random crop of the street, scaled to ``(H, W, 3)`` uint8, brightness jittered and
    mirrored half of the time."""
    street = cv2.imread(str(STREET_PATH))
    if street is None:
        raise FileNotFoundError(f"the street background is missing from {STREET_PATH}")
    full_h, full_w = street.shape[:2]
    scale = rng.uniform(STREET_MIN_CROP, 1.0)
    # keep the canvas's aspect ratio: the largest such crop at this scale
    crop_w = min(full_w, full_h * width / height) * scale
    crop_h = crop_w * height / width
    left = rng.uniform(0.0, full_w - crop_w)
    top = rng.uniform(0.0, full_h - crop_h)
    crop = street[int(top) : int(top + crop_h), int(left) : int(left + crop_w)]
    image = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA).astype(np.float64)
    image = image * rng.uniform(*STREET_GAIN) + rng.uniform(*STREET_BIAS)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    return np.clip(image, 0.0, 255.0).astype(np.uint8)


def sample_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A background canvas ``(H, W, 3)`` uint8 BGR: the street or a procedural texture, each
    kind equally likely."""
    kind = TEXTURE_KINDS[int(rng.integers(len(TEXTURE_KINDS)))]
    if kind == "street":
        return street_background(rng, height, width)
    return procedural_texture(rng, kind, height, width)


def background_window(canvas: np.ndarray, width: int, shift: float) -> np.ndarray:
    """The ``width``-pixel-wide view of ``canvas`` starting ``shift`` pixels from its left
    (clamped to the canvas), as a scene at infinity looks to a camera that pans."""
    left = round(min(max(shift, 0.0), float(canvas.shape[1] - width)))
    return canvas[:, left : left + width]
