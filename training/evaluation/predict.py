"""Run a network over every person-frame of a dataset file, in overlapping windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from meshcast.progress import progress_bar
from training.data.video_clips import VideoClips
from training.evaluation.scoring import Predictions
from training.geometry import nearest_rotation
from training.recipes import DataConfig, Recipe


def window_weights(length: int) -> np.ndarray:
    """``(length,)`` blending weights of a window's frames: 1, 2, … at the edges, most in the
    middle. A temporal model sees least context at a window's ends, so its neighbours, which
    see those frames in their middle, decide them."""
    positions = np.arange(length)
    return np.minimum(positions + 1, length - positions).astype(np.float32)


def default_stride(length: int) -> int:
    """Frames between windows of ``length`` when none is asked for: half a window."""
    return max(1, length // 2)


def predict_dataset(
    model: nn.Module,
    recipe: Recipe,
    path: str | Path,
    *,
    device: str = "cpu",
    stride: int | None = None,
) -> tuple[Predictions, dict[str, np.ndarray]]:
    """Predictions (and per-frame features) for every row of the dataset file at ``path``,
    and the file's arrays.

    Windows have the recipe's clip length and start every ``stride`` frames of a track (default:
    half a window), the last one ending with the track. Where windows overlap, their
    predictions are blended with :func:`window_weights`: β and features as weighted means,
    rotations as the nearest rotation to the weighted mean, so no seam between windows jumps.
    Inputs are the file's precomputed features when the network reads features, else the
    cropped frames.
    """
    if recipe.training is None or not isinstance(recipe.data, DataConfig):
        raise ValueError(f"recipe {recipe.name} has no training section or no dataset files")
    length = recipe.training.clip_length
    stride = default_stride(length) if stride is None else stride
    if not 1 <= stride <= length:
        raise ValueError(f"the window stride must be between 1 and {length}, not {stride}")
    clips = VideoClips(
        [path],
        length,
        stride=stride,
        crop_size=recipe.data.crop_size,
        crop_scale=recipe.data.crop_scale,
        cover_every_frame=True,
    )
    arrays = clips.files[0]
    rows = len(arrays["vid_name"])
    rotmat = np.zeros((rows, 24, 3, 3), dtype=np.float32)  # weighted sums until the end
    betas = np.zeros((rows, 10), dtype=np.float32)
    features: np.ndarray | None = None
    weight = np.zeros(rows, dtype=np.float32)
    reads_features = getattr(recipe.model, "encoder", None) == "features"
    model.eval().to(device)
    with torch.no_grad(), progress_bar(transient=True) as progress:
        task = progress.add_task(f"predicting {Path(path).name}", total=len(clips))
        for index in range(len(clips)):
            clip = clips[index]
            if reads_features:
                out = model(features=clip["features"][None].to(device))
            else:
                out = model(clip["frames"][None].to(device))
            clip_rows = clips.rows(index)[1]
            w = window_weights(len(clip_rows))
            rotmat[clip_rows] += w[:, None, None, None] * out["rotmat"][0].cpu().numpy()
            betas[clip_rows] += w[:, None] * out["betas"][0].cpu().numpy()
            if features is None:
                features = np.zeros((rows, out["features"].shape[-1]), dtype=np.float32)
            features[clip_rows] += w[:, None] * out["features"][0].cpu().numpy()
            weight[clip_rows] += w
            progress.advance(task)
    seen = weight > 0
    rotmat[seen] = nearest_rotation(torch.from_numpy(rotmat[seen])).numpy()
    betas[seen] /= weight[seen, None]
    if features is not None:
        features[seen] /= weight[seen, None]
    return Predictions(rotmat=rotmat, betas=betas, features=features), arrays
