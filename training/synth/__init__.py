"""Synthetic videos of people with exact ground truth (``meshcast synth``).

:func:`generate_dataset` renders random scenes (:mod:`training.synth.scene`) of bodies playing
varied motion clips (:mod:`training.synth.motion_variety`) with a z-buffer rasteriser
(:mod:`training.synth.rasterize`) and writes videos, frames, masks and a VIBE-style dataset file.
"""

from training.synth.generate import SynthSummary, generate_dataset

__all__ = ["SynthSummary", "generate_dataset"]
