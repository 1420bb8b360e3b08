"""A small video of people that OpenCV's HOG finds fast: three walkers cut from the committed
clip, pasted side by side on a plain frame, each swaying to and fro.

At 352 × 176 pixels HOG takes about 15 ms a frame, against 200 ms on the clip's 768 × 576.
The walkers move over one period and back (a triangle wave), so the video played over and
over (``meshcast bench pipeline --loop``) never jumps: each walker stays one track.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from service.pipeline.video import read_frames

CLIP = Path(__file__).resolve().parents[2] / "meshcast" / "assets" / "vtest_clip.mp4"
# (frame of the clip, x1, y1, x2, y2 of a walker's box there, as HOG finds it)
WALKERS = (
    (0, (338.0, 176.8, 385.0, 277.2)),
    (0, (576.1, 129.5, 627.9, 240.5)),
    (20, (505.6, 208.0, 550.4, 304.0)),
)
PATCH_WIDTH, PATCH_HEIGHT = 80, 150  # cut around each box's centre, with the street around it
WIDTH, HEIGHT = 352, 176  # even: 4:2:0 video
PATCH_TOP = 13  # row of the patches' top edge
LANE_LEFT, LANE_WIDTH = 8, 112  # column of the first walker's left edge; lanes side by side
SWAY = 24  # pixels a walker moves over half a period
FPS = 10


def walker_patches() -> list[np.ndarray]:
    """``(PATCH_HEIGHT, PATCH_WIDTH, 3)`` BGR patches of the :data:`WALKERS`."""
    frames = {frame.index: frame.image for frame in read_frames(CLIP)}
    patches = []
    for index, (x1, y1, x2, y2) in WALKERS:
        left, top = round((x1 + x2 - PATCH_WIDTH) / 2), round((y1 + y2 - PATCH_HEIGHT) / 2)
        patches.append(frames[index][top : top + PATCH_HEIGHT, left : left + PATCH_WIDTH])
    return patches


def write_walkers_video(path: Path, frames: int, options: dict[str, str] | None = None) -> Path:
    """``frames`` frames (one sway period) of the walkers on their median colour, H.264;
    ``options`` are the container's (``{"movflags": "faststart"}``: an MP4's index first)."""
    patches = walker_patches()
    background = np.median(np.concatenate([p.reshape(-1, 3) for p in patches]), axis=0)
    with av.open(str(path), mode="w", options=options or {}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index in range(frames):
            image = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
            image[:] = background
            sway = round(SWAY * abs(2 * index / frames - 1))  # SWAY → 0 → SWAY
            for lane, patch in enumerate(patches):
                left = LANE_LEFT + lane * LANE_WIDTH + sway
                image[PATCH_TOP : PATCH_TOP + PATCH_HEIGHT, left : left + PATCH_WIDTH] = patch
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
