"""Motion on SMPL's skeleton: AMASS-style files, the built-in clips, DeepMimic conversion."""

from training.motion.deepmimic import MotionClip, load_deepmimic_clip
from training.motion.library import (
    convert_deepmimic_clips,
    list_builtin_clips,
    load_builtin_clip,
    read_motion_file,
    write_motion_file,
)

__all__ = [
    "MotionClip",
    "convert_deepmimic_clips",
    "list_builtin_clips",
    "load_builtin_clip",
    "load_deepmimic_clip",
    "read_motion_file",
    "write_motion_file",
]
