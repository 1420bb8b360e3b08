"""MAED's training augmentation (MAED §4.2), drawn once per clip and applied to every frame.

MAED flips, randomly crops, randomly erases and colour-jitters its inputs, and "different
frames of the same video input share consistent augmentation parameters": one
:class:`Augmentation` is drawn per clip with :func:`draw_augmentation` and every frame goes
through the same functions with it. The crop jitter is relative to each frame's own box, so
the crop still follows the person.

Order, per frame: jitter the box (:func:`jitter_box`) before cropping; then on the crop
:func:`augment_crop` flips, jitters the colours and erases; the labels are flipped with
:func:`augment_labels` and the mask with :func:`augment_mask`. Erasing hides pixels only: the
labels and the mask keep the person behind the rectangle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from training.data.batch import IMAGE_MEAN
from training.data.flip import flip_image, flip_joints_3d, flip_keypoints_2d, flip_pose

# The usual probability of a horizontal flip (SPIN, VIBE, MAED flip half the samples).
FLIP_PROBABILITY = 0.5
# Crop scale jitter: the crop's side is multiplied by a factor within 1 ± this (SPIN's
# scale_factor of 0.25; VIBE's image augmentation draws 1.2 ± 0.3, the same ±25 %).
SCALE_JITTER = 0.25
# Crop centre jitter, a fraction of the crop's side in x and y. MAED's paper gives no value;
# a tenth keeps a box-centred person mostly inside the crop at any drawn scale.
SHIFT_JITTER = 0.1
# Brightness, contrast and saturation factors within 1 ± this (VIBE's image augmentation
# uses a colour factor of 0.2; MAED's paper gives no value).
COLOUR_JITTER = 0.2
# Random erasing (Zhong et al. 2020, MAED's [44]) with that paper's defaults: probability,
# the erased area as a fraction of the crop, and the rectangle's aspect ratio range.
ERASE_PROBABILITY = 0.5
ERASE_AREA = (0.02, 0.4)
ERASE_ASPECT = (0.3, 1 / 0.3)
# ITU-R BT.601 luma weights of R, G, B: the grey that saturation and contrast blend towards.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Augmentation:
    """One draw of the augmentation, shared by all frames of a clip.

    Attributes:
        flip: mirror the frame and the labels.
        shift: ``(dx, dy)`` move of the crop's centre, as fractions of the crop's side.
        scale: factor on the crop's side (> 1 zooms out).
        brightness, contrast, saturation: colour factors (1: unchanged).
        erase: ``(x0, y0, width, height)`` of the erased rectangle as fractions of the crop's
            side, or None for no erasing.
    """

    flip: bool = False
    shift: tuple[float, float] = (0.0, 0.0)
    scale: float = 1.0
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    erase: tuple[float, float, float, float] | None = None


# The identity, for evaluation and for training without augmentation.
NO_AUGMENTATION = Augmentation()


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _draw_erase(generator: torch.Generator) -> tuple[float, float, float, float]:
    """A rectangle of random area and aspect ratio at a random place inside the crop."""
    area = _uniform(generator, *ERASE_AREA)
    # Aspect ratios are drawn on a log scale so that r and 1/r are equally likely.
    log_aspect = _uniform(generator, *np.log(ERASE_ASPECT))
    aspect = float(np.exp(log_aspect))
    width = min(1.0, float(np.sqrt(area / aspect)))
    height = min(1.0, float(np.sqrt(area * aspect)))
    x0 = _uniform(generator, 0.0, 1.0 - width)
    y0 = _uniform(generator, 0.0, 1.0 - height)
    return (x0, y0, width, height)


def draw_augmentation(generator: torch.Generator) -> Augmentation:
    """Draw one augmentation from ``generator`` (same generator state, same draw)."""
    flip = _uniform(generator, 0.0, 1.0) < FLIP_PROBABILITY
    shift = (
        _uniform(generator, -SHIFT_JITTER, SHIFT_JITTER),
        _uniform(generator, -SHIFT_JITTER, SHIFT_JITTER),
    )
    scale = _uniform(generator, 1.0 - SCALE_JITTER, 1.0 + SCALE_JITTER)
    brightness, contrast, saturation = (
        _uniform(generator, 1.0 - COLOUR_JITTER, 1.0 + COLOUR_JITTER) for _ in range(3)
    )
    # Both erasing draws are made whether or not it is used, so the number of draws is fixed.
    erase_rectangle = _draw_erase(generator)
    erase = erase_rectangle if _uniform(generator, 0.0, 1.0) < ERASE_PROBABILITY else None
    return Augmentation(flip, shift, scale, brightness, contrast, saturation, erase)


def jitter_box(
    centre: np.ndarray, side: float, augmentation: Augmentation
) -> tuple[np.ndarray, float]:
    """Move and scale a square crop ``(centre (2,), side)`` by the draw."""
    shifted = centre + side * np.asarray(augmentation.shift)
    return shifted, side * augmentation.scale


def _jitter_colour(image: np.ndarray, augmentation: Augmentation) -> np.ndarray:
    """Brightness, then contrast (towards the mean grey), then saturation (towards grey)."""
    image = image * augmentation.brightness
    grey = image @ _LUMA
    image = (image - grey.mean()) * augmentation.contrast + grey.mean()
    grey = image @ _LUMA
    image = (image - grey[..., None]) * augmentation.saturation + grey[..., None]
    return np.clip(image, 0.0, 1.0)


def augment_crop(image: np.ndarray, augmentation: Augmentation) -> np.ndarray:
    """Flip, colour-jitter and erase an ``(S, S, 3)`` float RGB crop in [0, 1].

    The erased rectangle is filled with :data:`IMAGE_MEAN`, which the input normalisation
    turns into zeros, the value :mod:`training.data.occlusion` fills its boxes with too.
    """
    if augmentation.flip:
        image = flip_image(image)
    image = _jitter_colour(image.astype(np.float32), augmentation)
    if augmentation.erase is not None:
        size = image.shape[0]
        x0, y0, width, height = (round(value * size) for value in augmentation.erase)
        image[y0 : y0 + height, x0 : x0 + width] = np.asarray(IMAGE_MEAN, dtype=np.float32)
    return image


def augment_mask(mask: np.ndarray, augmentation: Augmentation) -> np.ndarray:
    """Flip an ``(S, S)`` mask with the crop (erasing does not remove the person)."""
    return flip_image(mask) if augmentation.flip else mask


def augment_labels(
    keypoints_2d: np.ndarray, joints_3d: np.ndarray, pose: np.ndarray, augmentation: Augmentation
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flip ``(T, 49, 3)`` crop keypoints, ``(T, 49, 4)`` joints and ``(T, 72)`` pose."""
    if not augmentation.flip:
        return keypoints_2d, joints_3d, pose
    return flip_keypoints_2d(keypoints_2d), flip_joints_3d(joints_3d), flip_pose(pose)
