"""VideoClips over small hand-made dataset files: tracks, gaps, crops, augmentation, fields."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import training.data.video_clips as video_clips
from training.body.joint_sets import SPIN49_NAMES
from training.data.augment import Augmentation
from training.data.batch import IMAGE_MEAN, IMAGE_STD
from training.data.dataset_file import write_dataset_file
from training.data.video_clips import VideoClips, track_runs
from training.recipes.schema import DataConfig, TrainingConfig

WIDTH, HEIGHT = 160, 120
CROP = 64
DOT_RADIUS = 4
# Drawn joints and their colours (RGB): left side red, right side green, midline blue.
DRAWN = {
    "op_left_wrist": (48, 50), "op_right_wrist": (112, 50), "op_nose": (80, 30),
    "left_ankle": (66, 95), "right_ankle": (94, 95),
}  # fmt: skip
RED, GREEN, BLUE = 0, 1, 2


def side_channel(name: str) -> int:
    return RED if "left" in name else GREEN if "right" in name else BLUE


def make_file(
    folder: Path, tracks: dict[str, list[int]], *, smpl: bool = True, extra: bool = False
) -> Path:
    """One PNG per row with a dot at each drawn keypoint (moving right a pixel a frame)."""
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    rows: dict[str, list] = {key: [] for key in ("vid_name", "frame_id", "img_name", "joints2D")}
    rows["bbox"] = []
    rng = np.random.default_rng(0)
    for vid, frame_ids in tracks.items():
        for frame_id in frame_ids:
            image = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
            keypoints = np.zeros((49, 3), dtype=np.float32)
            for name, (x, y) in DRAWN.items():
                colour = [0, 0, 0]
                colour[side_channel(name)] = 255
                cv2.circle(image, (x + frame_id, y), DOT_RADIUS, colour[::-1], -1)  # BGR
                keypoints[SPIN49_NAMES.index(name)] = (x + frame_id, y, 1.0)
            name = f"frames/{vid}_{frame_id:04d}.png"
            cv2.imwrite(str(folder / name), image)
            rows["vid_name"].append(vid)
            rows["frame_id"].append(frame_id)
            rows["img_name"].append(name)
            rows["joints2D"].append(keypoints)
            rows["bbox"].append((80 + frame_id, 62, 70, 80))
    arrays = {key: np.array(value) for key, value in rows.items()}
    count = len(arrays["vid_name"])
    order = rng.permutation(count)  # rows out of order: the reader must sort them
    arrays = {key: value[order] for key, value in arrays.items()}
    if smpl:
        arrays["pose"] = rng.normal(size=(count, 72)).astype(np.float32)
        arrays["shape"] = rng.normal(size=(count, 10)).astype(np.float32)
        arrays["joints3D"] = rng.normal(size=(count, 49, 4)).astype(np.float32)
        arrays["joints3D"][..., 3] = 1.0
        arrays["valid"] = (np.arange(count) % 3 != 0).astype(np.float32)
    if extra:
        arrays["features"] = rng.normal(size=(count, 8)).astype(np.float32)
        masks = []
        for index, image_name in enumerate(arrays["img_name"]):
            mask_name = image_name.replace(".png", "_mask.png")
            if index % 2 == 0:  # every other row has a mask file
                mask = cv2.imread(str(folder / image_name), cv2.IMREAD_GRAYSCALE) > 0
                cv2.imwrite(str(folder / mask_name), mask.astype(np.uint8) * 255)
            masks.append(mask_name)
        arrays["mask_name"] = np.array(masks)
    path = folder / "toy_train_db.pt"
    write_dataset_file(path, arrays)
    return path


def unnormalise(frames: torch.Tensor) -> np.ndarray:
    """(T, 3, S, S) normalised → (T, S, S, 3) RGB in [0, 1]."""
    rgb = frames.permute(0, 2, 3, 1).numpy()
    return rgb * np.array(IMAGE_STD) + np.array(IMAGE_MEAN)


def pixel_of(keypoint: np.ndarray) -> tuple[int, int]:
    column, row = np.rint((keypoint[:2] + 1) * CROP / 2 - 0.5).astype(int)
    return int(row), int(column)


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory) -> Path:
    return make_file(
        tmp_path_factory.mktemp("toy"), {"a": [*range(10), *range(12, 21)], "b": [*range(10)]}
    )


def test_runs_break_at_tracks_and_gaps():
    names = np.array(["a", "a", "b", "a", "a", "b"])
    ids = np.array([1, 0, 0, 3, 4, 1])
    assert [list(run) for run in track_runs(names, ids)] == [[1, 0], [3, 4], [2, 5]]


def test_no_clip_crosses_a_track_or_a_gap(dataset_file):
    dataset = VideoClips([dataset_file], clip_length=4, stride=2, crop_size=CROP)
    # runs of 10, 9 and 10 frames: starts 0, 2, 4, 6 | 0, 2, 4 | 0, 2, 4, 6
    assert len(dataset) == 11
    arrays = dataset.files[0]
    for _, rows in dataset.clips:
        assert len(set(arrays["vid_name"][rows])) == 1
        assert list(np.diff(arrays["frame_id"][rows])) == [1, 1, 1]
    clip = dataset[0]
    assert clip["frames"].shape == (4, 3, CROP, CROP)
    assert clip["keypoints_2d"].shape == (4, 49, 3)
    assert clip["frame_ids"].tolist() == [0, 1, 2, 3]


def test_extra_frame_for_the_shifted_segments(dataset_file):
    dataset = VideoClips([dataset_file], clip_length=4, stride=2, crop_size=CROP, extra_frames=1)
    assert len(dataset) == 3 + 3 + 3  # (10 - 5) // 2 + 1, (9 - 5) // 2 + 1, again 3
    clip = dataset[1]
    assert clip["frames"].shape[0] == 5
    assert clip["frame_ids"].tolist() == [2, 3, 4, 5, 6]


def test_keypoints_land_on_their_dots_with_and_without_augmentation(dataset_file):
    plain = VideoClips([dataset_file], clip_length=4, stride=4, crop_size=CROP)
    augmented = VideoClips([dataset_file], 4, 4, crop_size=CROP, augment=True, seed=5)
    flips = set()
    for dataset in (plain, augmented):
        for index in range(len(dataset)):
            clip, draw = dataset[index], dataset.augmentation(index)
            flips.add(draw.flip)
            images = unnormalise(clip["frames"])
            for t in range(images.shape[0]):
                for name in DRAWN:
                    keypoint = clip["keypoints_2d"][t, SPIN49_NAMES.index(name)].numpy()
                    if keypoint[2] == 0 or erased(draw, keypoint):
                        continue
                    colour = images[(t, *pixel_of(keypoint))]
                    # after a mirror, a left joint's label sits on the dot of the right side
                    mirrored = name.replace("left", "#").replace("right", "left")
                    expected = side_channel(mirrored.replace("#", "right") if draw.flip else name)
                    assert colour.argmax() == expected, (index, t, name, colour)
                    assert colour.max() > 0.5
    assert flips == {False, True}


def erased(draw: Augmentation, keypoint: np.ndarray) -> bool:
    """Whether a keypoint's dot may touch the erased rectangle."""
    if draw.erase is None:
        return False
    x0, y0, width, height = draw.erase
    x, y = (keypoint[:2] + 1) / 2
    margin = 2 * DOT_RADIUS / CROP
    return x0 - margin <= x <= x0 + width + margin and y0 - margin <= y <= y0 + height + margin


