"""Training clips of the front-end's own output: what ``meshcast run`` found on ``meshcast synth``
videos, labelled with those videos' truth.

Synthetic landmarks made from the mesh carry the noise a recipe draws (:mod:`training.data.
landmark_clips`); BlazePose's real error on rendered people is structured in ways no such draw
reproduced (limbs posed wrongly for several frames, its own proportions, whole skeletons
mirrored; the README's "What the front-end's error costs"). A keypoint family can learn that
error from the outputs themselves, as lifting networks train on a 2D detector's outputs rather
than on the truth plus noise (Pavllo et al. 2019 on CPN's detections).

:func:`record_runs` reads, per video, the pipeline's ``result.npz`` and the dataset file's rows,
matches each tracked person-frame to the truth by box IoU (:func:`~training.evaluation.
video_scoring.match_tracks`), and keeps every *run*: consecutive frames of one track matched to
one person, at least ``min_length`` long. Per person-frame it stores the network's input laid out
exactly as the service lays it (:func:`service.pipeline.landmark_features.track_landmark_features`:
the tracker's box, missed frames all zeros) and the labels of :class:`~training.data.batch.Clip`
in that crop. :class:`RecordedClips` draws windows of those runs, mirrored half the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from service.outputs.result_files import read_result_npz
from service.pipeline.crops import square_boxes
from service.pipeline.landmark_features import landmark_features
from training.body.landmarks import BLAZEPOSE_FLIP_PERMUTATION
from training.data.dataset_file import read_dataset_file
from training.data.flip import flip_joints_3d, flip_keypoints_2d, flip_pose
from training.data.landmark_clips import LandmarkClip, LandmarkClips, to_crop
from training.evaluation.video_scoring import TRACK_NAME, match_tracks, person_names

_X, _WORLD_X = 0, 3  # landmark feature channels a mirror negates (landmark_input's layout)


class RecordedRuns(NamedTuple):
    """Runs of person-frames, stacked: run ``r`` is rows ``starts[r] : starts[r] + lengths[r]``."""

    landmarks: np.ndarray  # (P, 33, 6) float32: the network's input, as the service gives it
    keypoints_2d: np.ndarray  # (P, 49, 2) float32: SPIN's joints in the crop, [-1, 1]
    joints: np.ndarray  # (P, 49, 3) float32: metres, camera frame
    pose: np.ndarray  # (P, 72) float32: axis-angle, camera-frame global orientation
    betas: np.ndarray  # (P, 10) float32
    starts: np.ndarray  # (R,) int64
    lengths: np.ndarray  # (R,) int64

    def save(self, path: str | Path) -> Path:
        """Write the runs as an ``.npz`` file; returns its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **self._asdict())
        return path

    @classmethod
    def load(cls, path: str | Path) -> RecordedRuns:
        """Read runs written by :meth:`save`.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file lacks a field.
        """
        with np.load(path) as arrays:
            missing = [name for name in cls._fields if name not in arrays]
            if missing:
                raise ValueError(f"{path} is not a file of recorded runs: no {', '.join(missing)}")
            return cls(**{name: arrays[name] for name in cls._fields})


