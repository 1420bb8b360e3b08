"""MAED's augmentation: reproducible draws within the stated ranges, and what each part does."""

from __future__ import annotations

import numpy as np
import torch

from training.data.augment import (
    COLOUR_JITTER,
    ERASE_AREA,
    FLIP_PROBABILITY,
    NO_AUGMENTATION,
    SCALE_JITTER,
    SHIFT_JITTER,
    Augmentation,
    augment_crop,
    augment_labels,
    augment_mask,
    draw_augmentation,
    jitter_box,
)
from training.data.batch import IMAGE_MEAN
from training.data.flip import flip_pose

DRAWS = 400
# A Bernoulli(0.5) frequency over 400 draws stays within ±0.1 but for 1e-4 of seeds.
FREQUENCY_SLACK = 0.1


def draws(seed: int = 0) -> list[Augmentation]:
    generator = torch.Generator().manual_seed(seed)
    return [draw_augmentation(generator) for _ in range(DRAWS)]


def test_same_seed_same_draw():
    assert draw_augmentation(torch.Generator().manual_seed(3)) == draw_augmentation(
        torch.Generator().manual_seed(3)
    )
    assert draws(0) != draws(1)


def test_draws_stay_in_their_ranges():
    sample = draws()
    assert abs(np.mean([a.flip for a in sample]) - FLIP_PROBABILITY) < FREQUENCY_SLACK
    assert all(abs(d) <= SHIFT_JITTER for a in sample for d in a.shift)
    assert all(abs(a.scale - 1) <= SCALE_JITTER for a in sample)
    for a in sample:
        for factor in (a.brightness, a.contrast, a.saturation):
            assert abs(factor - 1) <= COLOUR_JITTER
    erased = [a.erase for a in sample if a.erase is not None]
    assert 0 < len(erased) < DRAWS
    for x0, y0, width, height in erased:
        assert x0 >= 0
        assert x0 + width <= 1
        assert y0 >= 0
        assert y0 + height <= 1
        assert width * height <= ERASE_AREA[1] + 1e-9


def test_no_augmentation_is_the_identity():
    image = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    np.testing.assert_allclose(augment_crop(image, NO_AUGMENTATION), image, atol=1e-6)
    centre, side = jitter_box(np.array([3.0, 4.0]), 10.0, NO_AUGMENTATION)
    np.testing.assert_array_equal(centre, (3, 4))
    assert side == 10.0


def test_box_jitter_is_relative_to_the_box():
    augmentation = Augmentation(shift=(0.1, -0.05), scale=1.2)
    centre, side = jitter_box(np.array([100.0, 50.0]), 40.0, augmentation)
    np.testing.assert_allclose(centre, (104, 48))
    assert side == 48.0


def test_colour_and_erasing():
    image = np.random.default_rng(0).random((20, 20, 3)).astype(np.float32) * 0.5
    grey = augment_crop(image, Augmentation(saturation=0.0))
    np.testing.assert_allclose(grey[..., 0], grey[..., 2], atol=1e-6)
    brighter = augment_crop(image, Augmentation(brightness=1.5))
    np.testing.assert_allclose(brighter, image * 1.5, atol=1e-6)
    erased = augment_crop(image, Augmentation(erase=(0.25, 0.5, 0.5, 0.25)))
    np.testing.assert_allclose(erased[10:15, 5:15], np.broadcast_to(IMAGE_MEAN, (5, 10, 3)))
    outside = np.ones((20, 20), dtype=bool)
    outside[10:15, 5:15] = False
    np.testing.assert_allclose(erased[outside], image[outside], atol=1e-6)


def test_flip_hits_images_masks_and_labels_together():
    flip = Augmentation(flip=True)
    image = np.zeros((4, 4, 3), dtype=np.float32)
    image[0, 0] = 0.5
    assert augment_crop(image, flip)[0, 3, 0] == 0.5
    mask = np.zeros((4, 4), dtype=np.float32)
    mask[1, 0] = 1.0
    assert augment_mask(mask, flip)[1, 3] == 1.0
    rng = np.random.default_rng(0)
    keypoints, joints = rng.random((2, 49, 3)), rng.random((2, 49, 4))
    pose = rng.random((2, 72)).astype(np.float32)
    _, _, flipped_pose = augment_labels(keypoints, joints, pose, flip)
    np.testing.assert_array_equal(flipped_pose, flip_pose(pose))
    unchanged = augment_labels(keypoints, joints, pose, NO_AUGMENTATION)
    assert unchanged[0] is keypoints
    assert unchanged[2] is pose
