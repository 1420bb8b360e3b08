"""``meshcast bench motion``: how well the movement cue (:mod:`service.pipeline.motion`) calls
for searches, on a video whose every frame was searched.

The every-frame run's tracks stand for the truth: a track that begins after the first frame is
someone new (or someone the tracker lost and found again). The cue runs over the video as the
pipeline runs it between searches, each frame against the one before, with the boxes of the
tracks of the frame before as the people followed. Reported: the frames it fires on, the new
tracks it fires for (at their first frame or in the :data:`LEAD` frames before), and what it
costs a frame.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from service.outputs.result_files import read_result_npz
from service.pipeline.motion import MotionConfig, NewMotion
from service.pipeline.video import read_frames

# A firing this many frames before a new track's first frame still finds them: the detector
# needs a person in view, and the cue may see their first steps into it.
LEAD = 3


def bench_motion(result_npz: Path, video: Path, config: MotionConfig) -> dict[str, Any]:
    """The cue's firings on ``video`` against the new tracks of ``result_npz`` (its run with
    the detector on every frame), as a JSON-able report."""
    result = read_result_npz(result_npz)
    boxes: dict[int, list[np.ndarray]] = {}
    for track in result.tracks:
        for frame, box in zip(track.frame_ids, track.boxes, strict=True):
            boxes.setdefault(int(frame), []).append(box)
    starts = np.array(sorted(int(t.frame_ids[0]) for t in result.tracks if t.frame_ids[0] > 0))
    motion, fired, seconds, frames = NewMotion(config), [], 0.0, 0
    for frame in read_frames(video):
        followed = np.array(boxes.get(frame.index - 1, [])).reshape(-1, 4)
        clock = time.perf_counter()
        moved = motion.moves_outside(frame.image, followed)
        seconds += time.perf_counter() - clock
        frames += 1
        if moved:
            fired.append(frame.index)
    firings = np.array(fired, dtype=np.int64)
    found = [start for start in starts if ((firings >= start - LEAD) & (firings <= start)).any()]
    return {
        "video": str(video),
        "config": config.model_dump(),
        "frames": frames,
        "fired_frames": len(firings),
        "fired_share": round(len(firings) / max(frames, 1), 4),
        "new_tracks": len(starts),
        "new_tracks_found": len(found),
        "ms_per_frame": round(1000 * seconds / max(frames, 1), 3),
    }
