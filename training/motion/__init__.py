"""Motion clips retargeted onto SMPL's skeleton (DeepMimic mocap clips)."""

from training.motion.deepmimic import (
    MotionClip,
    list_builtin_clips,
    load_builtin_clip,
    load_deepmimic_clip,
)

__all__ = ["MotionClip", "list_builtin_clips", "load_builtin_clip", "load_deepmimic_clip"]
