"""VIBE/MAED dataset files: round trip, checks, paths relative to the file, stable bytes."""

from __future__ import annotations

import numpy as np
import pytest

from training.data.dataset_file import (
    DatasetFileError,
    read_dataset_file,
    write_dataset_file,
)


def rows(n: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "vid_name": np.array([f"clip_{i // 2}" for i in range(n)]),
        "frame_id": np.arange(n),
        "img_name": np.array([f"frames/{i:06d}.jpg" for i in range(n)]),
        "joints2D": rng.random((n, 49, 3)).astype(np.float32),
        "joints3D": rng.random((n, 49, 4)).astype(np.float32),
        "pose": rng.random((n, 72)).astype(np.float32),
        "shape": rng.random((n, 10)).astype(np.float32),
        "bbox": rng.random((n, 4)).astype(np.float32),
    }


def test_round_trip_resolves_paths_against_the_file(tmp_path):
    path = tmp_path / "synth_train_db.pt"
    write_dataset_file(path, rows())
    back = read_dataset_file(path)
    np.testing.assert_array_equal(back["joints3D"], rows()["joints3D"])
    assert back["img_name"][1] == str(tmp_path / "frames/000001.jpg")


def test_same_arrays_same_bytes(tmp_path):
    write_dataset_file(tmp_path / "a.pt", rows())
    write_dataset_file(tmp_path / "b.pt", rows())
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


def test_missing_and_misshaped_fields_are_named(tmp_path):
    bad = rows()
    del bad["bbox"]
    with pytest.raises(DatasetFileError, match="bbox"):
        write_dataset_file(tmp_path / "x.pt", bad)
    bad = rows()
    bad["joints2D"] = bad["joints2D"][:, :24]
    with pytest.raises(DatasetFileError, match=r"joints2D has shape \(3, 24, 3\)"):
        write_dataset_file(tmp_path / "x.pt", bad)
    with pytest.raises(FileNotFoundError, match="no dataset file"):
        read_dataset_file(tmp_path / "absent.pt")


def test_write_with_fields_adds_a_field_and_keeps_paths_relative(tmp_path):
    from training.data.dataset_file import write_with_fields

    write_dataset_file(tmp_path / "a.pt", rows())
    features = np.ones((3, 8), dtype=np.float32)
    write_with_fields(tmp_path / "a.pt", tmp_path / "a_features.pt", {"features": features})
    back = read_dataset_file(tmp_path / "a_features.pt")
    np.testing.assert_array_equal(back["features"], features)
    assert back["img_name"][0] == str(tmp_path / "frames/000000.jpg")
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(ValueError, match="beside"):
        write_with_fields(tmp_path / "a.pt", tmp_path / "elsewhere" / "b.pt", {})
