"""Finding and reading SMPL-format body model files (``.pkl`` or ``.npz``).

The official SMPL ``.pkl`` files are Python 2 pickles holding ``chumpy`` objects, and chumpy
does not import on Python ≥ 3.11. :func:`read_body_file` unpickles them with every chumpy class
replaced by a small placeholder that keeps only the array the object wraps.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from scipy import sparse

# Where the licensed SMPL file is looked for when the caller names no path.
SMPL_DIR_ENV = "MESHCAST_SMPL_DIR"
DEFAULT_SMPL_DIR = Path.home() / ".local" / "share" / "meshcast" / "smpl"
# The neutral model under the names users most often have it: ours, then the official ones.
SMPL_FILENAMES = (
    "SMPL_NEUTRAL.npz",
    "SMPL_NEUTRAL.pkl",
    "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl",
    "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
)
SMPL_DOWNLOAD_URL = "https://smpl.is.tue.mpg.de"

# The arrays a body file must hold, as smplx names them, with the shape each must have
# (V vertices, F faces, B shape components).
REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights",
                 "kintree_table", "f")  # fmt: skip


class BodyModelFileError(ValueError):
    """A body model file exists but cannot be used (wrong format, missing arrays)."""


class SMPLFileMissingError(FileNotFoundError):
    """The licensed SMPL file is not where meshcast looks for it."""


def smpl_dir() -> Path:
    """The folder searched for the SMPL file: ``$MESHCAST_SMPL_DIR`` or the default."""
    return Path(os.environ.get(SMPL_DIR_ENV) or DEFAULT_SMPL_DIR)


def missing_smpl_message(looked_in: Path) -> str:
    """The one sentence a user needs when the SMPL file is absent."""
    return (
        f"The SMPL body model is missing: meshcast needs the neutral SMPL model "
        f"(SMPL_NEUTRAL.pkl or .npz, 6,890 vertices), which is licensed and not shipped. "
        f"Register and download 'SMPL for Python' from {SMPL_DOWNLOAD_URL}, then put the neutral "
        f"model as {looked_in / 'SMPL_NEUTRAL.pkl'} (or set {SMPL_DIR_ENV} to its folder, or pass "
        f"its path). To run without it, use the free stand-in body: 'standin'."
    )


def find_smpl_file() -> Path:
    """The SMPL neutral model file in :func:`smpl_dir`, or :class:`SMPLFileMissingError`."""
    folder = smpl_dir()
    for name in SMPL_FILENAMES:
        if (folder / name).is_file():
            return folder / name
    raise SMPLFileMissingError(missing_smpl_message(folder))


def read_body_file(path: Path) -> dict[str, Any]:
    """Read an SMPL-format body model (``.pkl`` or ``.npz``) into plain numpy arrays.

    Sparse matrices (SMPL's ``J_regressor``) become dense; chumpy objects become the arrays
    they hold. Raises ``FileNotFoundError`` if the file does not exist and
    :class:`BodyModelFileError` if it lacks an array a body model needs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no body model file at {path}: give 'standin', 'smpl' or the path of an "
            "SMPL-format .pkl or .npz"
        )
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            arrays: dict[str, Any] = {key: data[key] for key in data.files}
    elif path.suffix == ".pkl":
        with path.open("rb") as stream:
            arrays = _unpickle_without_chumpy(stream)
    else:
        raise BodyModelFileError(f"{path}: a body model file must end in .pkl or .npz")
    missing = [key for key in REQUIRED_KEYS if key not in arrays]
    if missing:
        raise BodyModelFileError(
            f"{path} is not an SMPL-format body model: it lacks {', '.join(missing)}"
        )
    return {key: _plain_array(value) for key, value in arrays.items()}


class _ChumpyArray:
    """Stands in for any chumpy class while unpickling; keeps the array it wraps."""

    value: np.ndarray

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "x" in state:  # a plain Ch: the array is its value
            self.value = np.asarray(state["x"])
        elif "a" in state and "idxs" in state:  # a Select: some entries of another array
            source = _plain_array(state["a"])
            picked = np.asarray(source).ravel()[np.asarray(state["idxs"], dtype=np.int64)]
            shape = state.get("preferred_shape")
            self.value = picked.reshape(shape) if shape is not None else picked
        else:
            raise BodyModelFileError(
                f"unsupported chumpy object in the body model file (fields: {sorted(state)})"
            )


class _BodyFileUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "chumpy":
            return _ChumpyArray
        if module.startswith("scipy.sparse"):  # old pickles name private scipy modules
            return getattr(sparse, name)
        return super().find_class(module, name)


def _unpickle_without_chumpy(stream: BinaryIO) -> dict[str, Any]:
    # The official files were written by Python 2: its byte strings decode as latin-1.
    loaded = _BodyFileUnpickler(stream, encoding="latin1").load()
    if not isinstance(loaded, dict):
        raise BodyModelFileError("a body model pickle must hold a dict of arrays")
    return loaded


def _plain_array(value: Any) -> Any:
    if isinstance(value, _ChumpyArray):
        return value.value
    if sparse.issparse(value):
        return np.asarray(value.todense())
    return value
