"""What the scoring commands offer, importable without torch (so that their ``--help`` and
argument errors answer at once): the box overlap that matches a track to a true person, and the
parts of the landmarks ``meshcast score --truth-landmarks`` can swap for the truth's."""

from __future__ import annotations

from typing import Final, Literal, get_args

# A predicted box is a true person's when they overlap by at least this much: SORT's own
# threshold (TrackerConfig.min_iou), at which the tracker itself takes a detection to be the
# same person. HOG's boxes around a synthetic walker overlap the true box by 0.6-0.8 on average
# (meshcast synth's 320 × 240 walking videos); two people's boxes overlap by less than this
# unless one stands in front of the other.
MIN_MATCH_IOU: Final = 0.3

# The truth's landmarks in place of the front-end's: 2D, metric points or both; or the truth
# only naming the frames where the front-end failed, which lose their landmarks
# (training.evaluation.truth_landmarks).
Swap = Literal["2d", "world", "all", "failed"]
SWAPS: Final[tuple[str, ...]] = get_args(Swap)
