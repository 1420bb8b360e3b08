"""Body models: the licensed SMPL (user-supplied) and the project's free stand-in.

Example::

    body = load_body_model("standin")
    out = body(torch.zeros(1, 72), torch.zeros(1, 10))
    out.vertices.shape, out.joints.shape  # (1, V, 3), (1, 24, 3)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from smplx.vertex_ids import vertex_ids as SMPLX_VERTEX_IDS

from training.body.files import (
    BodyModelFileError,
    SMPLFileMissingError,
    find_smpl_file,
    read_body_file,
)
from training.body.model import NUM_BETAS, BodyModel, BodyOutput
from training.body.skeleton import SMPL_JOINT_NAMES, SMPL_PARENTS

STANDIN_PATH = Path(__file__).parent / "assets" / "standin.npz"
H36M_REGRESSOR_FILENAME = "J_regressor_h36m.npy"
SMPL_NUM_VERTICES = 6890
# SMPL's named vertices: smplx's keypoint vertices for SMPL's layout, and the top of the head
# (vertex 412, the HEAD_TOP landmark of SMPL anthropometry tools).
SMPL_LANDMARKS = {**SMPLX_VERTEX_IDS["smplh"], "head_top": 412}

__all__ = [
    "NUM_BETAS",
    "SMPL_JOINT_NAMES",
    "SMPL_PARENTS",
    "STANDIN_PATH",
    "BodyModel",
    "BodyModelFileError",
    "BodyOutput",
    "SMPLFileMissingError",
    "load_body_model",
]


def load_body_model(
    name_or_path: str | Path = "standin", *, h36m_regressor: str | Path | None = None
) -> BodyModel:
    """Load a body model by name ("smpl", "standin") or from an SMPL-format file.

    "smpl" looks for the neutral model in ``$MESHCAST_SMPL_DIR`` (default
    ``~/.local/share/meshcast/smpl``) and raises :class:`SMPLFileMissingError`, whose message
    says what to download and where to put it, when it is absent. ``h36m_regressor`` is the
    published ``J_regressor_h36m.npy``; when not given, one lying beside the SMPL file is used.
    """
    if str(name_or_path) == "standin":
        path, name = STANDIN_PATH, "standin"
        if not path.is_file():
            raise BodyModelFileError(
                f"the stand-in body is missing from {path}; rebuild it with "
                "'meshcast body build-standin' (needs: pip install 'meshcast[standin]')"
            )
    elif str(name_or_path) == "smpl":
        path, name = find_smpl_file(), "smpl"
    else:
        path = Path(name_or_path)
        name = str(path)
    arrays = read_body_file(path)

    regressor_path = Path(h36m_regressor) if h36m_regressor else None
    if regressor_path is None and name != "standin":
        beside = path.parent / H36M_REGRESSOR_FILENAME
        regressor_path = beside if beside.is_file() else None
    regressor = np.load(regressor_path) if regressor_path else None
    return BodyModel(
        arrays, name=name, landmarks=_landmarks(arrays, name), h36m_regressor=regressor
    )


def _landmarks(arrays: dict[str, np.ndarray], name: str) -> dict[str, int]:
    if "landmark_names" in arrays:
        names = [str(n) for n in arrays["landmark_names"]]
        return dict(zip(names, arrays["landmark_vertex_ids"].tolist(), strict=True))
    if arrays["v_template"].shape[0] == SMPL_NUM_VERTICES:
        return dict(SMPL_LANDMARKS)
    raise BodyModelFileError(
        f"{name}: a body that is not SMPL's mesh must name its landmark vertices "
        "(arrays 'landmark_names' and 'landmark_vertex_ids')"
    )