def record_runs(
    videos: Sequence[tuple[str | Path, str | Path]], crop_scale: float, min_length: int
) -> RecordedRuns:
    """The runs of matched person-frames of every ``(dataset file, results folder)`` pair: the
    folder holds ``meshcast run``'s ``VIDEO/result.npz`` for videos of that dataset file.

    Args:
        videos: the pairs.
        crop_scale: the network's crop side over the box's longer side (its recipe's
            ``data.crop_scale``; the bundle's manifest says the same).
        min_length: the shortest run kept (the training clips' frames).

    Raises:
        ValueError: no run of ``min_length`` frames in any video.
    """
    parts: list[RecordedRuns] = []
    for dataset_file, results in videos:
        arrays = read_dataset_file(dataset_file)
        people = person_names(arrays["vid_name"])
        for folder in sorted(Path(results).iterdir()):
            if (folder / "result.npz").is_file() and TRACK_NAME.match(f"{folder.name}_p0"):
                parts.extend(_video_runs(folder, arrays, people, crop_scale, min_length))
    if not parts:
        raise ValueError(f"no run of {min_length} matched person-frames in any video")
    lengths = np.array([len(part.pose) for part in parts], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return RecordedRuns(
        landmarks=np.concatenate([part.landmarks for part in parts]),
        keypoints_2d=np.concatenate([part.keypoints_2d for part in parts]),
        joints=np.concatenate([part.joints for part in parts]),
        pose=np.concatenate([part.pose for part in parts]),
        betas=np.concatenate([part.betas for part in parts]),
        starts=starts,
        lengths=lengths,
    )


def _video_runs(
    folder: Path,
    arrays: dict[str, np.ndarray],
    people: np.ndarray,
    crop_scale: float,
    min_length: int,
) -> list[RecordedRuns]:
    """The runs of one video's ``folder/result.npz`` (each with one-run ``starts, lengths``)."""
    video = folder.name
    rows = np.flatnonzero(np.char.startswith(people.astype(str), f"{video}_"))
    if not len(rows):
        return []
    result = read_result_npz(folder / "result.npz")
    predicted, true = match_tracks(result, arrays["frame_id"][rows], arrays["bbox"][rows])
    truth_row = np.full(sum(len(track) for track in result.tracks), -1)
    truth_row[predicted] = rows[true]
    runs = []
    offset = 0
    for track in result.tracks:
        matched = truth_row[offset : offset + len(track)]
        offset += len(track)
        squares = square_boxes(track.boxes.astype(np.float64), crop_scale)
        features = landmark_features(
            track.landmarks.astype(np.float64), track.world_landmarks.astype(np.float64), squares
        )
        for first, last in _runs(matched, people, track.frame_ids):
            if last - first < min_length:
                continue
            span, truth = slice(first, last), matched[first:last]
            pixels = np.asarray(arrays["joints2D"][truth][..., :2], dtype=np.float64)
            runs.append(
                RecordedRuns(
                    landmarks=features[span],
                    keypoints_2d=to_crop(pixels, squares[span]).astype(np.float32),
                    joints=np.asarray(arrays["joints3D"][truth][..., :3], dtype=np.float32),
                    pose=np.asarray(arrays["pose"][truth], dtype=np.float32),
                    betas=np.asarray(arrays["shape"][truth], dtype=np.float32),
                    starts=np.zeros(1, dtype=np.int64),
                    lengths=np.array([last - first]),
                )
            )
    return runs


def _runs(matched: np.ndarray, people: np.ndarray, frames: np.ndarray) -> list[tuple[int, int]]:
    """``[first, last)`` row spans of one track whose rows are matched to the same person in
    consecutive frames."""
    spans: list[tuple[int, int]] = []
    first = None
    for row in range(len(matched) + 1):
        ends = (
            row == len(matched)
            or matched[row] < 0
            or (
                first is not None
                and (
                    people[matched[row]] != people[matched[row - 1]]
                    or frames[row] != frames[row - 1] + 1
                )
            )
        )
        if ends and first is not None:
            spans.append((first, row))
            first = None
        if row < len(matched) and matched[row] >= 0 and first is None:
            first = row
    return spans


def mirror_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """``(..., 33, 6)`` landmark features mirrored left for right (x → −x in the crop and in the
    metric points); a missed frame (all zeros) stays so."""
    flipped = landmarks[..., BLAZEPOSE_FLIP_PERMUTATION, :].copy()
    flipped[..., _X] = -flipped[..., _X]
    flipped[..., _WORLD_X] = -flipped[..., _WORLD_X]
    return flipped


class RecordedClips(Dataset[LandmarkClip]):
    """``items`` windows of ``clip_length`` frames of recorded runs, each drawn (which run, where
    in it, mirrored or not) from ``(seed, index, epoch)``: runs are drawn in proportion to the
    windows they hold."""

    def __init__(self, runs: RecordedRuns, clip_length: int, items: int, seed: int) -> None:
        windows = np.maximum(runs.lengths - clip_length + 1, 0)
        if not windows.sum():
            raise ValueError(f"no recorded run holds {clip_length} frames")
        self.runs = runs
        self.clip_length = clip_length
        self.items = items
        self.seed = seed
        self.epoch = 0
        self._weights = windows / windows.sum()

    def set_epoch(self, epoch: int) -> None:
        """Draw the windows of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.items

    def __getitem__(self, index: int) -> LandmarkClip:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, index, self.epoch]))
        run = int(rng.choice(len(self._weights), p=self._weights))
        length = self.clip_length
        start = int(self.runs.starts[run] + rng.integers(self.runs.lengths[run] - length + 1))
        span = slice(start, start + length)
        ones = np.ones((length, self.runs.joints.shape[1], 1), dtype=np.float32)
        landmarks = self.runs.landmarks[span]
        keypoints = np.concatenate([self.runs.keypoints_2d[span], ones], axis=-1)
        joints = np.concatenate([self.runs.joints[span], ones], axis=-1)
        pose = self.runs.pose[span]
        if rng.random() < 0.5:
            landmarks, pose = mirror_landmarks(landmarks), flip_pose(pose)
            keypoints, joints = flip_keypoints_2d(keypoints), flip_joints_3d(joints)
        # one β a clip, as the synthetic clips have it
        betas = np.repeat(self.runs.betas[span].mean(axis=0, keepdims=True), length, axis=0)
        return LandmarkClip(
            landmarks=torch.from_numpy(np.ascontiguousarray(landmarks, dtype=np.float32)),
            keypoints_2d=torch.from_numpy(keypoints.astype(np.float32)),
            joints_3d=torch.from_numpy(joints.astype(np.float32)),
            pose=torch.from_numpy(pose.astype(np.float32)),
            betas=torch.from_numpy(betas.astype(np.float32)),
            has_smpl=torch.ones(length, dtype=torch.bool),
            frame_ids=torch.arange(length),
        )


class MixedClips(ConcatDataset[LandmarkClip]):
    """Synthetic and recorded clips as one training set, each told the epoch."""

    def set_epoch(self, epoch: int) -> None:
        """Draw the items of ``epoch`` in every part."""
        for part in self.datasets:
            part.set_epoch(epoch)  # type: ignore[attr-defined]


def with_recorded(
    synthetic: LandmarkClips, path: str | Path, share: float, clip_length: int, seed: int
) -> MixedClips:
    """``synthetic`` and as many clips again of the recorded runs at ``path`` as make
    ``share`` of the whole.

    Raises:
        FileNotFoundError: no file at ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no recorded front-end output at {path}: make it with `make frontend-clips`"
        )
    items = round(len(synthetic) * share / (1.0 - share))
    return MixedClips([synthetic, RecordedClips(RecordedRuns.load(path), clip_length, items, seed)])
