"""Motion files in AMASS's layout, and the built-in clips stored that way.

An AMASS-style file is an ``.npz`` with ``poses (N, 72+)`` SMPL axis-angle (extra hand columns
of SMPL-H files are ignored), ``trans (N, 3)``, ``betas`` and ``mocap_framerate``. The
discriminator of SPS-Net reads real motion from such files (AMASS itself when the user has it).

The built-in clips (``training/motion/assets/*.npz``) are the 15 DeepMimic clips of pybullet
(zlib licence, see NOTICE) retargeted onto SMPL by :mod:`training.motion.deepmimic` and written
by :func:`convert_deepmimic_clips` (``meshcast motion convert``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.motion.deepmimic import CLIP_PREFIX, CLIP_SUFFIX, MotionClip, load_deepmimic_clip

BUILTIN_DIR = Path(__file__).parent / "assets"
SMPL_POSE_SIZE = 72
NUM_BETAS = 10


def read_motion_file(path: str | Path) -> MotionClip:
    """Read an AMASS-style ``.npz`` motion file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no motion file at {path}")
    with np.load(path) as data:
        missing = [key for key in ("poses", "trans", "mocap_framerate") if key not in data]
        if missing:
            raise ValueError(f"{path} is not an AMASS-style motion file: no {', '.join(missing)}")
        poses = np.asarray(data["poses"], dtype=np.float32)
        if poses.ndim != 2 or poses.shape[1] < SMPL_POSE_SIZE:
            raise ValueError(f"{path}: poses must be (N, >=72), got {poses.shape}")
        return MotionClip(
            name=path.stem,
            fps=float(data["mocap_framerate"]),
            pose=poses[:, :SMPL_POSE_SIZE].copy(),
            transl=np.asarray(data["trans"], dtype=np.float32),
            loop=bool(data["loop"]) if "loop" in data else False,
        )


def write_motion_file(path: str | Path, clip: MotionClip) -> None:
    """Write ``clip`` as an AMASS-style ``.npz`` (zero shape: the clips carry no body)."""
    np.savez(
        path,
        poses=clip.pose.astype(np.float32),
        trans=clip.transl.astype(np.float32),
        betas=np.zeros(NUM_BETAS, dtype=np.float32),
        mocap_framerate=np.float32(clip.fps),
        loop=np.bool_(clip.loop),
    )


def list_builtin_clips() -> list[str]:
    """Names of the built-in clips, sorted (``["backflip", …, "walk"]``)."""
    return sorted(path.stem for path in BUILTIN_DIR.glob("*.npz"))


def load_builtin_clip(name: str) -> MotionClip:
    """The built-in clip ``name`` (e.g. ``"walk"``), already on SMPL's skeleton."""
    available = list_builtin_clips()
    if name not in available:
        raise KeyError(f"unknown motion clip {name!r}; built-in: {', '.join(available)}")
    return read_motion_file(BUILTIN_DIR / f"{name}.npz")


def convert_deepmimic_clips(
    source_dir: str | Path, out_dir: str | Path = BUILTIN_DIR
) -> list[Path]:
    """Retarget every ``humanoid3d_*.txt`` clip of ``source_dir`` and write it to ``out_dir``."""
    sources = sorted(Path(source_dir).glob(f"{CLIP_PREFIX}*{CLIP_SUFFIX}"))
    if not sources:
        raise FileNotFoundError(f"no DeepMimic clips ({CLIP_PREFIX}*{CLIP_SUFFIX}) in {source_dir}")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        clip = load_deepmimic_clip(source)
        target = Path(out_dir) / f"{clip.name}.npz"
        write_motion_file(target, clip)
        written.append(target)
    return written
