"""The keypoint families' evaluation on held-out synthetic landmark sequences.

As the papers evaluate on a test set of videos, a checkpoint of a keypoint family is run over
``count`` sequences of ``frames`` frames that training never drew: the recipe's held-out
motions (``val_clips``) with other seeds, each one person seen by one random camera
(:mod:`training.data.landmark_clips`), with exact landmarks or with the front-end's noise.
The network reads each sequence in overlapping windows blended as :func:`predict_dataset`
blends them, and :func:`training.evaluation.scoring.score` gives the papers' table.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from meshcast.progress import progress_bar
from training.body import BodyModel
from training.data.landmark_clips import LandmarkClips
from training.evaluation.predict import default_stride, window_weights
from training.evaluation.scoring import Predictions, score
from training.geometry import nearest_rotation
from training.recipes import LandmarkDataConfig, LandmarkNoise, Recipe

Noise = Literal["exact", "noisy"]
SPLIT = "test"  # its own seed stream: neither training's nor validation's items


def landmark_sequences(
    config: LandmarkDataConfig, *, count: int, frames: int, seed: int, noise: Noise, body: BodyModel
) -> tuple[list[torch.Tensor], dict[str, np.ndarray]]:
    """``count`` held-out sequences: each one's landmarks ``(frames, 33, 6)``, and their truth
    as a dataset file's arrays (one row per frame: ``vid_name``, ``frame_id``, ``pose``,
    ``shape``, ``valid``)."""
    clips = LandmarkClips(  # a split other than "train" moves with the held-out clips
        config.model_copy(update={"frames": frames}),
        frames,
        split=SPLIT,
        seed=seed,
        body=body,
        noise=LandmarkNoise() if noise == "exact" else None,
    )
    landmarks, names, poses, shapes = [], [], [], []
    for index in range(count):
        clip = clips.make_clip(np.random.default_rng([seed, index]))
        landmarks.append(clip["landmarks"])
        names += [f"seq{index:03d}"] * frames
        poses.append(clip["pose"].numpy())
        shapes.append(clip["betas"].numpy())
    truth = {
        "vid_name": np.asarray(names),
        "frame_id": np.tile(np.arange(frames), count),
        "pose": np.concatenate(poses),
        "shape": np.concatenate(shapes),
        "valid": np.ones(count * frames, dtype=np.float32),
    }
    return landmarks, truth


def window_starts(frames: int, length: int, stride: int) -> list[int]:
    """Starts of windows of ``length`` every ``stride`` frames, the last ending with the
    sequence."""
    last = max(frames - length, 0)
    return sorted({*range(0, last + 1, stride), last})


def predict_sequences(
    model: nn.Module, sequences: list[torch.Tensor], length: int, stride: int
) -> Predictions:
    """Per-frame rotations and β of every sequence, in order, from overlapping windows blended
    by :func:`window_weights` (rotations: the nearest rotation to the weighted mean)."""
    rotmats, betas = [], []
    model.eval()
    with torch.no_grad(), progress_bar(transient=True) as progress:
        task = progress.add_task("predicting sequences", total=len(sequences))
        for sequence in sequences:
            frames = len(sequence)
            rotmat = np.zeros((frames, 24, 3, 3), dtype=np.float32)
            beta = np.zeros((frames, 10), dtype=np.float32)
            weight = np.zeros(frames, dtype=np.float32)
            for start in window_starts(frames, length, stride):
                out = model(sequence[None, start : start + length])
                w = window_weights(min(length, frames - start))
                rows = slice(start, start + len(w))
                rotmat[rows] += w[:, None, None, None] * out["rotmat"][0].numpy()
                beta[rows] += w[:, None] * out["betas"][0].numpy()
                weight[rows] += w
            rotmats.append(nearest_rotation(torch.from_numpy(rotmat)).numpy())
            betas.append(beta / weight[:, None])
            progress.advance(task)
    return Predictions(rotmat=np.concatenate(rotmats), betas=np.concatenate(betas))


def evaluate_on_sequences(
    model: nn.Module,
    recipe: Recipe,
    body: BodyModel,
    *,
    count: int,
    frames: int,
    seed: int,
    noise: Noise,
    stride: int | None = None,
) -> dict[str, float]:
    """The papers' table (mm) of a keypoint-family network on held-out sequences."""
    if not isinstance(recipe.data, LandmarkDataConfig) or recipe.training is None:
        raise ValueError(f"{recipe.name} is not trained on synthetic landmarks")
    length = recipe.training.clip_length
    sequences, truth = landmark_sequences(
        recipe.data, count=count, frames=frames, seed=seed, noise=noise, body=body
    )
    predictions = predict_sequences(model, sequences, length, stride or default_stride(length))
    return score(predictions, truth, body)