def test_one_draw_for_every_frame_and_reproducible(dataset_file, monkeypatch):
    seen: list[Augmentation] = []
    original = video_clips.augment_crop

    def spy(image: np.ndarray, augmentation: Augmentation) -> np.ndarray:
        seen.append(augmentation)
        return original(image, augmentation)

    monkeypatch.setattr(video_clips, "augment_crop", spy)
    dataset = VideoClips([dataset_file], 4, 4, crop_size=CROP, augment=True, seed=1)
    first = dataset[2]
    assert len(seen) == 4
    assert all(draw == seen[0] for draw in seen)
    again = dataset[2]
    assert torch.equal(first["frames"], again["frames"])
    draws = {dataset.augmentation(i) for i in range(len(dataset))}
    assert len(draws) == len(dataset)
    dataset.set_epoch(1)
    assert dataset.augmentation(2) != seen[0]


def test_ground_truth_and_validity(dataset_file):
    dataset = VideoClips([dataset_file], clip_length=4, stride=2, crop_size=CROP)
    arrays = dataset.files[0]
    _, rows = dataset.clips[0]
    clip = dataset[0]
    valid = arrays["valid"][rows] > 0
    assert clip["has_smpl"].tolist() == valid.tolist()
    assert clip["joints_3d"][:, :, 3].tolist() == np.repeat(valid[:, None], 49, 1).tolist()
    np.testing.assert_array_equal(clip["pose"].numpy(), arrays["pose"][rows])
    assert clip["betas"].shape == (4, 10)
    assert "features" not in clip
    assert "mask" not in clip


