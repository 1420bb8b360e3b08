"""Run a network over every person-frame of a dataset file, clip by clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress
from torch import nn

from training.data.video_clips import VideoClips
from training.evaluation.scoring import Predictions
from training.recipes import Recipe


def predict_dataset(
    model: nn.Module, recipe: Recipe, path: str | Path, *, device: str = "cpu"
) -> tuple[Predictions, dict[str, np.ndarray]]:
    """Predictions (and per-frame features) for every row of the dataset file at ``path``,
    and the file's arrays.

    Clips have the recipe's length and do not overlap, except the last of each track, which
    ends with the track; a row seen twice keeps its first prediction. Inputs are the file's
    precomputed features when the network reads features, else the cropped frames.
    """
    if recipe.training is None or recipe.data is None:
        raise ValueError(f"recipe {recipe.name} has no training and data sections")
    length = recipe.training.clip_length
    clips = VideoClips(
        [path],
        length,
        stride=length,
        crop_size=recipe.data.crop_size,
        crop_scale=recipe.data.crop_scale,
        cover_every_frame=True,
    )
    arrays = clips.files[0]
    rows = len(arrays["vid_name"])
    rotmat = np.zeros((rows, 24, 3, 3), dtype=np.float32)
    betas = np.zeros((rows, 10), dtype=np.float32)
    features: np.ndarray | None = None
    done = np.zeros(rows, dtype=bool)
    reads_features = getattr(recipe.model, "encoder", None) == "features"
    model.eval().to(device)
    with torch.no_grad(), Progress(transient=True) as progress:
        task = progress.add_task(f"predicting {Path(path).name}", total=len(clips))
        for index in range(len(clips)):
            clip = clips[index]
            if reads_features:
                out = model(features=clip["features"][None].to(device))
            else:
                out = model(clip["frames"][None].to(device))
            clip_rows = clips.rows(index)[1]
            new = ~done[clip_rows]
            rotmat[clip_rows[new]] = out["rotmat"][0, new].cpu().numpy()
            betas[clip_rows[new]] = out["betas"][0, new].cpu().numpy()
            if features is None:
                features = np.zeros((rows, out["features"].shape[-1]), dtype=np.float32)
            features[clip_rows[new]] = out["features"][0, new].cpu().numpy()
            done[clip_rows] = True
            progress.advance(task)
    return Predictions(rotmat=rotmat, betas=betas, features=features), arrays
