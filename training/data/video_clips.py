"""Training clips from VIBE/MAED dataset files: T consecutive frames of one person track.

Rows are grouped into tracks by ``vid_name`` (per file), sorted by ``frame_id`` and cut into
runs of consecutive frame ids, so that no clip crosses a track or a gap. Clips start every
``stride`` frames of a run (MAED §4.2: 16-frame clips at an interval of 8). With
``extra_frames=1`` a clip holds T + 1 frames: the trainer cuts from it the two segments
shifted by one frame of SPS-Net's camera consistency loss (SPS-Net §4.1).

Each frame is cropped around its box (:mod:`training.data.crops`) and, when ``augment`` is on,
goes through one augmentation draw shared by the clip (:mod:`training.data.augment`). The draw
comes from a generator seeded by ``(seed, index, epoch)``: the same item of the same epoch is
the same clip in every run and in every worker.

Missing optional fields: without ``pose``/``shape`` (2D-only data) pose and betas are zeros and
``has_smpl`` is False; without ``joints3D`` the joints are zeros of validity 0; ``valid == 0``
marks a row whose SMPL and 3D ground truth are not to be trusted (both are switched off);
``features`` and ``mask``/``has_mask`` are returned only when the file has ``features`` or
``mask_name``. A mask whose file does not exist counts as missing (``has_mask`` False).
Precomputed features describe the unflipped image, so clips with features are never flipped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from training.data.augment import (
    NO_AUGMENTATION,
    Augmentation,
    augment_crop,
    augment_labels,
    augment_mask,
    draw_augmentation,
    jitter_box,
)
from training.data.batch import IMAGE_MEAN, IMAGE_STD, Clip
from training.data.crops import (
    crop_frame,
    keypoints_to_crop,
    read_gray,
    square_box,
    warp_to_crop,
)
from training.data.dataset_file import NUM_JOINTS_49, read_dataset_file
from training.recipes.schema import DataConfig, TrainingConfig

POSE_SIZE = 72
NUM_BETAS = 10
# A generator seed is drawn from 32 bits of the mixed (seed, index, epoch) state.
_SEED_WORDS = 1
_UINT8_MAX = float(np.iinfo(np.uint8).max)
_MEAN = np.asarray(IMAGE_MEAN, dtype=np.float32)
_STD = np.asarray(IMAGE_STD, dtype=np.float32)


def track_runs(vid_names: np.ndarray, frame_ids: np.ndarray) -> list[np.ndarray]:
    """Row indices of each run of consecutive frames of one track, in frame order.

    A new run starts at a new ``vid_name`` and wherever the frame id does not grow by
    exactly 1 (a gap, or a repeated frame).
    """
    order = np.lexsort((frame_ids, vid_names))
    names, ids = vid_names[order], frame_ids[order].astype(np.int64)
    breaks = np.flatnonzero((names[1:] != names[:-1]) | (np.diff(ids) != 1)) + 1
    return [run for run in np.split(order, breaks) if len(run)]


class VideoClips(Dataset[Clip]):
    """Clips of ``clip_length (+ extra_frames)`` frames from one or more dataset files.

    Items are ordered by file, then track, then start frame; ``set_epoch`` changes the
    augmentation draws (not the clips).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        clip_length: int,
        stride: int,
        *,
        crop_size: int = 224,
        crop_scale: float = 1.1,
        augment: bool = False,
        extra_frames: int = 0,
        seed: int = 0,
        cover_every_frame: bool = False,
    ) -> None:
        """``cover_every_frame`` (for evaluation): every row lies in a clip, so clips start
        every ``stride`` frames, the last one ends with its track, and a track shorter than a
        clip is one shorter clip."""
        if clip_length < 1 or stride < 1 or extra_frames < 0:
            raise ValueError("clip_length and stride must be positive, extra_frames >= 0")
        self.files = [read_dataset_file(path) for path in paths]
        self.frames_per_clip = clip_length + extra_frames
        self.crop_size = crop_size
        self.crop_scale = crop_scale
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        # (file, row indices) of every clip
        self.clips: list[tuple[int, np.ndarray]] = []
        for file_index, arrays in enumerate(self.files):
            for run in track_runs(np.asarray(arrays["vid_name"]), arrays["frame_id"]):
                last_start = len(run) - self.frames_per_clip
                starts = list(range(0, last_start + 1, stride))
                if cover_every_frame and (not starts or starts[-1] < last_start):
                    starts.append(max(last_start, 0))
                for start in starts:
                    self.clips.append((file_index, run[start : start + self.frames_per_clip]))

    @classmethod
    def from_config(
        cls, data: DataConfig, training: TrainingConfig, *, split: str, extra_frames: int = 0
    ) -> VideoClips:
        """The training (``split="train"``, augmented as ``data.augment`` says) or the
        validation (``split="val"``, never augmented) clips of a recipe."""
        paths = {"train": data.train, "val": data.val}[split]
        return cls(
            paths,
            training.clip_length,
            training.clip_stride,
            crop_size=data.crop_size,
            crop_scale=data.crop_scale,
            augment=data.augment and split == "train",
            extra_frames=extra_frames,
            seed=training.seed,
        )

    def set_epoch(self, epoch: int) -> None:
        """Use the augmentation draws of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.clips)

    def rows(self, index: int) -> tuple[int, np.ndarray]:
        """The file and the rows of that file that item ``index`` holds, in frame order."""
        return self.clips[index]

    def augmentation(self, index: int) -> Augmentation:
        """The draw of item ``index`` in the current epoch (the identity without augment)."""
        if not self.augment:
            return NO_AUGMENTATION
        mixed = np.random.SeedSequence([self.seed, index, self.epoch]).generate_state(_SEED_WORDS)
        draw = draw_augmentation(torch.Generator().manual_seed(int(mixed[0])))
        if "features" in self.files[self.clips[index][0]]:
            draw = dataclasses.replace(draw, flip=False)
        return draw

    def __getitem__(self, index: int) -> Clip:
        file_index, rows = self.clips[index]
        arrays = self.files[file_index]
        augmentation = self.augmentation(index)
        frames, keypoints, masks = [], [], []
        for row in rows:
            centre, side = square_box(arrays["bbox"][row], self.crop_scale)
            centre, side = jitter_box(centre, side, augmentation)
            crop, transform = crop_frame(arrays["img_name"][row], centre, side, self.crop_size)
            image = augment_crop(crop.astype(np.float32) / _UINT8_MAX, augmentation)
            frames.append((image - _MEAN) / _STD)
            keypoints.append(keypoints_to_crop(arrays["joints2D"][row], transform, self.crop_size))
            if "mask_name" in arrays:
                masks.append(self._mask(arrays["mask_name"][row], transform, augmentation))
        joints_3d, pose, betas, has_smpl = self._ground_truth(arrays, rows)
        keypoints_2d, joints_3d, pose = augment_labels(
            np.stack(keypoints), joints_3d, pose, augmentation
        )
        clip = Clip(
            frames=torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous(),
            keypoints_2d=torch.from_numpy(keypoints_2d),
            joints_3d=torch.from_numpy(joints_3d),
            pose=torch.from_numpy(pose),
            betas=torch.from_numpy(betas),
            has_smpl=torch.from_numpy(has_smpl),
            frame_ids=torch.from_numpy(arrays["frame_id"][rows].astype(np.int64)),
        )
        if "features" in arrays:
            clip["features"] = torch.from_numpy(arrays["features"][rows].astype(np.float32))
        if "mask_name" in arrays:
            clip["mask"] = torch.from_numpy(np.stack([mask for mask, _ in masks]))
            clip["has_mask"] = torch.tensor([present for _, present in masks])
        return clip

    def _mask(
        self, mask_name: str, transform: np.ndarray, augmentation: Augmentation
    ) -> tuple[np.ndarray, bool]:
        """The ``(S, S)`` mask crop (by the frame's ``(2, 3)`` transform) and whether it exists."""
        if not Path(mask_name).is_file():
            return np.zeros((self.crop_size, self.crop_size), dtype=np.float32), False
        mask = warp_to_crop(read_gray(mask_name), transform, self.crop_size)
        return np.ascontiguousarray(augment_mask(mask, augmentation)), True

    @staticmethod
    def _ground_truth(
        arrays: dict[str, np.ndarray], rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``joints_3d (T, 49, 4)``, ``pose (T, 72)``, ``betas (T, 10)``, ``has_smpl (T,)``."""
        count = len(rows)
        trusted = (
            arrays["valid"][rows].reshape(count) > 0
            if "valid" in arrays
            else np.ones(count, dtype=bool)
        )
        if "joints3D" in arrays:
            joints_3d = arrays["joints3D"][rows].astype(np.float32)
            joints_3d[..., 3] *= trusted[:, None]
        else:
            joints_3d = np.zeros((count, NUM_JOINTS_49, 4), dtype=np.float32)
        has_smpl = trusted & ("pose" in arrays) & ("shape" in arrays)
        pose = (
            arrays["pose"][rows].astype(np.float32)
            if "pose" in arrays
            else np.zeros((count, POSE_SIZE), dtype=np.float32)
        )
        betas = (
            arrays["shape"][rows].astype(np.float32)
            if "shape" in arrays
            else np.zeros((count, NUM_BETAS), dtype=np.float32)
        )
        return joints_3d, pose, betas, has_smpl
