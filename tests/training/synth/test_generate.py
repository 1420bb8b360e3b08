"""``generate_dataset``: files, the dataset file's fields and their agreement with the images."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from training.body import load_body_model
from training.data.dataset_file import read_dataset_file
from training.synth import SynthSummary, generate_dataset

VIDEOS, FRAMES, SIZE = 2, 8, (160, 120)


def _generate(out: Path, seed: int) -> SynthSummary:
    return generate_dataset(
        out,
        num_videos=VIDEOS,
        frames_per_video=FRAMES,
        people=(2, 2),
        image_size=SIZE,
        seed=seed,
        progress=False,
    )


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    out = tmp_path_factory.mktemp("synth")
    return out, _generate(out, seed=3)


@pytest.fixture(scope="module")
def data(made: tuple[Path, SynthSummary]) -> dict[str, np.ndarray]:
    return read_dataset_file(made[1].dataset_path)


def _camera(out: Path, vid_name: str) -> dict:
    video = vid_name.split("_")[0]
    return json.loads((out / "train" / "videos" / f"{video}.json").read_text())


def test_files_and_fields(made: tuple[Path, SynthSummary], data: dict[str, np.ndarray]) -> None:
    out, summary = made
    assert summary.dataset_path == out / "synth_train_db.pt"
    assert summary.videos == VIDEOS
    assert summary.frames == VIDEOS * FRAMES
    rows = summary.person_frames
    assert rows == len(data["vid_name"]) > 0
    for video in ("video000", "video001"):
        assert (out / "train" / "videos" / f"{video}.mp4").stat().st_size > 0
        assert len(list((out / "train" / "frames" / video).glob("*.jpg"))) == FRAMES
        capture = cv2.VideoCapture(str(out / "train" / "videos" / f"{video}.mp4"))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
        capture.release()
        camera = _camera(out, video)
        assert (camera["width"], camera["height"]) == SIZE
        assert len(camera["world_to_camera"]) == FRAMES
    shapes = {
        "joints2D": (rows, 49, 3), "joints3D": (rows, 49, 4), "pose": (rows, 72),
        "shape": (rows, 10), "bbox": (rows, 4), "valid": (rows,), "frame_id": (rows,),
    }  # fmt: skip
    for key, shape in shapes.items():
        assert data[key].shape == shape, key
    assert all(Path(name).is_file() for name in data["img_name"])
    assert all(Path(name).is_file() for name in data["mask_name"])
    assert np.all(data["joints3D"][..., 3] == 1)
    assert np.all(data["valid"] == 1)


def test_tracks_are_contiguous(data: dict[str, np.ndarray]) -> None:
    for track in np.unique(data["vid_name"]):
        frames = data["frame_id"][data["vid_name"] == track]
        np.testing.assert_array_equal(frames, np.arange(frames[0], frames[0] + len(frames)))


def test_joints_2d_are_the_projection_of_joints_3d(
    made: tuple[Path, SynthSummary], data: dict[str, np.ndarray]
) -> None:
    for row in range(0, len(data["vid_name"]), 5):
        K = np.array(_camera(made[0], str(data["vid_name"][row]))["intrinsics"])
        points = data["joints3D"][row, :, :3] @ K.T
        np.testing.assert_allclose(
            data["joints2D"][row, :, :2], points[:, :2] / points[:, 2:], atol=1e-3
        )


def test_visible_joints_lie_on_the_mask_and_the_mask_in_the_box(
    data: dict[str, np.ndarray],
) -> None:
    in_frame_total, visible_total = 0, 0
    for row in range(len(data["vid_name"])):
        mask = cv2.imread(str(data["mask_name"][row]), cv2.IMREAD_GRAYSCALE) > 0
        joints = data["joints2D"][row]
        visible = joints[:, 2] > 0
        cols, rows = np.round(joints[visible, :2]).astype(int).T
        assert np.all(mask[rows, cols])
        inside = (
            (joints[:, 0] > -0.5) & (joints[:, 0] < SIZE[0] - 0.5)
            & (joints[:, 1] > -0.5) & (joints[:, 1] < SIZE[1] - 0.5)
        )  # fmt: skip
        in_frame_total += int(inside.sum())
        visible_total += int(visible.sum())
        assert not np.any(visible & ~inside)
        cx, cy, w, h = data["bbox"][row]
        ys, xs = np.nonzero(mask)
        if len(xs):
            assert xs.min() >= cx - w / 2 - 1
            assert xs.max() <= cx + w / 2 + 1
            assert ys.min() >= cy - h / 2 - 1
            assert ys.max() <= cy + h / 2 + 1
    # the joints project where the body is: most joints in the frame show their person
    assert visible_total >= 0.5 * in_frame_total


def test_the_mask_shows_the_rendered_person(data: dict[str, np.ndarray]) -> None:
    """Inside the mask the frame holds the body's colours, which differ from the backdrop's
    just outside: the frame's edges run along the mask's outline."""
    outline_edges, elsewhere_edges = [], []
    for row in range(0, len(data["vid_name"]), 3):
        mask = cv2.imread(str(data["mask_name"][row]), cv2.IMREAD_GRAYSCALE) > 0
        if mask.sum() < 50:
            continue
        image = cv2.imread(str(data["img_name"][row])).astype(np.float32)
        gradient = np.abs(cv2.Laplacian(image, cv2.CV_32F)).sum(axis=2)
        outline = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3)))
        outline_edges.append(gradient[outline > 0].mean())
        elsewhere_edges.append(gradient[outline == 0].mean())
    assert outline_edges
    assert np.mean(outline_edges) > 2 * np.mean(elsewhere_edges)


def test_pose_is_in_the_camera_frame(data: dict[str, np.ndarray]) -> None:
    """The body posed with ``pose`` and ``shape`` gives joints3D up to a translation."""
    body = load_body_model("standin")
    rows = np.arange(0, len(data["vid_name"]), 4)
    with torch.no_grad():
        out = body(torch.from_numpy(data["pose"][rows]), torch.from_numpy(data["shape"][rows]))
        joints = body.regress_joints(out.vertices, "spin49").numpy()
    truth = data["joints3D"][rows, :, :3]
    np.testing.assert_allclose(
        joints - joints.mean(axis=1, keepdims=True),
        truth - truth.mean(axis=1, keepdims=True),
        atol=1e-4,
    )


def test_same_seed_same_bytes_other_seed_other_data(
    made: tuple[Path, SynthSummary], tmp_path: Path
) -> None:
    out, _ = made
    _generate(tmp_path / "again", seed=3)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    again = sorted(
        p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file()
    )
    assert files == again
    for name in files:
        assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    _generate(tmp_path / "other", seed=4)
    other = read_dataset_file(tmp_path / "other" / "synth_train_db.pt")
    first = read_dataset_file(out / "synth_train_db.pt")
    assert other["pose"].shape != first["pose"].shape or not np.allclose(
        other["pose"], first["pose"]
    )


def test_a_held_out_set_moves_only_with_its_own_clips(tmp_path):
    from training.synth.generate import generate_dataset

    summary = generate_dataset(tmp_path, num_videos=1, frames_per_video=4, people=(2, 2),
                               image_size=(96, 72), clips=["run"], progress=False)  # fmt: skip
    record = json.loads(next((tmp_path / "train" / "videos").glob("*.json")).read_text())
    motions = [person["motion"] for person in record["people"]]
    assert all(motion.startswith("run") for motion in motions), motions
    assert summary.videos == 1
    with pytest.raises(ValueError, match="unknown motion clip"):
        generate_dataset(tmp_path / "x", num_videos=1, frames_per_video=2, clips=["moonwalk"],
                         progress=False)  # fmt: skip
