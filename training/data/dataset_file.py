"""VIBE/MAED dataset files: ``{dataset}_{split}_db.pt``, a joblib dump of a dict of arrays.

One row per person and frame, in the layout the public preprocessed files of VIBE and MAED
use (3DPW, MPI-INF-3DHP, Human3.6M, InstaVariety …), so those files read unchanged, and
``meshcast synth`` writes the same. Joints follow SPIN's 49-joint convention
(:data:`training.body.joint_sets.SPIN49_NAMES`); the last column of ``joints2D`` is a
confidence, that of ``joints3D`` a validity. ``bbox`` is ``(cx, cy, w, h)`` in pixels.

Paths in ``img_name`` (and our ``mask_name``) may be absolute or relative to the folder of the
dataset file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np

from training.body.joint_sets import SPIN49_NAMES

NUM_JOINTS_49 = len(SPIN49_NAMES)

# key → the shape of one row (None: a string or scalar per row)
REQUIRED_FIELDS: dict[str, tuple[int, ...] | None] = {
    "vid_name": None,
    "frame_id": None,
    "img_name": None,
    "joints2D": (NUM_JOINTS_49, 3),
    "bbox": (4,),
}
OPTIONAL_FIELDS: dict[str, tuple[int, ...] | None] = {
    "valid": None,  # 1 where the SMPL/3D ground truth of the row can be trusted
    "joints3D": (NUM_JOINTS_49, 4),
    "pose": (72,),
    "shape": (10,),
    "features": None,  # (N, D): precomputed image features (VIBE's from SPIN's ResNet-50)
    "mask_name": None,  # ours: the person's mask image for the frame
    "cam": (3,),  # ours: the true weak-perspective crop camera (s, tx, ty) of the bbox crop
}


class DatasetFileError(ValueError):
    """A dataset file lacks a field or holds one of the wrong shape."""


def check_dataset(arrays: dict[str, Any], source: str = "dataset") -> int:
    """Check the fields and their shapes; return the number of rows N."""
    missing = [key for key in REQUIRED_FIELDS if key not in arrays]
    if missing:
        raise DatasetFileError(f"{source} lacks the field(s) {', '.join(missing)}")
    rows = len(arrays["vid_name"])
    for key, row_shape in {**REQUIRED_FIELDS, **OPTIONAL_FIELDS}.items():
        if key not in arrays:
            continue
        shape = np.shape(arrays[key])
        if shape[:1] != (rows,) or (row_shape is not None and shape[1:] != row_shape):
            want = (rows, *row_shape) if row_shape is not None else (rows, "…")
            raise DatasetFileError(f"{source}: {key} has shape {shape}, expected {want}")
    return rows


def read_dataset_file(path: str | Path) -> dict[str, np.ndarray]:
    """Read and check a dataset file; paths in it are made absolute."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no dataset file at {path}")
    loaded = joblib.load(path)
    if not isinstance(loaded, dict):
        raise DatasetFileError(f"{path} does not hold a dict of arrays")
    arrays = {key: np.asarray(value) for key, value in loaded.items()}
    check_dataset(arrays, str(path))
    for key in ("img_name", "mask_name"):
        if key in arrays:
            arrays[key] = np.array([str(path.parent / name) for name in arrays[key]])
    return arrays


def write_dataset_file(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Check and write ``arrays`` as a dataset file (same arrays, same bytes)."""
    check_dataset(arrays, str(path))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    joblib.dump({key: arrays[key] for key in sorted(arrays)}, path)


def write_with_fields(source: str | Path, out: str | Path, fields: dict[str, np.ndarray]) -> None:
    """Copy the dataset file ``source`` to ``out`` with ``fields`` added or replaced.

    Paths inside stay as they were, so ``out`` must lie in the same folder as ``source``.
    """
    if Path(out).resolve().parent != Path(source).resolve().parent:
        raise ValueError(f"{out} must lie beside {source}: their paths are relative to it")
    arrays = {key: np.asarray(value) for key, value in joblib.load(source).items()}
    write_dataset_file(out, arrays | fields)