def test_2d_only_file_gives_zeros_and_no_smpl(tmp_path):
    path = make_file(tmp_path, {"solo": list(range(5))}, smpl=False)
    clip = VideoClips([path], clip_length=3, stride=1, crop_size=CROP, augment=True)[0]
    assert not clip["has_smpl"].any()
    assert clip["pose"].abs().sum() == 0
    assert clip["betas"].shape == (3, 10)
    assert clip["joints_3d"].shape == (3, 49, 4)
    assert clip["joints_3d"][..., 3].sum() == 0


def test_features_and_masks(tmp_path):
    path = make_file(tmp_path, {"m": list(range(6))}, extra=True)
    dataset = VideoClips([path], clip_length=6, stride=1, crop_size=CROP, augment=True)
    for epoch in range(20):  # features describe the unflipped image: never flipped
        dataset.set_epoch(epoch)
        assert not dataset.augmentation(0).flip
    clip = dataset[0]
    assert clip["features"].shape == (6, 8)
    arrays = dataset.files[0]
    _, rows = dataset.clips[0]
    has = [Path(name).is_file() for name in arrays["mask_name"][rows]]
    assert clip["has_mask"].tolist() == has
    assert any(has)
    assert not all(has)
    assert clip["mask"].shape == (6, CROP, CROP)
    for t in np.flatnonzero(has):
        for name in DRAWN:
            keypoint = clip["keypoints_2d"][t, SPIN49_NAMES.index(name)].numpy()
            if keypoint[2] > 0:
                assert clip["mask"][(t, *pixel_of(keypoint))] > 0.5
    assert clip["mask"][~torch.tensor(has)].sum() == 0


def test_from_a_recipe(dataset_file):
    data = DataConfig(train=(str(dataset_file),), val=(str(dataset_file),), crop_size=CROP)
    training = TrainingConfig(
        clip_length=4, clip_stride=2, batch_size=1, epochs=1, iterations_per_epoch=1, lr=1e-4
    )
    train = VideoClips.from_config(data, training, split="train", extra_frames=1)
    val = VideoClips.from_config(data, training, split="val")
    assert train.augment
    assert not val.augment
    assert train[0]["frames"].shape == (5, 3, CROP, CROP)
    assert len(val) == 11


def test_cover_every_frame_leaves_no_row_out(tmp_path):
    path = make_file(tmp_path, {"a": list(range(7)), "b": list(range(3))})
    clips = VideoClips([path], clip_length=4, stride=4, crop_size=CROP, cover_every_frame=True)
    covered = sorted({int(row) for i in range(len(clips)) for row in clips.rows(i)[1]})
    assert covered == list(range(10))
    # track a: frames 0-3 and 3-6 (the last clip ends with the track); b is shorter than a clip
    assert [len(clips.rows(i)[1]) for i in range(len(clips))] == [4, 4, 3]
    assert len(clips[2]["frames"]) == 3
