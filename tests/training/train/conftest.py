"""Tiny training recipes and in-memory datasets of exact synthetic clips."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch.utils.data import Dataset

from tests.support.synthetic import make_sequences
from training.body import BodyModel, load_body_model
from training.data.batch import Clip
from training.geometry import rotmats_to_smpl_pose, weak_perspective_project
from training.recipes import Recipe, load_recipe
from training.train.loop import TrainingData

RecipeMaker = Callable[..., Recipe]
TINY_RECIPES = Path(__file__).parents[2] / "support" / "recipes"
LOCAL_RECIPES = Path(__file__).parent / "recipes"
NUM_SEQUENCES = 4
IMAGE_SIZE = 64
FEATURE_DIM = 32  # spsnet_tiny's
BASE_OF = {"spsnet_train": "spsnet_tiny", "maed_train": "maed_tiny"}


class ClipList(Dataset[Any]):
    """A list of items as a map-style dataset."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Any:
        return self.items[index]


def _local_recipe(name: str, folder: Path, **changes: Any) -> Recipe:
    """A test-local recipe (``recipes/NAME.yaml`` over its tiny base), with ``changes`` merged
    over it section by section (e.g. ``losses={"mask": 0}``)."""
    overlay = yaml.safe_load((LOCAL_RECIPES / f"{name}.yaml").read_text())
    for section, values in changes.items():
        overlay[section] = {**overlay.get(section, {}), **values}
    path = folder / f"{name}.yaml"
    base = TINY_RECIPES / f"{BASE_OF[name]}.yaml"
    path.write_text(yaml.safe_dump({"extends": str(base), **overlay}))
    return load_recipe(path)


def _make_clips(body: BodyModel, num_frames: int, seed: int = 0) -> list[Clip]:
    """Exact clips of the walk clip on ``body``, in the reader's contract (49 joints)."""
    data = make_sequences(
        body,
        num_sequences=NUM_SEQUENCES,
        num_frames=num_frames,
        image_size=IMAGE_SIZE,
        feature_dim=FEATURE_DIM,
        seed=seed,
    )
    n, t = data.betas.shape[:2]
    with torch.no_grad():
        vertices = body(data.rotmat.flatten(0, 1), data.betas.flatten(0, 1)).vertices
        joints = body.regress_joints(vertices, "spin49").reshape(n, t, 49, 3)
    ones = torch.ones(n, t, 49, 1)
    keypoints = torch.cat([weak_perspective_project(joints, data.cam), ones], dim=-1)
    pose = rotmats_to_smpl_pose(data.rotmat.flatten(0, 1)).reshape(n, t, 72)
    return [
        Clip(
            frames=data.frames[i],
            keypoints_2d=keypoints[i],
            joints_3d=torch.cat([joints[i], ones[i]], dim=-1),
            pose=pose[i],
            betas=data.betas[i],
            has_smpl=torch.ones(t, dtype=torch.bool),
            frame_ids=torch.arange(t),
            features=data.features[i],
            mask=data.frames[i, :, 0],
            has_mask=torch.ones(t, dtype=torch.bool),
        )
        for i in range(n)
    ]


def _make_motion(clips: list[Clip]) -> ClipList:
    """Real motion windows: the clips' own poses and shapes."""
    return ClipList([{"pose": clip["pose"], "betas": clip["betas"][0]} for clip in clips])


@pytest.fixture(scope="session")
def body() -> BodyModel:
    return load_body_model("standin")


@pytest.fixture(scope="session")
def training_data(body: BodyModel) -> TrainingData:
    """Clips of T + 1 = 5 frames for training (L_camera), of 4 for validation, and motion."""
    train = _make_clips(body, num_frames=5)
    val = _make_clips(body, num_frames=4, seed=1)
    return TrainingData(ClipList(train), ClipList(val), _make_motion(val))


@pytest.fixture(scope="session")
def maed_data(body: BodyModel) -> TrainingData:
    """Clips of 4 frames (maed_tiny's length) for training and validation."""
    return TrainingData(ClipList(_make_clips(body, 4)), ClipList(_make_clips(body, 4, seed=1)))


@pytest.fixture
def local_recipe(tmp_path: Path) -> RecipeMaker:
    """``local_recipe(name, **changes)``: a test-local recipe, see :func:`_local_recipe`."""

    def make(name: str, **changes: Any) -> Recipe:
        return _local_recipe(name, tmp_path, **changes)

    return make
